//! One-row returns: simple (TA-Lib `TA_ROCP` with period 1) and logarithmic.

use super::undefined;

/// (price − previous) / previous; 0 where the previous price is 0, as ROCP does.
pub fn simple_return(price: &[f64]) -> Vec<f64> {
    let mut out = undefined(price.len());
    for today in 1..price.len() {
        let previous = price[today - 1];
        out[today] = if previous != 0.0 {
            (price[today] - previous) / previous
        } else {
            0.0
        };
    }
    out
}

/// ln(price / previous).
pub fn log_return(price: &[f64]) -> Vec<f64> {
    let mut out = undefined(price.len());
    for today in 1..price.len() {
        out[today] = (price[today] / price[today - 1]).ln();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_row_has_no_return() {
        let r = simple_return(&[100.0, 110.0]);
        assert!(r[0].is_nan());
        assert!((r[1] - 0.1).abs() < 1e-15);
        assert!((log_return(&[1.0, std::f64::consts::E])[1] - 1.0).abs() < 1e-15);
    }
}

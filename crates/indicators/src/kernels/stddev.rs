//! STDDEV: population standard deviation (TA-Lib `TA_STDDEV` with nbDev 1).

use super::{ta_is_zero_or_neg, undefined};

/// sqrt(E[x²] − E[x]²) over the last `period` values from running sums, as
/// TA-Lib's `TA_INT_VAR` computes it; a variance below 1e-8 counts as 0.
pub fn stddev(values: &[f64], period: usize) -> Vec<f64> {
    let mut out = undefined(values.len());
    if period == 0 || values.len() < period {
        return out;
    }
    let n = period as f64;
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for &x in &values[..period - 1] {
        sum += x;
        sum_sq += x * x;
    }
    for today in period - 1..values.len() {
        let x = values[today];
        sum += x;
        sum_sq += x * x;
        let mean = sum / n;
        let variance = sum_sq / n - mean * mean;
        let trailing = values[today + 1 - period];
        sum -= trailing;
        sum_sq -= trailing * trailing;
        out[today] = if ta_is_zero_or_neg(variance) {
            0.0
        } else {
            variance.sqrt()
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_deviation() {
        let out = stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 8);
        assert_eq!(out[7], 2.0);
        assert_eq!(stddev(&[3.0; 5], 3)[4], 0.0);
    }
}

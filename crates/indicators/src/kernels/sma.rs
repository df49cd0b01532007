//! SMA: simple moving average (TA-Lib `TA_SMA`).

use super::undefined;

/// Mean of the last `period` values, from row `period - 1` on. Uses TA-Lib's
/// running total (add the new value, emit, subtract the oldest).
pub fn sma(values: &[f64], period: usize) -> Vec<f64> {
    let mut out = undefined(values.len());
    if period == 0 || values.len() < period {
        return out;
    }
    let divisor = period as f64;
    let mut total: f64 = values[..period - 1].iter().sum();
    for today in period - 1..values.len() {
        total += values[today];
        out[today] = total / divisor;
        total -= values[today + 1 - period];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_support::assert_series;

    #[test]
    fn averages_the_last_period_values() {
        let nan = f64::NAN;
        assert_series(
            &sma(&[1.0, 2.0, 3.0, 4.0, 5.0], 3),
            &[nan, nan, 2.0, 3.0, 4.0],
        );
    }

    #[test]
    fn shorter_than_period_has_no_values() {
        assert!(sma(&[1.0, 2.0], 3).iter().all(|v| v.is_nan()));
    }
}

//! EMA: exponential moving average (TA-Lib `TA_EMA`).

use super::undefined;

/// TA-Lib's smoothing factor for a period: 2 / (period + 1).
pub fn smoothing(period: usize) -> f64 {
    2.0 / (period as f64 + 1.0)
}

/// EMA seeded, as TA-Lib does, with the SMA of the first `period` values, so the
/// first value is on row `period - 1`.
pub fn ema(values: &[f64], period: usize) -> Vec<f64> {
    ema_seeded_at(values, period, period.saturating_sub(1))
}

/// EMA whose seed is the SMA of the `period` values ending on row `seed_row`;
/// rows before it have no value. TA-Lib's MACD seeds its fast EMA this way, on
/// the row where the slow EMA's seed ends.
pub fn ema_seeded_at(values: &[f64], period: usize, seed_row: usize) -> Vec<f64> {
    let mut out = undefined(values.len());
    if period == 0 || seed_row + 1 < period || seed_row >= values.len() {
        return out;
    }
    let k = smoothing(period);
    let seed_start = seed_row + 1 - period;
    let mut previous = values[seed_start..=seed_row].iter().sum::<f64>() / period as f64;
    out[seed_row] = previous;
    for today in seed_row + 1..values.len() {
        previous = ((values[today] - previous) * k) + previous;
        out[today] = previous;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_support::assert_series;

    #[test]
    fn seeds_with_the_sma_then_smooths() {
        let nan = f64::NAN;
        // k = 0.5; seed = (1 + 2 + 3) / 3 = 2; then 2 + (5 - 2) * 0.5 = 3.5
        assert_series(&ema(&[1.0, 2.0, 3.0, 5.0], 3), &[nan, nan, 2.0, 3.5]);
    }

    #[test]
    fn a_later_seed_averages_the_window_ending_there() {
        let nan = f64::NAN;
        assert_series(
            &ema_seeded_at(&[1.0, 2.0, 3.0, 5.0], 2, 2),
            &[nan, nan, 2.5, 2.5 + (5.0 - 2.5) * (2.0 / 3.0)],
        );
    }
}

//! ATR: average true range with Wilder smoothing (TA-Lib `TA_ATR`).

use super::undefined;

/// TA-Lib's true range of row `today` (≥ 1): the largest of high − low,
/// |previous close − high| and |previous close − low|.
pub fn true_range(high: &[f64], low: &[f64], close: &[f64], today: usize) -> f64 {
    let (h, l, previous_close) = (high[today], low[today], close[today - 1]);
    let mut greatest = h - l;
    let to_high = (previous_close - h).abs();
    if to_high > greatest {
        greatest = to_high;
    }
    let to_low = (previous_close - l).abs();
    if to_low > greatest {
        greatest = to_low;
    }
    greatest
}

/// First value on row `period`: the mean true range of rows 1..=period; then
/// (previous × (period − 1) + true range) / period.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let len = close.len();
    let mut out = undefined(len);
    if period == 0 || len <= period {
        return out;
    }
    let n = period as f64;
    let mut total = 0.0;
    for today in 1..=period {
        total += true_range(high, low, close, today);
    }
    let mut previous = total / n;
    out[period] = previous;
    for (today, slot) in out.iter_mut().enumerate().skip(period + 1) {
        previous *= n - 1.0;
        previous += true_range(high, low, close, today);
        previous /= n;
        *slot = previous;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_up_counts_from_the_previous_close() {
        assert_eq!(
            true_range(&[10.0, 14.0], &[9.0, 13.0], &[10.0, 13.5], 1),
            4.0
        );
    }

    #[test]
    fn constant_range_gives_that_range() {
        let (h, l, c) = (vec![11.0; 10], vec![9.0; 10], vec![10.0; 10]);
        let out = atr(&h, &l, &c, 3);
        assert!(out[2].is_nan());
        assert_eq!(out[3], 2.0);
        assert_eq!(out[9], 2.0);
    }
}

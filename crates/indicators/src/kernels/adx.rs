//! ADX: average directional movement index (TA-Lib `TA_ADX`).

use super::atr::true_range;
use super::{ta_is_zero, undefined};

/// Wilder-smoothed +DM, −DM and true range, accumulated exactly as TA-Lib does:
/// plain sums over the first `period − 1` changes, then x − x/period + today.
/// DX is averaged over the next `period` rows to seed ADX, which is then
/// smoothed as (previous × (period − 1) + DX) / period. First value on row
/// 2 × period − 1. Where the range is (TA-Lib's) zero, DX is skipped.
pub fn adx(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let len = close.len();
    let mut out = undefined(len);
    if period < 2 || len < 2 * period {
        return out;
    }
    let n = period as f64;
    let (mut plus_dm, mut minus_dm, mut range) = (0.0, 0.0, 0.0);
    let directional = |today: usize| {
        let up = high[today] - high[today - 1];
        let down = low[today - 1] - low[today];
        if down > 0.0 && up < down {
            (0.0, down)
        } else if up > 0.0 && up > down {
            (up, 0.0)
        } else {
            (0.0, 0.0)
        }
    };
    let dx = |plus_dm: f64, minus_dm: f64, range: f64| -> Option<f64> {
        if ta_is_zero(range) {
            return None;
        }
        let minus_di = 100.0 * (minus_dm / range);
        let plus_di = 100.0 * (plus_dm / range);
        let total = minus_di + plus_di;
        (!ta_is_zero(total)).then(|| 100.0 * ((minus_di - plus_di).abs() / total))
    };

    let mut today = 0;
    for _ in 0..period - 1 {
        today += 1;
        let (up, down) = directional(today);
        plus_dm += up;
        minus_dm += down;
        range += true_range(high, low, close, today);
    }
    let mut dx_sum = 0.0;
    // Wilder's smoothing of the three sums, in TA-Lib's order of operations.
    let smooth = |today: usize, plus_dm: &mut f64, minus_dm: &mut f64, range: &mut f64| {
        let (up, down) = directional(today);
        *minus_dm -= *minus_dm / n;
        *plus_dm -= *plus_dm / n;
        *minus_dm += down;
        *plus_dm += up;
        *range = *range - (*range / n) + true_range(high, low, close, today);
    };
    for _ in 0..period {
        today += 1;
        smooth(today, &mut plus_dm, &mut minus_dm, &mut range);
        if let Some(dx) = dx(plus_dm, minus_dm, range) {
            dx_sum += dx;
        }
    }
    let mut average = dx_sum / n;
    out[today] = average;
    while today + 1 < len {
        today += 1;
        smooth(today, &mut plus_dm, &mut minus_dm, &mut range);
        if let Some(dx) = dx(plus_dm, minus_dm, range) {
            average = ((average * (n - 1.0)) + dx) / n;
        }
        out[today] = average;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_trend_has_full_strength() {
        let high: Vec<f64> = (0..40).map(|i| 11.0 + f64::from(i)).collect();
        let low: Vec<f64> = high.iter().map(|h| h - 2.0).collect();
        let close: Vec<f64> = high.iter().map(|h| h - 1.0).collect();
        let out = adx(&high, &low, &close, 14);
        assert!(out[26].is_nan());
        assert!((out[27] - 100.0).abs() < 1e-9);
    }

    #[test]
    fn flat_prices_give_zero() {
        let flat = vec![5.0; 40];
        assert_eq!(adx(&flat, &flat, &flat, 14)[39], 0.0);
    }
}

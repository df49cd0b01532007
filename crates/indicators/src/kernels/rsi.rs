//! RSI: relative strength index with Wilder smoothing (TA-Lib `TA_RSI`).

use super::{ta_is_zero, undefined};

/// First value on row `period`: the average gain and loss of the first `period`
/// changes; afterwards each is smoothed as (previous × (period − 1) + today) / period.
/// When both averages are (TA-Lib's) zero, as for constant prices, RSI is 0.
pub fn rsi(values: &[f64], period: usize) -> Vec<f64> {
    let mut out = undefined(values.len());
    if period == 0 || values.len() <= period {
        return out;
    }
    let n = period as f64;
    let (mut gain, mut loss) = (0.0, 0.0);
    for today in 1..=period {
        let change = values[today] - values[today - 1];
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
    }
    loss /= n;
    gain /= n;
    out[period] = strength(gain, loss);
    for today in period + 1..values.len() {
        let change = values[today] - values[today - 1];
        loss *= n - 1.0;
        gain *= n - 1.0;
        if change < 0.0 {
            loss -= change;
        } else {
            gain += change;
        }
        loss /= n;
        gain /= n;
        out[today] = strength(gain, loss);
    }
    out
}

fn strength(gain: f64, loss: f64) -> f64 {
    let total = gain + loss;
    if ta_is_zero(total) {
        0.0
    } else {
        100.0 * (gain / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gains_is_100_and_flat_is_0() {
        let rising: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(rsi(&rising, 14)[19], 100.0);
        assert_eq!(rsi(&[5.0; 20], 14)[19], 0.0);
        assert!(rsi(&rising, 14)[13].is_nan());
    }
}

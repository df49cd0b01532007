//! STOCH: slow stochastic oscillator with SMA smoothing (TA-Lib `TA_STOCH`,
//! both MA types SMA).

use super::sma::sma;
use super::undefined;

#[derive(Debug, Clone, PartialEq)]
pub struct Stochastic {
    pub k: Vec<f64>,
    pub d: Vec<f64>,
}

/// fast %K = (close − lowest low) / ((highest high − lowest low) / 100) over
/// `fast_k` rows (0 when the range is 0, as in TA-Lib); slow %K = SMA(`slow_k`)
/// of fast %K; slow %D = SMA(`slow_d`) of slow %K. Both outputs start on the row
/// where %D has its first value.
pub fn stoch(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    fast_k: usize,
    slow_k: usize,
    slow_d: usize,
) -> Stochastic {
    let len = close.len();
    let mut out = Stochastic {
        k: undefined(len),
        d: undefined(len),
    };
    if fast_k == 0 || slow_k == 0 || slow_d == 0 {
        return out;
    }
    let first = (fast_k - 1) + (slow_k - 1) + (slow_d - 1);
    if first >= len {
        return out;
    }
    let lowest = window_extremes(low, fast_k, |candidate, held| candidate <= held);
    let highest = window_extremes(high, fast_k, |candidate, held| candidate >= held);
    let fast: Vec<f64> = (fast_k - 1..len)
        .zip(lowest.into_iter().zip(highest))
        .map(|(today, (lowest, highest))| {
            let diff = (highest - lowest) / 100.0;
            if diff != 0.0 {
                (close[today] - lowest) / diff
            } else {
                0.0
            }
        })
        .collect();
    // Each average runs over the values its input has, as TA-Lib's chained calls do.
    let slow = sma(&fast, slow_k);
    let signal = sma(&slow[slow_k - 1..], slow_d);
    for today in first..len {
        let in_fast = today - (fast_k - 1);
        out.k[today] = slow[in_fast];
        out.d[today] = signal[in_fast - (slow_k - 1)];
    }
    out
}

/// The extreme of each window of `period` values (the first ending on row
/// `period - 1`), where `replaces(candidate, held)` says a value takes the
/// extreme's place. As TA-Lib does, the extreme's row is kept and the window
/// rescanned only when that row leaves it: O(n) on prices instead of O(n·k).
/// NaNs never replace an extreme, as `f64::min` and `f64::max` skip them.
fn window_extremes(values: &[f64], period: usize, replaces: impl Fn(f64, f64) -> bool) -> Vec<f64> {
    // NaN as the extreme: none yet, so anything takes its place.
    let takes = |value: f64, extreme: f64| extreme.is_nan() || replaces(value, extreme);
    let mut out = Vec::with_capacity(values.len() + 1 - period);
    let (mut at, mut extreme) = (None, f64::NAN);
    for today in period - 1..values.len() {
        let trailing = today + 1 - period;
        if at.is_none_or(|at| at < trailing) {
            (at, extreme) = (None, f64::NAN);
            for (row, &value) in values.iter().enumerate().take(today + 1).skip(trailing) {
                if takes(value, extreme) {
                    (at, extreme) = (Some(row), value);
                }
            }
        } else if takes(values[today], extreme) {
            (at, extreme) = (Some(today), values[today]);
        }
        out.push(extreme);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_at_the_high_is_100() {
        let high: Vec<f64> = (0..20).map(|i| 10.0 + f64::from(i)).collect();
        let low: Vec<f64> = high.iter().map(|h| h - 5.0).collect();
        let out = stoch(&high, &low, &high, 14, 3, 3);
        assert!(out.k[16].is_nan());
        assert!((out.k[17] - 100.0).abs() < 1e-12);
        assert!((out.d[19] - 100.0).abs() < 1e-12);
    }

    #[test]
    fn window_extremes_equal_a_scan_of_every_window() {
        // A walk with ties and NaNs, its extremes leaving windows often.
        let mut state: u64 = 7;
        let values: Vec<f64> = (0..5_000)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                match state >> 60 {
                    0 => f64::NAN,
                    n => (n % 5) as f64 + ((state >> 40) % 3) as f64 * 0.25,
                }
            })
            .collect();
        for period in [1, 2, 14, 50] {
            let lowest = window_extremes(&values, period, |c, h| c <= h);
            let highest = window_extremes(&values, period, |c, h| c >= h);
            for (index, window) in values.windows(period).enumerate() {
                let min = window.iter().copied().fold(f64::INFINITY, f64::min);
                let max = window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let same = |got: f64, want: f64| got == want || got.is_nan() && want.is_infinite();
                assert!(same(lowest[index], min), "period {period} row {index}");
                assert!(same(highest[index], max), "period {period} row {index}");
            }
        }
    }
}

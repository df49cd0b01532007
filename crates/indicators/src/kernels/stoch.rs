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
    let fast: Vec<f64> = (fast_k - 1..len)
        .map(|today| {
            let window = today + 1 - fast_k..=today;
            let lowest = low[window.clone()]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let highest = high[window]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
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
}

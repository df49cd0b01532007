//! MACD: moving average convergence/divergence (TA-Lib `TA_MACD`).

use super::ema::{ema_seeded_at, smoothing};
use super::undefined;

/// The three MACD lines, each the length of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    pub macd: Vec<f64>,
    pub signal: Vec<f64>,
    pub hist: Vec<f64>,
}

/// TA-Lib's MACD: both EMAs are seeded so their seed windows end on the slow
/// EMA's first row (so the fast line is *not* the standalone EMA there), the
/// signal is an EMA of the MACD line from that row, and all three outputs start
/// once the signal has its first value.
pub fn macd(values: &[f64], fast: usize, slow: usize, signal_period: usize) -> Macd {
    let (fast, slow) = if slow < fast {
        (slow, fast)
    } else {
        (fast, slow)
    };
    let len = values.len();
    let mut out = Macd {
        macd: undefined(len),
        signal: undefined(len),
        hist: undefined(len),
    };
    if fast == 0 || signal_period == 0 {
        return out;
    }
    let line_start = slow - 1;
    let first = line_start + signal_period - 1;
    if first >= len {
        return out;
    }
    let slow_ema = ema_seeded_at(values, slow, line_start);
    let fast_ema = ema_seeded_at(values, fast, line_start);
    let line: Vec<f64> = fast_ema
        .iter()
        .zip(&slow_ema)
        .map(|(fast, slow)| fast - slow)
        .collect();

    let k = smoothing(signal_period);
    let mut signal = line[line_start..=first].iter().sum::<f64>() / signal_period as f64;
    for (today, &value) in line.iter().enumerate().skip(first) {
        if today > first {
            signal = ((value - signal) * k) + signal;
        }
        out.macd[today] = value;
        out.signal[today] = signal;
        out.hist[today] = value - signal;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_when_the_signal_line_has_a_value() {
        let values: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i)).collect();
        let out = macd(&values, 12, 26, 9);
        assert!(out.macd[..33].iter().all(|v| v.is_nan()));
        assert!(out.macd[33..].iter().all(|v| v.is_finite()));
        // A straight line: the MACD is constant and the signal equals it.
        assert!((out.hist[39]).abs() < 1e-9);
    }

    #[test]
    fn the_fast_line_is_not_the_standalone_ema() {
        let values: Vec<f64> = (0..60).map(|i| (f64::from(i) * 0.3).sin() + 10.0).collect();
        let standalone =
            super::super::ema::ema(&values, 12)[33] - super::super::ema::ema(&values, 26)[33];
        assert!((macd(&values, 12, 26, 9).macd[33] - standalone).abs() > 1e-6);
    }
}

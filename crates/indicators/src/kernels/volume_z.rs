//! Volume z-score against its own recent history.

use super::sma::sma;
use super::stddev::stddev;
use super::undefined;

/// (volume − SMA(volume)) / population stddev(volume), both TA-Lib's over
/// `period` rows. A window of constant volume (stddev 0) scores 0: the volume
/// is exactly its mean.
pub fn volume_z(volume: &[f64], period: usize) -> Vec<f64> {
    let mean = sma(volume, period);
    let deviation = stddev(volume, period);
    let mut out = undefined(volume.len());
    for (today, slot) in out.iter_mut().enumerate() {
        if deviation[today].is_nan() {
            continue;
        }
        *slot = if deviation[today] == 0.0 {
            0.0
        } else {
            (volume[today] - mean[today]) / deviation[today]
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_volume_scores_zero() {
        let out = volume_z(&[1000.0; 25], 20);
        assert!(out[18].is_nan());
        assert_eq!(out[24], 0.0);
    }
}

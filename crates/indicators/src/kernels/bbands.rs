//! BBANDS: Bollinger bands around an SMA (TA-Lib `TA_BBANDS`, MA type SMA).

use super::sma::sma;
use super::{ta_is_zero_or_neg, undefined};

#[derive(Debug, Clone, PartialEq)]
pub struct Bands {
    pub upper: Vec<f64>,
    pub middle: Vec<f64>,
    pub lower: Vec<f64>,
}

/// middle = SMA(period); upper/lower = middle ± deviations × population stddev,
/// the stddev computed as TA-Lib does from the SMA it already has:
/// sqrt(mean of squares − middle²), 0 when that is below 1e-8.
pub fn bbands(values: &[f64], period: usize, dev_up: f64, dev_down: f64) -> Bands {
    let len = values.len();
    let middle = sma(values, period);
    let mut bands = Bands {
        upper: undefined(len),
        lower: undefined(len),
        middle,
    };
    if period == 0 || len < period {
        return bands;
    }
    let n = period as f64;
    let mut sum_sq: f64 = values[..period - 1].iter().map(|x| x * x).sum();
    for today in period - 1..len {
        sum_sq += values[today] * values[today];
        let mut mean_sq = sum_sq / n;
        let trailing = values[today + 1 - period];
        sum_sq -= trailing * trailing;
        let middle = bands.middle[today];
        mean_sq -= middle * middle;
        let deviation = if ta_is_zero_or_neg(mean_sq) {
            0.0
        } else {
            mean_sq.sqrt()
        };
        bands.upper[today] = middle + deviation * dev_up;
        bands.lower[today] = middle - deviation * dev_down;
    }
    bands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_symmetric_around_the_mean() {
        let b = bbands(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 8, 2.0, 2.0);
        assert_eq!((b.lower[7], b.middle[7], b.upper[7]), (1.0, 5.0, 9.0));
        assert!(b.upper[6].is_nan());
    }
}

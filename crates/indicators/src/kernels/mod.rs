//! Indicator kernels, each a transcription of the TA-Lib C function of the same
//! name (TA-Lib 0.6.4, default compatibility, no unstable period).
//!
//! Every kernel takes one symbol's series in date order and returns a vector of
//! the same length holding NaN exactly where TA-Lib's lookback leaves no value.
//! The arithmetic follows TA-Lib's order of operations (running sums, Wilder
//! smoothing, seeds), so results agree to the last few bits rather than merely
//! to the same formula.

pub mod adx;
pub mod atr;
pub mod bbands;
pub mod ema;
pub mod macd;
pub mod obv;
pub mod returns;
pub mod rsi;
pub mod sma;
pub mod stddev;
pub mod stoch;
pub mod volatility;
pub mod volume_z;

/// TA-Lib's `TA_IS_ZERO`: treats |x| < 1e-8 as zero when guarding divisions.
pub(crate) fn ta_is_zero(x: f64) -> bool {
    -0.000_000_01 < x && x < 0.000_000_01
}

/// TA-Lib's `TA_IS_ZERO_OR_NEG`.
pub(crate) fn ta_is_zero_or_neg(x: f64) -> bool {
    x < 0.000_000_01
}

/// A series with no values yet: what a kernel returns before its lookback is met.
pub(crate) fn undefined(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}

#[cfg(test)]
pub(crate) mod test_support {
    /// Asserts `actual` is NaN where `expected` is, and otherwise within 1e-12.
    pub fn assert_series(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "length");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            if e.is_nan() {
                assert!(a.is_nan(), "row {i}: expected no value, got {a}");
            } else {
                assert!(
                    (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                    "row {i}: {a} != {e}"
                );
            }
        }
    }
}

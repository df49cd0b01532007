//! bf's features: SPEC's indicator columns computed exactly as TA-Lib computes
//! them, from the `ohlcv` table into the `features` table, and the same kernels
//! as DataFusion window functions for `bf sql`.

pub mod build;
mod error;
pub mod feature_set;
pub mod frame;
pub mod indicators;
pub mod udf;

pub use error::FeaturesError;

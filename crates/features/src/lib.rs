//! bf's features: SPEC's indicator columns, computed with the TA-Lib-exact
//! kernels of `bf-indicators`, from the `ohlcv` table into the `features` table.

pub mod build;
mod error;
pub mod feature_set;
pub mod frame;

pub use error::FeaturesError;

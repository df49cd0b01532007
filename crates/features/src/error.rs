use bf_lake::LakeError;
use datafusion::error::DataFusionError;

/// Errors of the features build and the window functions.
#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    #[error(transparent)]
    Lake(#[from] LakeError),

    #[error("reading ohlcv for features failed")]
    Read(#[source] DataFusionError),

    #[error("the lake has no ohlcv table yet")]
    NoBars,

    #[error("ohlcv rows are not in the expected shape: {0}")]
    Input(String),
}

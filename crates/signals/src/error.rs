use bf_lake::LakeError;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Errors of strategies and signal generation; each names the file and
/// strategy at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum SignalsError {
    #[error("strategies file {path}: {message}")]
    File { path: String, message: String },

    #[error("strategies file {path}: strategy {name:?}: {message}")]
    Strategy {
        path: String,
        name: String,
        message: String,
    },

    #[error("the lake has no features table yet")]
    NoFeatures,

    #[error(transparent)]
    Lake(#[from] LakeError),

    #[error(
        "keeping signals in a temporary file failed (is the temp folder full or missing? set TMPDIR)"
    )]
    Spill(#[source] std::io::Error),

    #[error("signal query failed")]
    Query(#[source] DataFusionError),
}

/// An Arrow kernel's failure on query results.
pub(crate) fn arrow_error(e: ArrowError) -> SignalsError {
    SignalsError::Query(e.into())
}

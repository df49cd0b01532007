use bf_lake::LakeError;
use bf_signals::SignalsError;
use chrono::NaiveDate;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Errors of charts and reports; each names the symbol or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the lake has no features table yet")]
    NoFeatures,

    #[error("no {interval} features for {symbol}{}", since.map_or_else(String::new, |d| format!(" since {d}")))]
    NoBars {
        symbol: String,
        interval: String,
        since: Option<NaiveDate>,
    },

    #[error("{path}: charts are written as .png or .svg")]
    Format { path: String },

    #[error("cannot draw {path}: {message}")]
    Draw { path: String, message: String },

    #[error("cannot write {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Lake(#[from] LakeError),

    #[error(transparent)]
    Signals(#[from] SignalsError),

    #[error("chart query failed")]
    Query(#[from] DataFusionError),
}

impl From<ArrowError> for ChartError {
    fn from(err: ArrowError) -> Self {
        Self::Query(err.into())
    }
}

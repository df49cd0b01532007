use std::path::PathBuf;

/// Errors a source reports for a whole request, file or symbol; bad rows are not errors but
/// [`crate::import::Rejection`]s, so one bad line never loses the rest of a file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },

    #[error("{path}: not a readable CSV file")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },

    #[error("{path}: not a readable Parquet file")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("{path}: cannot convert column {column}")]
    Arrow {
        path: PathBuf,
        column: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    #[error("{path}: unsupported file type (expected .csv or .parquet)")]
    UnsupportedFile { path: PathBuf },

    #[error(transparent)]
    Core(#[from] bf_core::CoreError),

    #[error(transparent)]
    Yahoo(#[from] crate::yahoo::YahooError),

    #[error("a worker thread failed: {0}")]
    Worker(String),

    #[error("the synthetic source makes daily bars only, not {0}")]
    SyntheticInterval(bf_core::Interval),

    #[error("end {end} is after {last}, the last day the synthetic source simulates")]
    SyntheticEnd {
        end: chrono::NaiveDate,
        last: chrono::NaiveDate,
    },
}

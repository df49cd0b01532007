use bf_lake::LakeError;
use bf_sources::SourceError;
use chrono::NaiveDate;

/// Why a use case could not run or store its result. A single symbol's or
/// file's failure is not an error: it is listed in the report.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("start {start} is after end {end}")]
    StartAfterEnd { start: NaiveDate, end: NaiveDate },

    #[error("storing {what}")]
    Store {
        what: &'static str,
        #[source]
        source: LakeError,
    },

    #[error(transparent)]
    Features(#[from] bf_features::FeaturesError),

    #[error(transparent)]
    Signals(#[from] bf_signals::SignalsError),

    #[error(transparent)]
    Cluster(#[from] bf_cluster::ClusterError),

    #[error("reading the lake")]
    Lake(#[from] LakeError),

    #[error(transparent)]
    Source(#[from] SourceError),

    #[error("a worker task failed")]
    Task(#[from] tokio::task::JoinError),
}

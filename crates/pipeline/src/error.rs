use bf_core::Interval;
use bf_lake::LakeError;
use bf_sources::SourceError;
use bf_sources::yahoo::YahooError;
use chrono::NaiveDate;

/// Why a use case could not run or store its result. A single symbol's or
/// file's failure is not an error: it is listed in the report.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("start {start} is after end {end}")]
    StartAfterEnd { start: NaiveDate, end: NaiveDate },

    #[error("the synthetic source makes daily bars only, not {0}")]
    SyntheticInterval(Interval),

    #[error("end {end} is after {last}, the last day the synthetic source simulates")]
    SyntheticEnd { end: NaiveDate, last: NaiveDate },

    #[error("storing {what}")]
    Store {
        what: &'static str,
        #[source]
        source: LakeError,
    },

    #[error("reading the lake")]
    Lake(#[from] LakeError),

    #[error(transparent)]
    Source(#[from] SourceError),

    #[error(transparent)]
    Yahoo(#[from] YahooError),

    #[error("a worker task failed")]
    Task(#[from] tokio::task::JoinError),
}

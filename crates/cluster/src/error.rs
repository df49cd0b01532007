use bf_lake::LakeError;
use datafusion::error::DataFusionError;

/// Errors of the cluster; each names the address, executor or table at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster address {address:?}: {problem}")]
    Address { address: String, problem: String },

    #[error("cannot reach the scheduler at {address}: {problem}")]
    Unreachable { address: String, problem: String },

    #[error(
        "the scheduler at {address} has no executors; start one with `bf cluster executor --scheduler {address}`"
    )]
    NoExecutors { address: String },

    #[error("scheduler at {address}: {problem}")]
    Api { address: String, problem: String },

    #[error("cannot bind {what} on {address}: {source}")]
    Bind {
        what: &'static str,
        address: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot create the executor's work folder in {path}: {source}")]
    WorkDir {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Ballista(String),

    #[error("the job on the cluster failed: {message}; nothing was committed")]
    Job { message: String },

    #[error(
        "{table} changed while the job ran (another writer committed); nothing was committed, run it again"
    )]
    Conflict { table: String },

    #[error(transparent)]
    Lake(#[from] LakeError),

    #[error(transparent)]
    Features(#[from] bf_features::FeaturesError),

    #[error(transparent)]
    Signals(#[from] bf_signals::SignalsError),

    #[error("planning the job: {0}")]
    Plan(#[source] DataFusionError),
}

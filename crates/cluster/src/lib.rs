//! bf on Apache DataFusion Ballista: `bf cluster scheduler` and `executor`
//! are Ballista's processes with bf's functions, plan node and lake object
//! stores registered; `--cluster` plans a job on the client against the lake
//! tables' current Parquet files and runs it there. Executors write the
//! output files into the table's folder and the client commits them in one
//! Delta commit, so table data never passes through the client.

mod address;
mod client;
mod codec;
mod engine;
mod error;
mod executor;
pub mod features;
mod partition_op;
mod scheduler;
pub mod signals;
pub mod sql;
mod status;
mod stores;
mod write_job;

pub use address::{DEFAULT_PORT, SchedulerAddress};
pub use client::Cluster;
pub use error::ClusterError;
pub use executor::{ExecutorOptions, ExecutorStarted, run_executor};
pub use scheduler::{SchedulerOptions, run_scheduler};
pub use status::{ClusterStatus, ExecutorStatus, JobStatus, SchedulerApi, StageTasks};
pub use write_job::{ExecutorShare, WriteOutcome};

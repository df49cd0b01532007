//! bf's use cases, each a library function that takes settings, does the work
//! against the lake and returns a typed report: the CLI parses arguments, calls
//! one of these and presents the report; `bf-bench` calls the same functions.
//! The features build and signal generation are single-stage use cases owned
//! by their crates (`bf_features::build`, `bf_signals::generate`); fetch and
//! import join sources to the lake, and `run` chains every stage.

mod error;
pub mod fetch;
pub mod import;
pub mod run;
pub mod watch;

pub use error::PipelineError;

/// Microseconds since the epoch, UTC: the `ingested_at` of a run.
fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

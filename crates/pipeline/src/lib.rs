//! bf's use cases, each a library function that takes settings, does the work
//! against the lake and returns a typed report: the CLI parses arguments, calls
//! one of these and presents the report; `bf-bench` calls the same functions.
//! (The features build and signal generation live in their own crates; fetch
//! and import are here because they join several sources to the lake.)

mod error;
pub mod fetch;
pub mod import;

pub use error::PipelineError;

/// Progress of a use case over its items (symbols, files).
pub trait Progress: Send + Sync {
    /// One more item is done; `rows` is the number of rows so far when known.
    fn item_done(&self, rows: Option<usize>);
}

impl Progress for () {
    fn item_done(&self, _: Option<usize>) {}
}

/// Microseconds since the epoch, UTC: the `ingested_at` of a run.
fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

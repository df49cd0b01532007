//! bf's lake: Delta Lake tables under one root (a local folder today), written by
//! idempotent upserts, each one atomic Delta commit, and read through DataFusion
//! with every table registered under its name.

mod append;
mod changes;
mod error;
mod lake;
mod upsert;

pub use changes::{ChangedSeries, Series};
pub use error::LakeError;
pub use lake::{Lake, LastBar, QueryResult, run_query, symbol_filter};
pub use upsert::UpsertMetrics;

//! bf's lake: Delta Lake tables under one root (a local folder or an S3 prefix), written by
//! idempotent upserts, each one atomic Delta commit, and read through DataFusion
//! with every table registered under its name.

mod append;
mod change_log;
mod changes;
mod data_file;
mod error;
mod files;
mod lake;
mod log_check;
mod maintenance;
mod query;
mod replace;
#[cfg(test)]
mod test_rows;
mod upsert;

pub use changes::{ChangedSeries, RowChanges, Series};
pub use deltalake::DeltaTable;
pub use error::LakeError;
pub use files::{DataFile, FilesCommit, SymbolRange, TableFiles, WrittenFile, register_data_files};
pub use lake::{
    Lake, QueryResult, s3_options, sql_literal, symbol_filter, symbol_range_filter, symbol_span,
};
pub use maintenance::{OptimizeReport, VacuumReport};
pub use query::{MAX_OPERATORS, QueryStream, check_expression_size, plan_read_only, run_read_only};
pub use replace::RangeReplace;
pub use upsert::UpsertMetrics;

use datafusion::error::DataFusionError;
use deltalake::DeltaTableError;

/// Errors of the lake; each names the table or location at fault.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("cannot use lake location {location:?}: {message}")]
    Location { location: String, message: String },

    #[error("S3 lake in bucket {bucket} at {endpoint}: {problem}")]
    Store {
        bucket: String,
        endpoint: String,
        problem: String,
    },

    #[error("cannot write to {location}: {problem}; nothing was committed")]
    Storage { location: String, problem: String },

    #[error("table {table} at {location}")]
    Delta {
        table: String,
        location: String,
        #[source]
        source: Box<DeltaTableError>,
    },

    #[error(
        "table {table} has columns ({found}) but bf writes ({expected}); bf does not change a table's schema"
    )]
    SchemaMismatch {
        table: String,
        found: String,
        expected: String,
    },

    #[error(
        "table {table}: log entry {entry} (version {version}) {problem}; bf neither reads nor writes a table whose log is damaged"
    )]
    DamagedLog {
        table: String,
        entry: String,
        version: u64,
        problem: String,
    },

    #[error("query on table {table} failed")]
    Scan {
        table: String,
        #[source]
        source: DataFusionError,
    },

    #[error("bf sql runs queries only (SELECT, WITH, VALUES, EXPLAIN), not {statement}")]
    NotAQuery { statement: String },

    #[error("the expression has {operators} operators; bf plans at most {limit} in one statement")]
    ExpressionTooLarge { operators: usize, limit: usize },

    /// A user's SQL failed; the message is DataFusion's own.
    #[error("{0}")]
    Query(#[source] DataFusionError),
}

impl LakeError {
    /// Whether another writer committed to the table first, so the write can
    /// be redone on the new version.
    pub fn is_conflict(&self) -> bool {
        use deltalake::kernel::transaction::TransactionError;
        let Self::Delta { source, .. } = self else {
            return false;
        };
        matches!(
            source.as_ref(),
            DeltaTableError::VersionAlreadyExists(_)
                | DeltaTableError::Transaction {
                    source: TransactionError::MaxCommitAttempts(_)
                        | TransactionError::CommitConflict(_)
                        | TransactionError::VersionAlreadyExists(_)
                }
        )
    }
}

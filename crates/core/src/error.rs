use std::path::PathBuf;

/// An error and its causes on one line (`what: why: root cause`), for
/// messages that carry on (per-file reports, warnings of commands that go on).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Errors in bf's shared vocabulary: malformed symbols, intervals and symbol lists.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid symbol {symbol:?}: {reason}")]
    InvalidSymbol {
        symbol: String,
        reason: &'static str,
    },

    #[error(
        "unknown interval {0:?} (expected one of 1m, 2m, 5m, 15m, 30m, 60m, 90m, 1h, 1d, 1wk, 1mo)"
    )]
    UnknownInterval(String),

    #[error("{file}:{line}: {source}")]
    SymbolListEntry {
        file: String,
        line: usize,
        #[source]
        source: Box<CoreError>,
    },

    #[error("symbol list {file} is empty")]
    EmptySymbolList { file: String },

    #[error("unknown symbol list {name:?}; known lists: {known}")]
    UnknownSymbolList { name: String, known: String },

    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

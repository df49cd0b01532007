//! Recognising which column is which, from the header names vendors use.

use std::path::Path;

use crate::SourceError;

/// Column positions of the OHLCV fields in a file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub symbol: Option<usize>,
    pub date: usize,
    pub open: usize,
    pub high: usize,
    pub low: usize,
    pub close: usize,
    pub adj_close: Option<usize>,
    pub volume: usize,
}

/// `Adj Close`, `adj_close`, `AdjClose` and `adj-close` all become `adjclose`.
fn normalize(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Layout {
    /// Recognises the Yahoo export layout (`Date,Open,High,Low,Close,Adj Close,Volume`),
    /// the generic lower-case one, and either with a `symbol` (or `ticker`) column.
    /// Other columns (`Dividends`, `Stock Splits`…) are ignored.
    pub fn from_headers<'a>(
        path: &Path,
        headers: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, SourceError> {
        let names: Vec<String> = headers.into_iter().map(normalize).collect();
        let find = |aliases: &[&str]| names.iter().position(|n| aliases.contains(&n.as_str()));
        let require = |field: &str, aliases: &[&str]| {
            find(aliases).ok_or_else(|| SourceError::Layout {
                path: path.to_path_buf(),
                message: format!(
                    "no {field} column (found columns: {}); expected a header like \
                     Date,Open,High,Low,Close,Adj Close,Volume or date,open,high,low,close,adj_close,volume",
                    names.join(", ")
                ),
            })
        };
        Ok(Self {
            symbol: find(&["symbol", "ticker"]),
            date: require("date", &["date", "datetime", "timestamp", "time"])?,
            open: require("open", &["open"])?,
            high: require("high", &["high"])?,
            low: require("low", &["low"])?,
            close: require("close", &["close"])?,
            adj_close: find(&["adjclose", "adjustedclose"]),
            volume: require("volume", &["volume", "vol"])?,
        })
    }
}

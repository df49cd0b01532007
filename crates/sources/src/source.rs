//! What every market-data source is to the rest of bf: symbols in, one result
//! per symbol out, each in the lake's `ohlcv` / `corporate_actions` schemas.
//! A new source is a module implementing [`Source`] plus one line in
//! [`SourceSettings::open`].

use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use bf_core::{Interval, LastBar, Symbol};
use chrono::NaiveDate;

use crate::synthetic::Synthetic;
use crate::yahoo::{Yahoo, YahooConfig};
use crate::{Bar, SourceError, TradingSession};

/// One symbol to fetch, and the last bar the lake holds of it.
#[derive(Debug, Clone)]
pub struct SymbolRequest {
    pub symbol: Symbol,
    pub stored: Option<LastBar>,
}

/// The range and interval of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub interval: Interval,
    /// Today, for the sources' history limits.
    pub today: NaiveDate,
}

/// One symbol's new bars and corporate actions.
#[derive(Debug)]
pub struct SymbolBars {
    pub symbol: Symbol,
    /// In date order, at the window's interval. Kept as bars, a third of the
    /// memory of `ohlcv` rows, until stored a group of symbols at a time.
    pub bars: Vec<Bar>,
    pub actions: RecordBatch,
    /// Bars the source sent with null prices (halts, some holidays): not stored.
    pub null_rows: usize,
    /// Bars that fail [`crate::Bar::checked`]: not stored, each with its reason.
    pub invalid: Vec<InvalidBar>,
    /// A new dividend or split re-adjusted history, so all of it was fetched again.
    pub readjusted: bool,
    /// The exchange's current or next regular session, when the source says.
    pub session: Option<TradingSession>,
}

/// A bar a source sent that is not stored, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidBar {
    pub date: NaiveDate,
    pub reason: String,
}

/// Called as each symbol finishes, with the rows it produced.
pub type OnDone = Arc<dyn Fn(&Symbol, usize) + Send + Sync>;

/// HTTP requests a network source made and retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub requests: usize,
    pub retries: usize,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// The name stored in every row's `source` column.
    fn name(&self) -> &'static str;

    /// Fetches every symbol, in request order. One symbol's failure is its own
    /// result and never stops the others; the outer error is a request the
    /// source cannot serve at all (an interval or range it does not have).
    async fn fetch_all(
        &self,
        requests: Vec<SymbolRequest>,
        window: FetchWindow,
        ingested_at: i64,
        on_done: OnDone,
    ) -> Result<Vec<Result<SymbolBars, SourceError>>, SourceError>;

    /// What the source did over the network so far.
    fn request_counts(&self) -> RequestCounts {
        RequestCounts::default()
    }
}

/// Which source, with its own settings: the registry of sources.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    /// The seeded generator: same seed and symbol, same bars.
    Synthetic {
        seed: u64,
    },
    Yahoo(YahooConfig),
}

impl SourceSettings {
    pub fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(match self {
            Self::Synthetic { seed } => Box::new(Synthetic::new(*seed)),
            Self::Yahoo(config) => Box::new(Yahoo::new(config.clone())?),
        })
    }
}

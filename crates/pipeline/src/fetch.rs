//! Fetching bars from a source into `ohlcv` and `corporate_actions`: only what
//! is new (one bar of overlap), every symbol's result reported on its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bf_core::tables::{CORPORATE_ACTIONS, OHLCV};
use bf_core::{Interval, Progress, Symbol};
use bf_lake::{Lake, UpsertMetrics};
use bf_sources::{
    Bar, FetchWindow, OnDone, SourceError, SourceSettings, SymbolBars, SymbolRequest,
    TradingSession, batches_of_symbols,
};
use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use crate::{PipelineError, now_micros};

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub symbols: Vec<Symbol>,
    pub start: NaiveDate,
    /// Last date; `None` is today.
    pub end: Option<NaiveDate>,
    pub interval: Interval,
    /// Fetch the whole range again instead of only what is new.
    pub full: bool,
    pub source: SourceSettings,
}

#[derive(Debug, Serialize)]
pub struct FetchedSymbol {
    pub symbol: String,
    pub bars: usize,
    /// Bars the source sent with null prices: dropped.
    pub null_rows: usize,
    /// Bars the source sent that cannot be stored: dropped, each named in `invalid`.
    pub invalid_rows: usize,
    pub readjusted: bool,
    /// Why the symbol failed; `None` when it was fetched.
    pub error: Option<String>,
    /// The exchange's current or next session, when the source reports it.
    #[serde(skip)]
    pub session: Option<TradingSession>,
}

#[derive(Debug, Serialize)]
pub struct FetchReport {
    pub source: &'static str,
    pub symbols: Vec<FetchedSymbol>,
    pub ohlcv: UpsertMetrics,
    pub corporate_actions: UpsertMetrics,
    /// HTTP requests made and retried (network sources only).
    pub requests: usize,
    pub retries: usize,
    pub seconds: f64,
    /// Bars a source rejected: "SYMBOL DATE: reason".
    #[serde(skip)]
    pub invalid: Vec<String>,
}

impl FetchReport {
    pub fn failed(&self) -> impl Iterator<Item = &FetchedSymbol> {
        self.symbols.iter().filter(|s| s.error.is_some())
    }
}

/// Rows of `ohlcv` per group a fetch builds and stores: about 100 MB.
const GROUP_ROWS: usize = 1_000_000;

/// Fetches bars and stores them, each table in one commit. A symbol that
/// fails is reported in the result; the others are stored.
pub async fn fetch(
    lake: &Lake,
    request: &FetchRequest,
    progress: Arc<dyn Progress>,
) -> Result<FetchReport, PipelineError> {
    fetch_as_of(lake, request, chrono::Utc::now().date_naive(), progress).await
}

/// [`fetch`] with `today` given (the default end, and the sources' history limits).
pub async fn fetch_as_of(
    lake: &Lake,
    request: &FetchRequest,
    today: NaiveDate,
    progress: Arc<dyn Progress>,
) -> Result<FetchReport, PipelineError> {
    let started = Instant::now();
    let end = request.end.unwrap_or(today);
    if request.start > end {
        return Err(PipelineError::StartAfterEnd {
            start: request.start,
            end,
        });
    }
    let stored = if request.full {
        HashMap::new()
    } else {
        lake.last_bars(request.interval).await?
    };
    let requests = request
        .symbols
        .iter()
        .map(|symbol| SymbolRequest {
            symbol: symbol.clone(),
            stored: stored.get(symbol.as_str()).copied(),
        })
        .collect();
    let window = FetchWindow {
        start: request.start,
        end,
        interval: request.interval,
        today,
    };
    let source = request.source.open()?;
    let total = request.symbols.len();
    let (symbols_done, rows_so_far) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let on_done: OnDone = Arc::new(move |_, rows| {
        let done = symbols_done.fetch_add(1, Ordering::Relaxed) + 1;
        let rows = rows_so_far.fetch_add(rows, Ordering::Relaxed) + rows;
        progress.advance(done, total, Some(rows));
    });
    let ingested_at = now_micros();
    let results = source
        .fetch_all(requests, window, ingested_at, on_done)
        .await?;
    let (symbols, invalid, bars, actions) = sort_results(&request.symbols, results);
    let mut report = FetchReport {
        source: source.name(),
        symbols,
        ohlcv: UpsertMetrics::default(),
        corporate_actions: UpsertMetrics::default(),
        requests: 0,
        retries: 0,
        seconds: 0.0,
        invalid,
    };
    let store = |what| move |source| PipelineError::Store { what, source };
    report.ohlcv = lake
        .upsert_in_groups(&OHLCV, || {
            batches_of_symbols(
                &bars,
                source.name(),
                request.interval,
                ingested_at,
                GROUP_ROWS,
            )
            .map(|(batch, last)| (vec![batch], last.to_string()))
        })
        .await
        .map_err(store("bars"))?;
    report.corporate_actions = lake
        .upsert(&CORPORATE_ACTIONS, actions)
        .await
        .map_err(store("corporate actions"))?;
    let counts = source.request_counts();
    report.requests = counts.requests;
    report.retries = counts.retries;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One symbol's fetched bars.
type SymbolSeries = (Symbol, Vec<Bar>);

/// Each symbol's result as a report entry, the bars a source rejected in
/// words, and each symbol's bars in symbol order.
fn sort_results(
    symbols: &[Symbol],
    results: Vec<Result<SymbolBars, SourceError>>,
) -> (
    Vec<FetchedSymbol>,
    Vec<String>,
    Vec<SymbolSeries>,
    Vec<RecordBatch>,
) {
    let (mut entries, mut invalid, mut bars, mut actions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (symbol, result) in symbols.iter().zip(results) {
        let mut entry = FetchedSymbol {
            symbol: symbol.to_string(),
            bars: 0,
            null_rows: 0,
            invalid_rows: 0,
            readjusted: false,
            error: None,
            session: None,
        };
        match result {
            Ok(got) => {
                invalid.extend(
                    got.invalid
                        .iter()
                        .map(|bad| format!("{symbol} {}: {}; not stored", bad.date, bad.reason)),
                );
                entry.bars = got.bars.len();
                entry.null_rows = got.null_rows;
                entry.invalid_rows = got.invalid.len();
                entry.readjusted = got.readjusted;
                entry.session = got.session;
                bars.push((symbol.clone(), got.bars));
                actions.push(got.actions);
            }
            Err(err) => entry.error = Some(err.to_string()),
        }
        entries.push(entry);
    }
    bars.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    (entries, invalid, bars, actions)
}

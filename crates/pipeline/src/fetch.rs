//! Fetching bars from a source into `ohlcv` and `corporate_actions`: only what
//! is new (one bar of overlap), every symbol's result reported on its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bf_core::dates::date_from_days;
use bf_core::tables::{CORPORATE_ACTIONS, OHLCV};
use bf_core::{Interval, Symbol};
use bf_lake::{Lake, LastBar, UpsertMetrics};
use bf_sources::synthetic::{self, Synthetic};
use bf_sources::yahoo;
use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use crate::{PipelineError, Progress, now_micros};

/// Where bars come from, with the source's own settings.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    /// The seeded generator: same seed and symbol, same bars.
    Synthetic {
        seed: u64,
    },
    Yahoo(yahoo::YahooConfig),
}

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

/// What a source produced, before it is stored.
struct Fetched {
    source: &'static str,
    symbols: Vec<FetchedSymbol>,
    invalid: Vec<String>,
    requests: usize,
    retries: usize,
    bars: Vec<RecordBatch>,
    actions: Vec<RecordBatch>,
}

/// Fetches bars and stores them, each table in one commit. A symbol that
/// fails is reported in the result; the others are stored.
pub async fn fetch(
    lake: &Lake,
    request: &FetchRequest,
    progress: Arc<dyn Progress>,
) -> Result<FetchReport, PipelineError> {
    let started = Instant::now();
    let today = chrono::Utc::now().date_naive();
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
        lake.last_bars(request.interval.as_str()).await?
    };
    let fetched = match &request.source {
        SourceSettings::Synthetic { seed } => {
            from_synthetic(request, *seed, end, &stored, progress).await?
        }
        SourceSettings::Yahoo(config) => {
            from_yahoo(request, config.clone(), end, today, &stored, &*progress).await?
        }
    };
    let store = |what| move |source| PipelineError::Store { what, source };
    let ohlcv = lake
        .upsert(&OHLCV, fetched.bars)
        .await
        .map_err(store("bars"))?;
    let corporate_actions = lake
        .upsert(&CORPORATE_ACTIONS, fetched.actions)
        .await
        .map_err(store("corporate actions"))?;
    Ok(FetchReport {
        source: fetched.source,
        symbols: fetched.symbols,
        ohlcv,
        corporate_actions,
        requests: fetched.requests,
        retries: fetched.retries,
        seconds: started.elapsed().as_secs_f64(),
        invalid: fetched.invalid,
    })
}

async fn from_synthetic(
    request: &FetchRequest,
    seed: u64,
    end: NaiveDate,
    stored: &HashMap<String, LastBar>,
    progress: Arc<dyn Progress>,
) -> Result<Fetched, PipelineError> {
    if request.interval != Interval::D1 {
        return Err(PipelineError::SyntheticInterval(request.interval));
    }
    if end > synthetic::LAST_DAY {
        return Err(PipelineError::SyntheticEnd {
            end,
            last: synthetic::LAST_DAY,
        });
    }
    let requests: Vec<synthetic::FetchRequest> = request
        .symbols
        .iter()
        .map(|symbol| synthetic::FetchRequest {
            symbol: symbol.clone(),
            stored_through: stored
                .get(symbol.as_str())
                .map(|last| date_from_days(last.date)),
        })
        .collect();
    let (start, ingested_at) = (request.start, now_micros());
    let fetched = tokio::task::spawn_blocking(move || {
        Synthetic::new(seed).fetch_all(&requests, start, end, ingested_at, &|_| {
            progress.item_done(None);
        })
    })
    .await?;
    let symbols = fetched
        .iter()
        .map(|f| FetchedSymbol {
            symbol: f.symbol.to_string(),
            bars: f.fetched.bars,
            null_rows: 0,
            invalid_rows: 0,
            readjusted: f.fetched.readjusted,
            error: None,
        })
        .collect();
    let (bars, actions) = fetched.into_iter().map(|f| (f.bars, f.actions)).unzip();
    Ok(Fetched {
        source: synthetic::SOURCE_NAME,
        symbols,
        invalid: Vec::new(),
        requests: 0,
        retries: 0,
        bars,
        actions,
    })
}

async fn from_yahoo(
    request: &FetchRequest,
    config: yahoo::YahooConfig,
    end: NaiveDate,
    today: NaiveDate,
    stored: &HashMap<String, LastBar>,
    progress: &dyn Progress,
) -> Result<Fetched, PipelineError> {
    let client = Arc::new(yahoo::Client::new(config)?);
    let requests = request
        .symbols
        .iter()
        .map(|symbol| yahoo::YahooRequest {
            symbol: symbol.clone(),
            stored: stored.get(symbol.as_str()).map(|last| yahoo::StoredBar {
                date: date_from_days(last.date),
                ts: last.ts,
                close: last.close,
                adj_close: last.adj_close,
            }),
        })
        .collect();
    let window = yahoo::FetchWindow {
        start: request.start,
        end,
        interval: request.interval,
        today,
    };
    let rows_so_far = AtomicUsize::new(0);
    let results = yahoo::fetch_all(
        Arc::clone(&client),
        requests,
        window,
        now_micros(),
        &|_, rows| {
            let rows = rows_so_far.fetch_add(rows, Ordering::Relaxed) + rows;
            progress.item_done(Some(rows));
        },
    )
    .await?;
    let mut fetched = Fetched {
        source: yahoo::SOURCE_NAME,
        symbols: Vec::new(),
        invalid: Vec::new(),
        requests: client.counts.requests.load(Ordering::Relaxed),
        retries: client.counts.retries.load(Ordering::Relaxed),
        bars: Vec::new(),
        actions: Vec::new(),
    };
    for (symbol, result) in request.symbols.iter().zip(results) {
        let mut entry = FetchedSymbol {
            symbol: symbol.to_string(),
            bars: 0,
            null_rows: 0,
            invalid_rows: 0,
            readjusted: false,
            error: None,
        };
        match result {
            Ok(got) => {
                fetched.invalid.extend(
                    got.invalid
                        .iter()
                        .map(|bad| format!("{symbol} {}: {}; not stored", bad.date, bad.reason)),
                );
                entry.bars = got.rows;
                entry.null_rows = got.null_rows;
                entry.invalid_rows = got.invalid.len();
                entry.readjusted = got.readjusted;
                fetched.bars.push(got.bars);
                fetched.actions.push(got.actions);
            }
            Err(err) => entry.error = Some(err.to_string()),
        }
        fetched.symbols.push(entry);
    }
    Ok(fetched)
}

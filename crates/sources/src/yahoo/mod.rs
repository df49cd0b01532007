//! Yahoo Finance's chart API: daily and intraday bars, dividends and splits.
//!
//! Incremental fetches ask from the last stored bar on (one bar of overlap, so a
//! corrected last bar is replaced). Yahoo re-adjusts all of a symbol's history
//! when a dividend or split arrives; when the response carries an action after
//! the stored bar, or the overlapping bar's close or adjusted close differs from
//! the stored one, the whole range is fetched again so every stored row equals
//! what a full fetch would store.

mod client;
mod convert;
#[cfg(test)]
mod fuzz;
mod limits;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use bf_core::LastBar;
use bf_core::dates::days_since_epoch;
use chrono::{NaiveDate, TimeDelta};
use futures::StreamExt;

pub use client::{Client, YahooConfig};
use convert::Converted;
pub use limits::{HistoryLimit, history_limit};

use crate::bars::ActionsBuilder;
use crate::{FetchWindow, OnDone, RequestCounts, Source, SourceError, SymbolBars, SymbolRequest};

pub const SOURCE_NAME: &str = "yahoo";
pub const DEFAULT_BASE_URL: &str = "https://query2.finance.yahoo.com";

#[derive(Debug, thiserror::Error)]
pub enum YahooError {
    #[error("{symbol}: unknown or delisted symbol ({description})")]
    NotFound { symbol: String, description: String },

    #[error("{symbol}: HTTP {status}: {message}")]
    Http {
        symbol: String,
        status: u16,
        message: String,
    },

    #[error("{symbol}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        symbol: String,
        attempts: u32,
        last: String,
    },

    #[error("{symbol}: unexpected response: {message}")]
    Response { symbol: String, message: String },

    #[error("Yahoo keeps {interval} bars for the last {days} days only; --start {start} is older")]
    BeyondHistory {
        interval: &'static str,
        days: i64,
        start: NaiveDate,
    },

    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The Yahoo chart API as a [`Source`].
#[derive(Debug)]
pub struct Yahoo {
    client: Arc<Client>,
}

impl Yahoo {
    pub fn new(config: YahooConfig) -> Result<Self, YahooError> {
        Ok(Self {
            client: Arc::new(Client::new(config)?),
        })
    }
}

#[async_trait]
impl Source for Yahoo {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    /// Fetches every symbol, `concurrency` at a time.
    async fn fetch_all(
        &self,
        requests: Vec<SymbolRequest>,
        window: FetchWindow,
        ingested_at: i64,
        on_done: OnDone,
    ) -> Result<Vec<Result<SymbolBars, SourceError>>, SourceError> {
        history_limit(window.interval).check(window.interval, window.start, window.today)?;
        let concurrency = self.client.config().concurrency.max(1);
        let mut results: Vec<(usize, Result<SymbolBars, SourceError>)> =
            futures::stream::iter(requests.into_iter().enumerate())
                .map(|(index, request)| {
                    let (client, on_done) = (Arc::clone(&self.client), Arc::clone(&on_done));
                    async move {
                        let result = fetch_symbol(&client, &request, window, ingested_at).await;
                        on_done(
                            &request.symbol,
                            result.as_ref().map_or(0, |got| got.bars.len()),
                        );
                        (index, result.map_err(SourceError::from))
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        results.sort_by_key(|(index, _)| *index);
        Ok(results.into_iter().map(|(_, result)| result).collect())
    }

    fn request_counts(&self) -> RequestCounts {
        self.client.counts()
    }
}

async fn fetch_symbol(
    client: &Client,
    request: &SymbolRequest,
    window: FetchWindow,
    ingested_at: i64,
) -> Result<SymbolBars, YahooError> {
    let symbol = request.symbol.as_str();
    let stored = request.stored.filter(|s| s.date >= window.start);
    let mut readjusted = false;
    let mut converted = match stored {
        Some(stored) => {
            let from_seconds = if window.interval.is_intraday() {
                stored.ts.div_euclid(1_000_000)
            } else {
                start_seconds(stored.date)
            };
            let incremental = fetch_range(client, symbol, from_seconds, window).await?;
            if !window.interval.is_intraday() && needs_full_history(&incremental, &stored) {
                readjusted = true;
                fetch_range(client, symbol, start_seconds(window.start), window).await?
            } else {
                // The request reaches back far enough for every exchange's
                // session; of the stored bars only the last is compared again.
                let mut incremental = incremental;
                let last = days_since_epoch(stored.date);
                incremental.bars.retain(|b| b.date >= last);
                incremental
            }
        }
        None => fetch_range(client, symbol, start_seconds(window.start), window).await?,
    };
    let (first, last) = (days_since_epoch(window.start), days_since_epoch(window.end));
    converted.bars.retain(|b| (first..=last).contains(&b.date));
    converted
        .actions
        .retain(|a| a.date >= window.start && a.date <= window.end);

    let mut actions = ActionsBuilder::new(SOURCE_NAME, ingested_at);
    for action in &converted.actions {
        actions.push(
            symbol,
            days_since_epoch(action.date),
            action.kind,
            action.value,
        );
    }
    Ok(SymbolBars {
        symbol: request.symbol.clone(),
        bars: converted.bars,
        actions: actions.finish(),
        null_rows: converted.null_rows,
        invalid: converted.invalid,
        readjusted,
        session: converted.session,
    })
}

/// Whether an incremental response shows that Yahoo re-adjusted history: an
/// action after the stored bar, or the stored bar itself now priced differently.
fn needs_full_history(incremental: &Converted, stored: &LastBar) -> bool {
    let new_action = incremental.actions.iter().any(|a| a.date > stored.date);
    let stored_day = days_since_epoch(stored.date);
    let moved = incremental
        .bars
        .iter()
        .find(|b| b.date == stored_day)
        .is_some_and(|b| differs(b.close, stored.close) || differs(b.adj_close, stored.adj_close));
    new_action || moved
}

fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The requests of one range, split where Yahoo limits a request's span,
/// concatenated in time order (a bar repeated at a window edge kept once).
async fn fetch_range(
    client: &Client,
    symbol: &str,
    from_seconds: i64,
    window: FetchWindow,
) -> Result<Converted, YahooError> {
    // Bars of the last day start before the next UTC midnight in every zone
    // west of UTC+14; later ones are dropped by date afterwards.
    let until = start_seconds(window.end + TimeDelta::days(2));
    let span = history_limit(window.interval).request_span_seconds();
    let mut all = Converted::default();
    let mut period1 = from_seconds;
    while period1 < until {
        let period2 = span.map_or(until, |s| (period1 + s).min(until));
        let result = client
            .chart(symbol, period1, period2, window.interval)
            .await?;
        let part = convert::convert(symbol, &result, window.interval)?;
        let last_ts = all.bars.last().map(|b| b.ts);
        all.bars.extend(
            part.bars
                .into_iter()
                .filter(|b| last_ts.is_none_or(|t| b.ts > t)),
        );
        for action in part.actions {
            if !all.actions.contains(&action) {
                all.actions.push(action);
            }
        }
        all.session = part.session.or(all.session);
        all.null_rows += part.null_rows;
        all.invalid.extend(part.invalid);
        period1 = period2;
    }
    Ok(all)
}

/// The day before `date` at 00:00 UTC: early enough for a session east of UTC
/// whose bars of `date` start on the previous UTC day.
fn start_seconds(date: NaiveDate) -> i64 {
    (date - TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp()
}

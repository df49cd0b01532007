//! `bf data watch`: live intraday bars into `ohlcv` until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use bf_core::{Clock, SymbolLists, error_chain};
use bf_lake::Lake;
use bf_pipeline::fetch::FetchRequest;
use bf_pipeline::watch::{self, WatchEvent, WatchRequest};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::data::yahoo_source;
use super::{Outcome, resolve_symbols, stop_requested};
use crate::args::WatchArgs;
use crate::present::{Printer, count_text};

/// Days caught up when a symbol has no bars of the interval yet.
const FIRST_CATCH_UP_DAYS: i64 = 5;

pub async fn run(
    args: WatchArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let clock = match args.now {
        Some(now) => Clock::simulated(now.to_utc(), args.clock_speed),
        None => Clock::System,
    };
    let today = clock.now().date_naive();
    let bar_seconds = f64::from(args.interval.minutes().unwrap_or(1)) * 60.0;
    let every = args.every.unwrap_or(bar_seconds);
    let request = WatchRequest {
        fetch: FetchRequest {
            symbols: resolve_symbols(&args.selection, lists)?,
            start: args
                .start
                .unwrap_or(today - TimeDelta::days(FIRST_CATCH_UP_DAYS)),
            end: None,
            interval: args.interval,
            full: false,
            source: yahoo_source(&args.yahoo),
        },
        every: TimeDelta::milliseconds((every * 1000.0) as i64),
    };
    printer.summary(&format!(
        "watching {} symbols for {} bars, polling every {every}s while their exchange is open; Ctrl-C stops after the current commit",
        request.fetch.symbols.len(),
        args.interval,
    ));
    let mut output_error = None;
    let summary = watch::watch(lake, &request, clock, stop_requested(), |event| {
        if let Err(error) = print_event(printer, &event) {
            output_error.get_or_insert(error);
        }
    })
    .await
    .context("the first poll failed; nothing is watched")?;
    if let Some(error) = output_error {
        return Err(error).context("writing the watch's output");
    }
    let text = format!(
        "watch stopped: {} polls, {} new bars, {} updated; {} polls failed",
        count_text(summary.polls),
        count_text(summary.bars_inserted),
        count_text(summary.bars_updated),
        count_text(summary.failed_polls),
    );
    if printer.json() {
        printer.json_line(&json!({
            "event": "stopped",
            "polls": summary.polls,
            "failed_polls": summary.failed_polls,
            "bars_inserted": summary.bars_inserted,
            "bars_updated": summary.bars_updated,
            "failing": summary.failing,
        }))?;
    } else {
        printer.summary(&text);
        for error in summary.failing.values() {
            printer.warn(&format!("last poll failed: {error}"));
        }
    }
    Ok(if summary.failing.is_empty() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

fn print_event(printer: &Printer, event: &WatchEvent<'_>) -> std::io::Result<()> {
    match event {
        WatchEvent::Polled { at, report } => {
            let failed: Vec<_> = report.failed().collect();
            if printer.json() {
                return printer.json_line(&json!({
                    "event": "poll",
                    "at": at.to_rfc3339(),
                    "symbols": report.symbols.len(),
                    "bars_inserted": report.ohlcv.inserted,
                    "bars_updated": report.ohlcv.updated,
                    "lake_version": report.ohlcv.version,
                    "failed": failed.iter().map(|s| json!({"symbol": s.symbol, "error": s.error})).collect::<Vec<_>>(),
                }));
            }
            let failed_text = if failed.is_empty() {
                String::new()
            } else {
                format!("; {} failed", failed.len())
            };
            printer.line(&format!(
                "{} polled {} symbols: {} new bars, {} updated{failed_text}",
                time_text(*at),
                report.symbols.len(),
                count_text(report.ohlcv.inserted),
                count_text(report.ohlcv.updated),
            ))?;
            for symbol in failed {
                printer.warn(symbol.error.as_deref().unwrap_or_default());
            }
            Ok(())
        }
        WatchEvent::Failed { at, error } => {
            let chain = error_chain(error);
            if printer.json() {
                return printer.json_line(&json!({
                    "event": "poll_failed", "at": at.to_rfc3339(), "error": chain,
                }));
            }
            printer.warn(&format!(
                "{} poll failed, tried again at the next poll: {chain}",
                time_text(*at)
            ));
            Ok(())
        }
        WatchEvent::Waiting { until, closed } => {
            if printer.json() {
                return printer.json_line(&json!({
                    "event": "waiting",
                    "until": until.to_rfc3339(),
                    "closed": closed.iter().map(|c| json!({
                        "zone": c.zone.name(), "symbols": c.symbols, "opens": c.opens.to_rfc3339(),
                    })).collect::<Vec<_>>(),
                }));
            }
            let exchanges: Vec<String> = closed
                .iter()
                .map(|c| {
                    format!(
                        "{} ({} symbols) opens {}",
                        c.zone.name(),
                        c.symbols,
                        c.opens
                            .with_timezone(&c.zone)
                            .format("%a %Y-%m-%d %H:%M %Z")
                    )
                })
                .collect();
            printer.line(&format!(
                "closed: {}; next poll at {}",
                exchanges.join(", "),
                time_text(*until)
            ))
        }
    }
}

fn time_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

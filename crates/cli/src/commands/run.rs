//! `bf run`: fetch -> features -> signals -> stats for a symbol list, each stage
//! incremental (a rerun with nothing new writes nothing), ending with one summary.

use std::time::{Duration, Instant};

use bf_core::SymbolLists;
use bf_features::build::{BuildRequest, build};
use bf_lake::Lake;
use serde::Serialize;

use super::{Outcome, data, resolve_symbols, signals};
use crate::args::{GlobalArgs, RunArgs, SignalsStatsArgs};
use crate::present::{Printer, count_text, seconds_text};

#[derive(Debug, Serialize)]
struct RunReport {
    symbols: usize,
    symbols_failed: Vec<String>,
    new_bars: usize,
    feature_rows_written: usize,
    new_signals: usize,
    signals_removed: usize,
    stage_seconds: Vec<(&'static str, f64)>,
}

pub async fn run(
    args: RunArgs,
    global: &GlobalArgs,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    let symbols: Vec<String> = resolve_symbols(&args.fetch.selection, lists)?
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let mut stages: Vec<(&'static str, Duration)> = Vec::new();

    let started = Instant::now();
    let fetched = data::fetch_bars(&args.fetch, &lake, lists, printer).await?;
    stages.push(("fetch", started.elapsed()));

    let started = Instant::now();
    let bar = printer.progress(0, "features");
    let built = build(
        &lake,
        &BuildRequest {
            symbols: Some(symbols.clone()),
            group_rows: None,
        },
        &super::features::Bar(bar.clone()),
    )
    .await?;
    bar.finish_and_clear();
    stages.push(("features", started.elapsed()));

    let started = Instant::now();
    let generated =
        signals::generate_signals_for(&lake, &symbols, args.strategies.as_deref()).await?;
    stages.push(("signals", started.elapsed()));

    let mut symbols_failed: Vec<String> = fetched.failed().map(|f| f.symbol.clone()).collect();
    for symbol in &built.missing {
        if !symbols_failed.contains(symbol) {
            symbols_failed.push(symbol.clone());
        }
    }
    let report = RunReport {
        symbols: symbols.len(),
        symbols_failed,
        new_bars: fetched.ohlcv.inserted + fetched.ohlcv.updated,
        feature_rows_written: built.inserted + built.updated,
        new_signals: generated.signals.inserted + generated.signals.updated,
        signals_removed: generated.signals.deleted,
        stage_seconds: Vec::new(),
    };

    let started = Instant::now();
    if !printer.json() {
        signals::stats(SignalsStatsArgs { recent: 10 }, &lake, printer).await?;
    }
    stages.push(("stats", started.elapsed()));

    let report = RunReport {
        stage_seconds: stages.iter().map(|(s, d)| (*s, d.as_secs_f64())).collect(),
        ..report
    };
    if printer.json() {
        printer.json_value(&report)?;
    } else {
        let nothing_new = report.new_bars == 0
            && report.feature_rows_written == 0
            && report.new_signals == 0
            && report.signals_removed == 0;
        let timings: Vec<String> = stages
            .iter()
            .map(|(stage, took)| format!("{stage} {}", seconds_text(*took)))
            .collect();
        printer.summary(&format!(
            "run: {} symbols ({} ok, {} failed); {} new bars, {} feature rows written, {} new signals{}{}; {}",
            report.symbols,
            report.symbols - report.symbols_failed.len(),
            report.symbols_failed.len(),
            count_text(report.new_bars),
            count_text(report.feature_rows_written),
            count_text(report.new_signals),
            if report.signals_removed > 0 {
                format!(", {} signals no longer firing removed", count_text(report.signals_removed))
            } else {
                String::new()
            },
            if nothing_new { " — nothing new, nothing written" } else { "" },
            timings.join(", ")
        ));
        for symbol in fetched.failed() {
            printer.warn(symbol.error.as_deref().unwrap_or_default());
        }
        for symbol in &built.missing {
            printer.warn(&format!("{symbol}: no bars; nothing computed for it"));
        }
    }
    Ok(if report.symbols_failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

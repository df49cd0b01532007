//! `bf run`: fetch -> features -> signals -> stats for a symbol list, ending
//! with one summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bf_core::{Progress, SymbolLists};
use bf_lake::Lake;
use bf_pipeline::run::{RunReport, RunRequest};

use super::{Outcome, data, es, signals};
use crate::args::{GlobalArgs, RunArgs, SignalsStatsArgs};
use crate::present::{Printer, count_text, seconds_text};

pub async fn run(
    args: RunArgs,
    global: &GlobalArgs,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    let request = RunRequest {
        fetch: data::fetch_request(&args.fetch, lists)?,
        strategies: signals::strategies(args.strategies.as_deref())?,
        cluster: super::cluster::connect(&args.cluster).await?,
    };
    let stage_progress =
        |stage, items| -> Arc<dyn Progress> { printer.step_progress(items, stage) };
    let mut report = bf_pipeline::run::run(&lake, &request, &stage_progress).await?;

    let started = Instant::now();
    if !printer.json() {
        signals::stats(SignalsStatsArgs { recent: 10 }, &lake, printer).await?;
    }
    report
        .stage_seconds
        .push(("stats", started.elapsed().as_secs_f64()));
    if !printer.json() {
        print_summary(&report, printer);
    }
    let synced = es::sync_after_commit(&args.es, &lake, printer).await;
    if printer.json() {
        printer.json_value(&es::WithSync {
            report: &report,
            elasticsearch: synced.as_ref(),
        })?;
    }
    let indexed = synced.map_or(Outcome::Success, |s| s.outcome);
    Ok(
        if report.symbols_failed.is_empty() && indexed == Outcome::Success {
            Outcome::Success
        } else {
            Outcome::SomeFailed
        },
    )
}

fn print_summary(report: &RunReport, printer: &Printer) {
    let timings: Vec<String> = report
        .stage_seconds
        .iter()
        .map(|(stage, seconds)| {
            format!(
                "{stage} {}",
                seconds_text(Duration::from_secs_f64(*seconds))
            )
        })
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
            format!(
                ", {} signals no longer firing removed",
                count_text(report.signals_removed)
            )
        } else {
            String::new()
        },
        if report.nothing_new() {
            " — nothing new, nothing written"
        } else {
            ""
        },
        timings.join(", ")
    ));
    for symbol in report.fetched.failed() {
        printer.warn(symbol.error.as_deref().unwrap_or_default());
    }
    for symbol in &report.built.missing {
        printer.warn(&format!("{symbol}: no bars; nothing computed for it"));
    }
}

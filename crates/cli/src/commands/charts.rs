//! `bf chart` and `bf report`.

use std::path::PathBuf;

use bf_charts::{ChartSeries, render_to_file, write_report};
use bf_core::SymbolLists;
use bf_lake::Lake;

use super::Outcome;
use crate::args::{ChartArgs, GlobalArgs, ReportArgs};
use crate::present::{Printer, count_text, seconds_text};

pub async fn chart(
    args: ChartArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let symbol = bf_core::Symbol::parse(&args.symbol)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.png", symbol.as_str())));
    // Checked before any query so a wrong extension fails at once.
    bf_charts::ImageFormat::from_path(&out)?;
    let lake = Lake::open(&global.lake)?;
    let ctx = lake.session().await?;
    let series =
        ChartSeries::load(&ctx, symbol.as_str(), args.interval.as_str(), args.since).await?;
    render_to_file(&series, &out, (args.width, args.height))?;
    let (first, last) = (series.bars[0].date, series.bars[series.bars.len() - 1].date);
    if printer.json() {
        printer.json_value(&serde_json::json!({
            "file": out.display().to_string(),
            "symbol": series.symbol,
            "bars": series.bars.len(),
            "first": first.to_string(),
            "last": last.to_string(),
            "signals": series.markers.len(),
            "width": args.width,
            "height": args.height,
        }))?;
    } else {
        printer.summary(&format!(
            "{}: {} bars ({first} – {last}), {} signals -> {} ({}×{}) in {}",
            series.symbol,
            count_text(series.bars.len()),
            count_text(series.markers.len()),
            out.display(),
            args.width,
            args.height,
            seconds_text(started.elapsed())
        ));
    }
    Ok(Outcome::Success)
}

pub async fn report(
    args: ReportArgs,
    global: &GlobalArgs,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let list = lists.load(&args.symbol_list)?;
    let symbols: Vec<String> = list
        .symbols
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let lake = Lake::open(&global.lake)?;
    let bar = printer.progress(symbols.len() as u64, "charts");
    let summary = write_report(
        &lake,
        &list.name,
        &symbols,
        args.interval.as_str(),
        &args.out,
        &|done| bar.set_position(done as u64),
    )
    .await?;
    bar.finish_and_clear();
    if printer.json() {
        printer.json_value(&serde_json::json!({
            "page": summary.page.display().to_string(),
            "charts": summary.charts,
            "signals": summary.signals,
            "missing": summary.missing.iter().map(|(s, why)| serde_json::json!({"symbol": s, "reason": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        for (_, reason) in &summary.missing {
            printer.warn(reason);
        }
        printer.summary(&format!(
            "report: {} with {} charts and {} signals in {}",
            summary.page.display(),
            count_text(summary.charts),
            count_text(summary.signals),
            seconds_text(started.elapsed())
        ));
    }
    Ok(if summary.missing.is_empty() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

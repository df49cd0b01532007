//! `bf data fetch | import | status`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use bf_core::Progress as _;
use bf_core::SymbolLists;
use bf_core::tables::OHLCV;
use bf_lake::{Lake, UpsertMetrics};
use bf_pipeline::fetch::{FetchReport, FetchRequest};
use bf_sources::SourceSettings;
use bf_sources::yahoo;

use super::{Outcome, resolve_symbols};
use crate::args::{
    DataCommand, FetchArgs, GlobalArgs, ImportArgs, OutputFormat, SourceKind, YahooArgs,
};
use crate::present::{Printer, batch_rows, count_text, seconds_text};

pub async fn run(
    command: DataCommand,
    global: &GlobalArgs,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    match command {
        DataCommand::Fetch(args) => fetch(args, &lake, lists, printer).await,
        DataCommand::Watch(args) => super::watch::run(args, &lake, lists, printer).await,
        DataCommand::Import(args) => import(args, &lake, printer).await,
        DataCommand::Status => status(&lake, printer).await,
    }
}

/// The pipeline's fetch request for parsed flags.
pub fn fetch_request(args: &FetchArgs, lists: &SymbolLists) -> anyhow::Result<FetchRequest> {
    let source = match args.source {
        SourceKind::Synthetic => SourceSettings::Synthetic { seed: args.seed },
        SourceKind::Yahoo => yahoo_source(&args.yahoo),
    };
    Ok(FetchRequest {
        symbols: resolve_symbols(&args.selection, lists)?,
        start: args.start,
        end: args.end,
        interval: args.interval,
        full: args.full,
        source,
    })
}

pub fn yahoo_source(args: &YahooArgs) -> SourceSettings {
    SourceSettings::Yahoo(yahoo::YahooConfig {
        base_url: args.yahoo_url.clone(),
        concurrency: args.concurrency as usize,
        requests_per_second: args.rate_limit,
        max_retries: args.retries,
        // Validated when parsed: finite, positive, at most a day.
        timeout: std::time::Duration::from_secs_f64(args.timeout),
        ..yahoo::YahooConfig::default()
    })
}

/// Fetches bars and stores them, with a progress bar and no other output.
async fn fetch_bars(
    args: &FetchArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<FetchReport> {
    let request = fetch_request(args, lists)?;
    let progress = printer.step_progress(request.symbols.len(), "fetch");
    let report = bf_pipeline::fetch::fetch(lake, &request, progress.clone()).await;
    progress.finish();
    Ok(report?)
}

async fn fetch(
    args: FetchArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let report = fetch_bars(&args, lake, lists, printer).await?;
    let ohlcv = report.ohlcv;
    if printer.json() {
        printer.json_value(&report)?;
    } else {
        let rows = report
            .symbols
            .iter()
            .map(|s| {
                let note = match (&s.error, s.readjusted) {
                    (Some(error), _) => format!("FAILED: {error}"),
                    (None, true) => "history re-adjusted (new dividend or split)".into(),
                    (None, false) => String::new(),
                };
                vec![
                    s.symbol.clone(),
                    count_text(s.bars),
                    count_text(s.null_rows),
                    count_text(s.invalid_rows),
                    note,
                ]
            })
            .collect();
        printer.table(
            &[
                "symbol",
                "bars fetched",
                "null rows skipped",
                "invalid",
                "note",
            ],
            &["bars fetched", "null rows skipped", "invalid"],
            rows,
        )?;
        for line in &report.invalid {
            printer.warn(line);
        }
        let failed = report.failed().count();
        let requests = if report.requests > 0 {
            format!(
                ", {} requests ({} retried)",
                count_text(report.requests),
                count_text(report.retries)
            )
        } else {
            String::new()
        };
        printer.summary(&format!(
            "fetched {} of {} symbols from {}: {} in {}{requests}",
            report.symbols.len() - failed,
            report.symbols.len(),
            report.source,
            upsert_text(&ohlcv, "bars"),
            seconds_text(started.elapsed()),
        ));
        for symbol in report.failed() {
            printer.warn(symbol.error.as_deref().unwrap_or_default());
        }
    }
    Ok(if report.failed().next().is_some() {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    })
}

/// Rejections listed in full before the summary; beyond this many, a count.
const REJECTIONS_SHOWN: usize = 50;

async fn import(args: ImportArgs, lake: &Lake, printer: &Printer) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let paths = expand_paths(&args.paths)?;
    let progress = printer.step_progress(paths.len(), "import");
    let report =
        bf_pipeline::import::import(lake, paths, args.interval, args.strict, progress.clone())
            .await;
    progress.finish();
    let report = report?;
    if printer.json() {
        printer.json_value(&report)?;
    } else {
        for (file, error) in &report.failed_files {
            printer.warn(&format!("{} skipped: {error}", file.display()));
        }
        for rejection in report.rejections.iter().take(REJECTIONS_SHOWN) {
            printer.warn(&format!("rejected {rejection}"));
        }
        if report.rejections.len() > REJECTIONS_SHOWN {
            printer.warn(&format!(
                "… and {} more rejected rows (--json lists them all)",
                report.rejections.len() - REJECTIONS_SHOWN
            ));
        }
        let stored = match &report.ohlcv {
            Some(metrics) => upsert_text(metrics, "rows"),
            None => "nothing written (--strict)".to_string(),
        };
        printer.summary(&format!(
            "imported {} files ({} failed): {} rows read, {} rejected, {} identical duplicates; {} in {}",
            report.files,
            report.failed_files.len(),
            count_text(report.rows_read),
            count_text(report.rejections.len()),
            count_text(report.identical_duplicates),
            stored,
            seconds_text(started.elapsed()),
        ));
    }
    Ok(if report.is_clean() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

/// Files as given, and the `.csv` / `.parquet` files inside folders, sorted.
fn expand_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| is_data_file(p))
                .collect();
            inside.sort();
            anyhow::ensure!(
                !inside.is_empty(),
                "{} holds no .csv or .parquet file",
                path.display()
            );
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn is_data_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "csv" | "parquet"))
}

async fn status(lake: &Lake, printer: &Printer) -> anyhow::Result<Outcome> {
    if lake.version(&OHLCV).await?.is_none() {
        if printer.json() {
            printer.json_value(&serde_json::json!([]))?;
        }
        printer.summary(&format!(
            "the lake at {} holds no bars yet; try `bf data fetch --source synthetic --symbol-list demo_small`",
            lake.root()
        ));
        return Ok(Outcome::Success);
    }
    let result = lake
        .sql(
            "SELECT symbol, \"interval\", count(*) AS rows, min(date) AS first, max(date) AS last, \
             date_trunc('second', max(ingested_at)) AS last_ingest, \
             array_to_string(array_sort(array_agg(DISTINCT source)), ',') AS source \
             FROM ohlcv GROUP BY symbol, \"interval\" ORDER BY symbol, \"interval\"",
        )
        .await?;
    if printer.json() {
        printer.batches(OutputFormat::Json, &result.schema, &result.batches)?;
        return Ok(Outcome::Success);
    }
    let mut rows = batch_rows(&result.batches)?;
    let symbols: std::collections::HashSet<&String> = rows.iter().map(|r| &r[0]).collect();
    let symbol_count = symbols.len();
    let total: usize = rows
        .iter()
        .map(|r| r[2].parse::<usize>().unwrap_or(0))
        .sum();
    let first = rows.iter().map(|r| r[3].clone()).min().unwrap_or_default();
    let last = rows.iter().map(|r| r[4].clone()).max().unwrap_or_default();
    let last_ingest = rows.iter().map(|r| r[5].clone()).max().unwrap_or_default();
    for row in &mut rows {
        row[2] = count_text(row[2].parse().unwrap_or(0));
    }
    rows.push(vec![
        format!("total ({symbol_count})"),
        String::new(),
        count_text(total),
        first,
        last,
        last_ingest,
        String::new(),
    ]);
    let header: Vec<&str> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    printer.table(&header, &["rows"], rows)?;
    let version = lake.version(&OHLCV).await?.unwrap_or_default();
    printer.summary(&format!(
        "{symbol_count} symbols, {} bars in {} (ohlcv version {version})",
        count_text(total),
        lake.root()
    ));
    Ok(Outcome::Success)
}

fn upsert_text(metrics: &UpsertMetrics, noun: &str) -> String {
    let commit = match (metrics.committed, metrics.version) {
        (true, Some(version)) => format!("committed version {version}"),
        (_, Some(version)) => format!("no change, still version {version}"),
        (_, None) => "no table written".to_string(),
    };
    let retried = match metrics.conflicts_retried {
        0 => String::new(),
        1 => "; another writer committed first, so it was redone once".to_string(),
        n => format!("; other writers committed first, so it was redone {n} times"),
    };
    format!(
        "{} new {noun}, {} updated, {} unchanged ({commit}{retried})",
        count_text(metrics.inserted),
        count_text(metrics.updated),
        count_text(metrics.unchanged),
    )
}

//! `bf data fetch | import | status`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use bf_core::tables::{CORPORATE_ACTIONS, OHLCV};
use bf_core::{Interval, SymbolLists};
use bf_lake::{Lake, UpsertMetrics};
use bf_sources::import::{Imported, Rejection};
use bf_sources::synthetic::{FetchRequest, Synthetic};
use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use super::{Outcome, now_micros, resolve_symbols};
use crate::args::{DataCommand, FetchArgs, GlobalArgs, ImportArgs, OutputFormat, SourceKind};
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
        DataCommand::Import(args) => import(args, &lake, printer).await,
        DataCommand::Status => status(&lake, printer).await,
    }
}

#[derive(Debug, Serialize)]
pub struct FetchedSymbol {
    symbol: String,
    bars: usize,
    readjusted: bool,
}

#[derive(Debug, Serialize)]
pub struct FetchReport {
    pub source: &'static str,
    pub symbols: Vec<FetchedSymbol>,
    pub ohlcv: UpsertMetrics,
    pub corporate_actions: UpsertMetrics,
    pub seconds: f64,
}

/// Fetches bars and stores them: the work of `bf data fetch` (and of `bf run`'s
/// first stage), with a progress bar and no other output.
pub async fn fetch_bars(
    args: &FetchArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<FetchReport> {
    let started = Instant::now();
    let symbols = resolve_symbols(&args.selection, lists)?;
    let end = args.end.unwrap_or_else(|| chrono::Utc::now().date_naive());
    anyhow::ensure!(
        args.start <= end,
        "--start {} is after --end {end}",
        args.start
    );
    let SourceKind::Synthetic = args.source;
    anyhow::ensure!(
        args.interval == Interval::D1,
        "the synthetic source makes daily bars only; use --interval 1d"
    );

    let stored = lake.last_dates(args.interval.as_str()).await?;
    let requests: Vec<FetchRequest> = symbols
        .iter()
        .map(|symbol| FetchRequest {
            symbol: symbol.clone(),
            stored_through: stored
                .get(symbol.as_str())
                .map(|&days| date_from_days(days)),
        })
        .collect();
    let progress = printer.progress(requests.len() as u64, "fetch");
    let synthetic = Synthetic::new(args.seed);
    let ingested_at = now_micros();
    let (start, bar) = (args.start, progress.clone());
    let fetched = tokio::task::spawn_blocking(move || {
        synthetic.fetch_all(&requests, start, end, ingested_at, &|_| bar.inc(1))
    })
    .await?;
    progress.finish_and_clear();

    let symbols: Vec<FetchedSymbol> = fetched
        .iter()
        .map(|f| FetchedSymbol {
            symbol: f.symbol.to_string(),
            bars: f.fetched.bars,
            readjusted: f.fetched.readjusted,
        })
        .collect();
    let (bars, actions): (Vec<RecordBatch>, Vec<RecordBatch>) =
        fetched.into_iter().map(|f| (f.bars, f.actions)).unzip();
    let ohlcv = lake.upsert(&OHLCV, bars).await.context("storing bars")?;
    let corporate_actions = lake
        .upsert(&CORPORATE_ACTIONS, actions)
        .await
        .context("storing corporate actions")?;
    let report = FetchReport {
        source: "synthetic",
        symbols,
        ohlcv,
        corporate_actions,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(report)
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
                vec![
                    s.symbol.clone(),
                    count_text(s.bars),
                    if s.readjusted {
                        "history re-adjusted".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        printer.table(&["symbol", "bars fetched", "note"], &["bars fetched"], rows)?;
        printer.summary(&format!(
            "fetched {} symbols from {}: {} in {}",
            report.symbols.len(),
            report.source,
            upsert_text(&ohlcv, "bars"),
            seconds_text(started.elapsed()),
        ));
    }
    Ok(Outcome::Success)
}

/// What `bf data import` did, for the summary and for `bf bench`.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub files: usize,
    pub failed_files: Vec<(PathBuf, String)>,
    pub rows_read: usize,
    pub identical_duplicates: usize,
    pub rejections: Vec<Rejection>,
    pub ohlcv: Option<UpsertMetrics>,
    pub read_seconds: f64,
    pub write_seconds: f64,
}

impl ImportReport {
    pub fn is_clean(&self) -> bool {
        self.failed_files.is_empty() && self.rejections.is_empty()
    }
}

/// Reads the files and upserts their bars: the work of `bf data import`.
/// With `strict`, any rejected row or file means nothing is written.
pub async fn import_files(
    lake: &Lake,
    paths: Vec<PathBuf>,
    interval: Interval,
    strict: bool,
    printer: &Printer,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let progress = printer.progress(paths.len() as u64, "import");
    let bar = progress.clone();
    let ingested_at = now_micros();
    let imported: Imported = tokio::task::spawn_blocking(move || {
        bf_sources::import::import_files(&paths, interval, ingested_at, &|_| bar.inc(1))
    })
    .await?;
    progress.finish_and_clear();
    let read_seconds = started.elapsed().as_secs_f64();

    let mut report = ImportReport {
        files: imported.files.len(),
        failed_files: imported
            .failed_files()
            .map(|f| (f.file.clone(), f.error.clone().unwrap_or_default()))
            .collect(),
        rows_read: imported.rows_read(),
        identical_duplicates: imported.identical_duplicates,
        rejections: imported.rejections,
        ohlcv: None,
        read_seconds,
        write_seconds: 0.0,
    };
    if strict && !report.is_clean() {
        return Ok(report);
    }
    let written = Instant::now();
    report.ohlcv = Some(
        lake.upsert(&OHLCV, vec![imported.bars])
            .await
            .context("storing bars")?,
    );
    report.write_seconds = written.elapsed().as_secs_f64();
    Ok(report)
}

/// Rejections listed in full before the summary; beyond this many, a count.
const REJECTIONS_SHOWN: usize = 50;

async fn import(args: ImportArgs, lake: &Lake, printer: &Printer) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let paths = expand_paths(&args.paths)?;
    let report = import_files(lake, paths, args.interval, args.strict, printer).await?;
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
    format!(
        "{} new {noun}, {} updated, {} unchanged ({commit})",
        count_text(metrics.inserted),
        count_text(metrics.updated),
        count_text(metrics.unchanged),
    )
}

fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
        + chrono::Duration::days(i64::from(days))
}

//! `bf data fetch | import | status`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use bf_core::tables::{CORPORATE_ACTIONS, OHLCV};
use bf_core::{Interval, SymbolLists};
use bf_lake::{Lake, UpsertMetrics};
use bf_sources::import::{Imported, Rejection};
use bf_sources::synthetic::{self, FetchRequest, Synthetic};
use bf_sources::yahoo;
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
    pub symbol: String,
    pub bars: usize,
    /// Bars the source sent with null prices: dropped.
    pub null_rows: usize,
    /// Bars with a price <= 0 or high < low: dropped, each named in a warning.
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

/// One symbol's fetched batches, whatever the source.
struct SourceBatches {
    bars: Vec<RecordBatch>,
    actions: Vec<RecordBatch>,
}

/// Fetches bars and stores them: the work of `bf data fetch` (and of `bf run`'s
/// first stage), with a progress bar and no other output. A symbol that fails
/// is reported in the result; the others are stored.
pub async fn fetch_bars(
    args: &FetchArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<FetchReport> {
    let started = Instant::now();
    let symbols = resolve_symbols(&args.selection, lists)?;
    let today = chrono::Utc::now().date_naive();
    let end = args.end.unwrap_or(today);
    anyhow::ensure!(
        args.start <= end,
        "--start {} is after --end {end}",
        args.start
    );
    let stored = if args.full {
        HashMap::new()
    } else {
        lake.last_bars(args.interval.as_str()).await?
    };
    let progress = printer.progress(symbols.len() as u64, "fetch");
    let ingested_at = now_micros();
    let (report, batches) = match args.source {
        SourceKind::Synthetic => {
            anyhow::ensure!(
                args.interval == Interval::D1,
                "the synthetic source makes daily bars only; use --interval 1d"
            );
            anyhow::ensure!(
                end <= synthetic::LAST_DAY,
                "--end {end} is after {}, the last day the synthetic source simulates",
                synthetic::LAST_DAY
            );
            let requests: Vec<FetchRequest> = symbols
                .iter()
                .map(|symbol| FetchRequest {
                    symbol: symbol.clone(),
                    stored_through: stored
                        .get(symbol.as_str())
                        .map(|last| date_from_days(last.date)),
                })
                .collect();
            let synthetic = Synthetic::new(args.seed);
            let (start, bar) = (args.start, progress.clone());
            let fetched = tokio::task::spawn_blocking(move || {
                synthetic.fetch_all(&requests, start, end, ingested_at, &|_| bar.inc(1))
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
            (
                (synthetic::SOURCE_NAME, symbols, Vec::new(), 0, 0),
                SourceBatches { bars, actions },
            )
        }
        SourceKind::Yahoo => {
            let client = Arc::new(yahoo::Client::new(yahoo::YahooConfig {
                base_url: args.yahoo_url.clone(),
                concurrency: args.concurrency as usize,
                requests_per_second: args.rate_limit,
                max_retries: args.retries,
                timeout: std::time::Duration::try_from_secs_f64(args.timeout)
                    .ok()
                    .filter(|t| !t.is_zero())
                    .context("--timeout must be a positive number of seconds")?,
                ..yahoo::YahooConfig::default()
            })?);
            let requests = symbols
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
                start: args.start,
                end,
                interval: args.interval,
                today,
            };
            let (bar, rows_so_far) = (progress.clone(), AtomicUsize::new(0));
            let results = yahoo::fetch_all(
                Arc::clone(&client),
                requests,
                window,
                ingested_at,
                &|_, rows| {
                    let rows = rows_so_far.fetch_add(rows, Ordering::Relaxed) + rows;
                    bar.set_message(format!("fetch {} rows", count_text(rows)));
                    bar.inc(1);
                },
            )
            .await?;
            let (mut fetched, mut invalid, mut batches) = (
                Vec::new(),
                Vec::new(),
                SourceBatches {
                    bars: Vec::new(),
                    actions: Vec::new(),
                },
            );
            for (symbol, result) in symbols.iter().zip(results) {
                match result {
                    Ok(got) => {
                        invalid.extend(got.invalid.iter().map(|bad| {
                            format!("{symbol} {}: {}; not stored", bad.date, bad.reason)
                        }));
                        fetched.push(FetchedSymbol {
                            symbol: symbol.to_string(),
                            bars: got.rows,
                            null_rows: got.null_rows,
                            invalid_rows: got.invalid.len(),
                            readjusted: got.readjusted,
                            error: None,
                        });
                        batches.bars.push(got.bars);
                        batches.actions.push(got.actions);
                    }
                    Err(err) => fetched.push(FetchedSymbol {
                        symbol: symbol.to_string(),
                        bars: 0,
                        null_rows: 0,
                        invalid_rows: 0,
                        readjusted: false,
                        error: Some(err.to_string()),
                    }),
                }
            }
            let counts = &client.counts;
            (
                (
                    yahoo::SOURCE_NAME,
                    fetched,
                    invalid,
                    counts.requests.load(Ordering::Relaxed),
                    counts.retries.load(Ordering::Relaxed),
                ),
                batches,
            )
        }
    };
    progress.finish_and_clear();
    let (source, symbols, invalid, requests, retries) = report;
    let ohlcv = lake
        .upsert(&OHLCV, batches.bars)
        .await
        .context("storing bars")?;
    let corporate_actions = lake
        .upsert(&CORPORATE_ACTIONS, batches.actions)
        .await
        .context("storing corporate actions")?;
    Ok(FetchReport {
        source,
        symbols,
        ohlcv,
        corporate_actions,
        requests,
        retries,
        seconds: started.elapsed().as_secs_f64(),
        invalid,
    })
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

fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
        + chrono::Duration::days(i64::from(days))
}

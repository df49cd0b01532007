//! `bf-bench fetch | import | features | signals`: throughput benchmarks on
//! generated data.
//!
//! fetch: see `bench/fetch.rs`.
//! import: generates synthetic files (untimed), imports them into a fresh lake,
//! then imports them again unchanged, printing rows/s and peak memory of both.
//! features: generates an `ohlcv` table (untimed), builds features from it, builds
//! again with nothing changed, then appends one day for every symbol and builds
//! again, printing each phase.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bf_core::tables::{OHLCV, col};
use bf_core::{Interval, Symbol};
use bf_features::build::BuildRequest;
use bf_lake::Lake;
use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
use bf_sources::{ActionsBuilder, BarsBuilder};
use chrono::{Datelike, NaiveDate, Weekday};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use serde::Serialize;

use bf_pipeline::import::ImportReport;

use crate::fetch;
use crate::present::{Printer, count_text};
use crate::{BenchCommand, BenchFeaturesArgs, BenchImportArgs, BenchSignalsArgs, FileFormat};

pub async fn run(command: BenchCommand, printer: &Printer) -> anyhow::Result<()> {
    match command {
        BenchCommand::Fetch(args) => fetch::fetch(args, printer).await,
        BenchCommand::YahooServer(args) => fetch::yahoo_server(args),
        BenchCommand::Import(args) => import(args, printer).await,
        BenchCommand::Features(args) => features(args, printer).await,
        BenchCommand::Signals(args) => signals(args, printer).await,
        BenchCommand::Es(args) => crate::es::es(args, printer).await,
        BenchCommand::Kernels(args) => crate::kernels::kernels(args, printer).await,
    }
}

#[derive(Debug, Serialize)]
struct Pass {
    pass: &'static str,
    /// Where the lake is: local disk or an S3 URL.
    store: String,
    rows: usize,
    read_seconds: f64,
    write_seconds: f64,
    total_seconds: f64,
    rows_per_second: f64,
    peak_rss_mib: f64,
    new_rows: usize,
    files_added: usize,
}

const COLUMNS: [&str; 10] = [
    "pass",
    "lake",
    "rows",
    "read s",
    "write s",
    "total s",
    "rows/s",
    "peak RSS MiB",
    "new rows",
    "files added",
];

/// The work folder (a temporary one unless given) with `names` emptied.
pub(crate) fn work_folders(
    dir: Option<&Path>,
    names: &[&str],
) -> anyhow::Result<(Option<tempfile::TempDir>, Vec<PathBuf>)> {
    let temp = if dir.is_none() {
        Some(tempfile::tempdir()?)
    } else {
        None
    };
    let root = dir.map_or_else(
        || temp.as_ref().expect("made above").path().to_path_buf(),
        Path::to_path_buf,
    );
    let mut folders = Vec::new();
    for name in names {
        let folder = root.join(name);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("cannot clear {}", folder.display()))?;
        }
        std::fs::create_dir_all(&folder)?;
        folders.push(folder);
    }
    Ok((temp, folders))
}

async fn import(args: BenchImportArgs, printer: &Printer) -> anyhow::Result<()> {
    let (_temp, folders) = work_folders(args.dir.as_deref(), &["files", "lake"])?;
    let (files_dir, lake_dir) = (&folders[0], &folders[1]);

    let generated = Instant::now();
    let paths = write_files(
        files_dir,
        args.generated.symbols,
        args.generated.days,
        args.format,
    )?;
    printer.summary(&format!(
        "generated {} {:?} files of {} days in {:.1}s (untimed)",
        args.generated.symbols,
        args.format,
        args.generated.days,
        generated.elapsed().as_secs_f64()
    ));

    // The local lake, then (with --s3-lake) the same passes on object storage.
    let mut lakes = vec![(
        "local disk".to_string(),
        Lake::open(lake_dir.to_str().context("work folder is not UTF-8")?)?,
    )];
    if let Some(url) = &args.s3_lake {
        lakes.push((url.clone(), Lake::open(url)?));
    }
    let mut passes = Vec::new();
    for (store, lake) in &lakes {
        for pass in ["first import", "re-import"] {
            reset_peak_rss();
            let started = Instant::now();
            let report: ImportReport = bf_pipeline::import::import(
                lake,
                paths.clone(),
                Interval::D1,
                true,
                std::sync::Arc::new(()),
            )
            .await?;
            let total_seconds = started.elapsed().as_secs_f64();
            anyhow::ensure!(
                report.is_clean(),
                "generated files were rejected: {:?}",
                report.rejections.first()
            );
            let metrics = report.ohlcv.unwrap_or_default();
            passes.push(Pass {
                pass,
                store: store.clone(),
                rows: report.rows_read,
                read_seconds: report.read_seconds,
                write_seconds: report.write_seconds,
                total_seconds,
                rows_per_second: report.rows_read as f64 / total_seconds,
                peak_rss_mib: peak_rss_mib(),
                new_rows: metrics.inserted,
                files_added: metrics.files_added,
            });
        }
    }

    if printer.json() {
        printer.json_value(&passes)?;
    } else {
        let rows = passes
            .iter()
            .map(|p| {
                vec![
                    p.pass.to_string(),
                    p.store.clone(),
                    count_text(p.rows),
                    format!("{:.2}", p.read_seconds),
                    format!("{:.2}", p.write_seconds),
                    format!("{:.2}", p.total_seconds),
                    count_text(p.rows_per_second as usize),
                    format!("{:.0}", p.peak_rss_mib),
                    count_text(p.new_rows),
                    p.files_added.to_string(),
                ]
            })
            .collect();
        // Every column but the pass and store names is a number.
        printer.table(&COLUMNS, &COLUMNS[2..], rows)?;
        printer.summary(&format!(
            "{} symbols × {} days, {:?} files; local lake at {}",
            args.generated.symbols,
            args.generated.days,
            args.format,
            lake_dir.display()
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct FeaturesPass {
    pass: &'static str,
    series_built: usize,
    rows_read: usize,
    read_seconds: f64,
    compute_seconds: f64,
    write_seconds: f64,
    total_seconds: f64,
    cpu_seconds: f64,
    rows_per_second: f64,
    compute_rows_per_second: f64,
    peak_rss_mib: f64,
    rows_written: usize,
    commits: usize,
    files_added: usize,
}

const FEATURES_COLUMNS: [&str; 13] = [
    "pass",
    "series",
    "rows read",
    "read s",
    "compute s",
    "write s",
    "total s",
    "CPU s",
    "rows/s",
    "compute rows/s",
    "peak RSS MiB",
    "rows written",
    "files",
];

async fn features(args: BenchFeaturesArgs, printer: &Printer) -> anyhow::Result<()> {
    let (_temp, folders) = work_folders(args.dir.as_deref(), &["lake"])?;
    let lake = Lake::open(folders[0].to_str().context("work folder is not UTF-8")?)?;
    let start = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    let end = nth_weekday_from(start, args.generated.days);
    let next_day = nth_weekday_from(end, 2);
    let symbols = bench_symbols(args.generated.symbols)?;
    let generated = Instant::now();
    store_synthetic(&lake, &symbols, start, end).await?;
    printer.summary(&format!(
        "generated ohlcv: {} symbols × {} days in {:.1}s (untimed)",
        args.generated.symbols,
        args.generated.days,
        generated.elapsed().as_secs_f64()
    ));

    let request = BuildRequest {
        symbols: None,
        group_rows: args.group_rows,
    };
    let mut passes = Vec::new();
    for pass in ["first build", "nothing changed", "one new day"] {
        if pass == "one new day" {
            lake.upsert(&OHLCV, vec![synthetic_bars(&symbols, next_day, next_day)])
                .await?;
        }
        reset_peak_rss();
        let (started, cpu_before) = (Instant::now(), cpu_seconds());
        let report = bf_features::build::build(&lake, &request, &()).await?;
        let total_seconds = started.elapsed().as_secs_f64();
        let cpu_seconds = cpu_seconds() - cpu_before;
        let phases = report.phases;
        passes.push(FeaturesPass {
            pass,
            series_built: report.series_built,
            rows_read: report.rows_read,
            read_seconds: phases.read.as_secs_f64(),
            compute_seconds: phases.compute.as_secs_f64(),
            write_seconds: phases.write.as_secs_f64(),
            total_seconds,
            cpu_seconds,
            rows_per_second: report.rows_read as f64 / total_seconds,
            compute_rows_per_second: report.rows_read as f64 / phases.compute.as_secs_f64(),
            peak_rss_mib: peak_rss_mib(),
            rows_written: report.inserted + report.updated,
            commits: report.commits,
            files_added: report.files_added,
        });
    }

    if printer.json() {
        printer.json_value(&passes)?;
        return Ok(());
    }
    let rate = |r: f64| {
        if r.is_finite() {
            count_text(r as usize)
        } else {
            "—".into()
        }
    };
    let rows = passes
        .iter()
        .map(|p| {
            vec![
                p.pass.to_string(),
                count_text(p.series_built),
                count_text(p.rows_read),
                format!("{:.2}", p.read_seconds),
                format!("{:.2}", p.compute_seconds),
                format!("{:.2}", p.write_seconds),
                format!("{:.2}", p.total_seconds),
                format!("{:.2}", p.cpu_seconds),
                rate(p.rows_per_second),
                rate(p.compute_rows_per_second),
                format!("{:.0}", p.peak_rss_mib),
                count_text(p.rows_written),
                format!("{} in {} commits", p.files_added, p.commits),
            ]
        })
        .collect();
    printer.table(&FEATURES_COLUMNS, &FEATURES_COLUMNS[1..], rows)?;
    printer.summary(&format!(
        "{} symbols × {} days, ohlcv Delta -> features Delta on local disk, {} cores",
        args.generated.symbols,
        args.generated.days,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    Ok(())
}

#[derive(Debug, Serialize)]
struct SignalsPass {
    pass: &'static str,
    feature_rows: usize,
    signals: usize,
    new_signals: usize,
    total_seconds: f64,
    cpu_seconds: f64,
    rows_per_second: f64,
    peak_rss_mib: f64,
}

const SIGNALS_COLUMNS: [&str; 8] = [
    "pass",
    "feature rows",
    "signals",
    "new",
    "total s",
    "CPU s",
    "rows/s",
    "peak RSS MiB",
];

async fn signals(args: BenchSignalsArgs, printer: &Printer) -> anyhow::Result<()> {
    use bf_signals::generate::generate_and_store;

    let (_temp, folders) = work_folders(args.dir.as_deref(), &["lake"])?;
    let lake = Lake::open(folders[0].to_str().context("work folder is not UTF-8")?)?;
    let start = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    let end = nth_weekday_from(start, args.generated.days);
    let prepared = Instant::now();
    let symbols = bench_symbols(args.generated.symbols)?;
    store_synthetic(&lake, &symbols, start, end).await?;
    let symbols: Vec<String> = symbols.iter().map(|s| s.as_str().to_string()).collect();
    let built = bf_features::build::build(&lake, &BuildRequest::default(), &()).await?;
    printer.summary(&format!(
        "generated ohlcv and features: {} rows in {:.1}s (untimed)",
        count_text(built.rows_read),
        prepared.elapsed().as_secs_f64()
    ));

    let strategies = bf_signals::strategy::Strategies::builtin();
    let mut passes = Vec::new();
    for pass in ["first run", "nothing changed"] {
        reset_peak_rss();
        let (started, cpu_before) = (Instant::now(), cpu_seconds());
        // Computed and stored range by range, so one total.
        let report = generate_and_store(&lake, &strategies, &symbols).await?;
        let total_seconds = started.elapsed().as_secs_f64();
        let signals = report.strategies.iter().map(|s| s.buy + s.sell).sum();
        passes.push(SignalsPass {
            pass,
            feature_rows: built.rows_read,
            signals,
            new_signals: report.signals.inserted,
            total_seconds,
            cpu_seconds: cpu_seconds() - cpu_before,
            rows_per_second: built.rows_read as f64 / total_seconds,
            peak_rss_mib: peak_rss_mib(),
        });
    }
    if printer.json() {
        printer.json_value(&passes)?;
        return Ok(());
    }
    let rows = passes
        .iter()
        .map(|p| {
            vec![
                p.pass.to_string(),
                count_text(p.feature_rows),
                count_text(p.signals),
                count_text(p.new_signals),
                format!("{:.2}", p.total_seconds),
                format!("{:.2}", p.cpu_seconds),
                count_text(p.rows_per_second as usize),
                format!("{:.0}", p.peak_rss_mib),
            ]
        })
        .collect();
    printer.table(&SIGNALS_COLUMNS, &SIGNALS_COLUMNS[1..], rows)?;
    printer.summary(&format!(
        "{} symbols × {} days, the five built-in strategies, features Delta -> signals Delta on local disk",
        args.generated.symbols, args.generated.days
    ));
    Ok(())
}

/// S00000, S00001, …
pub(crate) fn bench_symbols(count: usize) -> anyhow::Result<Vec<Symbol>> {
    Ok((0..count)
        .map(|i| Symbol::parse(&format!("S{i:05}")))
        .collect::<Result<_, _>>()?)
}

/// Synthetic daily bars of `symbols` from `start` to `end` into `ohlcv`, a few
/// hundred symbols per commit so generation stays within memory.
pub(crate) async fn store_synthetic(
    lake: &Lake,
    symbols: &[Symbol],
    start: NaiveDate,
    end: NaiveDate,
) -> anyhow::Result<()> {
    let mut version = lake.version(&OHLCV).await?;
    for chunk in symbols.chunks(250) {
        version = lake
            .append(&OHLCV, vec![synthetic_bars(chunk, start, end)], version)
            .await?
            .version;
    }
    Ok(())
}

pub(crate) fn synthetic_bars(symbols: &[Symbol], start: NaiveDate, end: NaiveDate) -> RecordBatch {
    let synthetic = Synthetic::new(7);
    let mut bars = BarsBuilder::new(SOURCE_NAME, chrono::Utc::now().timestamp_micros(), 0);
    let mut actions = ActionsBuilder::new(SOURCE_NAME, 0);
    for symbol in symbols {
        synthetic.generate(symbol, start, end, &mut bars, &mut actions);
    }
    bars.finish()
}

/// One file per symbol in the vendor layout `date,open,high,low,close,adj_close,volume`.
fn write_files(
    dir: &Path,
    symbols: usize,
    days: usize,
    format: FileFormat,
) -> anyhow::Result<Vec<PathBuf>> {
    let start = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    let end = nth_weekday_from(start, days);
    let synthetic = Synthetic::new(7);
    let mut paths = Vec::with_capacity(symbols);
    for index in 0..symbols {
        let symbol = Symbol::parse(&format!("S{index:05}"))?;
        let mut bars = BarsBuilder::new(SOURCE_NAME, 0, days);
        let mut actions = ActionsBuilder::new(SOURCE_NAME, 0);
        synthetic.generate(&symbol, start, end, &mut bars, &mut actions);
        let batch = vendor_columns(&bars.finish())?;
        let path = dir.join(match format {
            FileFormat::Csv => format!("{symbol}.csv"),
            FileFormat::Parquet => format!("{symbol}.parquet"),
        });
        let file = File::create(&path)?;
        match format {
            FileFormat::Csv => datafusion::arrow::csv::Writer::new(file).write(&batch)?,
            FileFormat::Parquet => {
                let mut writer =
                    datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
                writer.write(&batch)?;
                writer.close()?;
            }
        }
        paths.push(path);
    }
    Ok(paths)
}

fn vendor_columns(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let names = [
        col::DATE,
        col::OPEN,
        col::HIGH,
        col::LOW,
        col::CLOSE,
        col::ADJ_CLOSE,
        col::VOLUME,
    ];
    let indices: Vec<usize> = names
        .iter()
        .map(|n| batch.schema().index_of(n))
        .collect::<Result<_, _>>()?;
    let projected = batch.project(&indices)?;
    let schema = Schema::new(projected.schema().fields().to_vec());
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        projected.columns().to_vec(),
    )?)
}

/// The date `count` weekdays after `start`, counting `start` as the first.
pub(crate) fn nth_weekday_from(start: NaiveDate, count: usize) -> NaiveDate {
    let mut date = start;
    let mut seen = 0;
    loop {
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            seen += 1;
            if seen == count {
                return date;
            }
        }
        date = date.succ_opt().expect("date in range");
    }
}

/// User plus system CPU time of this process so far (Linux), in seconds.
pub(crate) fn cpu_seconds() -> f64 {
    const TICKS_PER_SECOND: f64 = 100.0;
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
        })
        .unwrap_or(f64::NAN)
}

/// Resets the kernel's peak-RSS counter for this process (Linux), so each pass
/// reports its own peak.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

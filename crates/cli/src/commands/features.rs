//! `bf features build | show`.

use bf_core::Progress as _;
use bf_core::SymbolLists;
use bf_core::tables::{FEATURE_COLUMNS, FEATURES, col};
use bf_features::build::{BuildReport, BuildRequest, build};
use bf_lake::Lake;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type};

use super::{Outcome, resolve_symbols};
use crate::args::{FeaturesBuildArgs, FeaturesCommand, FeaturesShowArgs, GlobalArgs};
use crate::present::{Printer, count_text, seconds_text};

pub async fn run(
    command: FeaturesCommand,
    global: &GlobalArgs,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    match command {
        FeaturesCommand::Build(args) => build_features(args, &lake, lists, printer).await,
        FeaturesCommand::Show(args) => show(args, &lake, printer).await,
    }
}

async fn build_features(
    args: FeaturesBuildArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let symbols = resolve_symbols(&args.selection, lists)?;
    let request = BuildRequest {
        symbols: Some(symbols.iter().map(|s| s.as_str().to_string()).collect()),
        group_rows: None,
    };
    if let Some(cluster) = super::cluster::connect(&args.cluster).await? {
        let report = bf_cluster::features::build_features(&cluster, lake, &request).await?;
        return print_cluster_build(&report, printer);
    }
    let progress = printer.step_progress(0, "features");
    let report = build(lake, &request, &*progress).await;
    progress.finish();
    let report = report?;
    print_build(&report, printer)?;
    for symbol in &report.missing {
        printer.warn(&format!("{symbol}: no bars in ohlcv; fetch it first"));
    }
    Ok(if report.missing.is_empty() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

fn print_cluster_build(
    report: &bf_cluster::features::ClusterBuildReport,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let build = &report.build;
    if printer.json() {
        printer.json_value(report)?;
    } else if report.up_to_date {
        print_build(build, printer)?;
    } else {
        printer.summary(&format!(
            "features on the cluster: built {} of {} series from ohlcv version {} ({} up to date) \
             in {} partitions, {:.2} s; {}",
            build.series_built,
            build.series,
            build.ohlcv_version,
            build.series_up_to_date,
            report.partitions,
            report.seconds,
            super::cluster::commit_text(&report.commit),
        ));
    }
    for symbol in &build.missing {
        printer.warn(&format!("{symbol}: no bars in ohlcv; fetch it first"));
    }
    Ok(if build.missing.is_empty() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

fn print_build(report: &BuildReport, printer: &Printer) -> anyhow::Result<()> {
    if printer.json() {
        printer.json_value(report)?;
        return Ok(());
    }
    let phases = &report.phases;
    if report.series_built == 0 {
        printer.summary(&format!(
            "features are up to date with ohlcv version {} ({} series); nothing to build",
            report.ohlcv_version, report.series
        ));
        return Ok(());
    }
    printer.summary(&format!(
        "features: built {} of {} series from ohlcv version {} ({} up to date); {} rows read, \
         {} new, {} changed, {} unchanged, {} commits; read {}, compute {}, write {}",
        report.series_built,
        report.series,
        report.ohlcv_version,
        report.series_up_to_date,
        count_text(report.rows_read),
        count_text(report.inserted),
        count_text(report.updated),
        count_text(report.unchanged),
        report.commits,
        seconds_text(phases.read),
        seconds_text(phases.compute),
        seconds_text(phases.write),
    ));
    Ok(())
}

async fn show(args: FeaturesShowArgs, lake: &Lake, printer: &Printer) -> anyhow::Result<Outcome> {
    let symbol = bf_core::Symbol::parse(&args.symbol)?;
    let query = format!(
        "SELECT * FROM (SELECT * FROM {table} WHERE {s} = '{symbol}' AND \"{i}\" = '{interval}' \
         ORDER BY {d} DESC LIMIT {last}) ORDER BY {d}",
        table = FEATURES.name,
        s = col::SYMBOL,
        i = col::INTERVAL,
        d = col::DATE,
        interval = args.interval.as_str(),
        last = args.last,
    );
    let result = lake.sql(&query).await?;
    let rows: usize = result.batches.iter().map(RecordBatch::num_rows).sum();
    anyhow::ensure!(
        rows > 0,
        "no features for {symbol} at {}; run `bf features build --symbols {symbol}`",
        args.interval.as_str()
    );
    if printer.json() {
        printer.batches(
            crate::args::OutputFormat::Json,
            &result.schema,
            &result.batches,
        )?;
        return Ok(Outcome::Success);
    }
    // One row per feature and one column per date reads well in a terminal.
    let batch = datafusion::arrow::compute::concat_batches(&result.schema, &result.batches)?;
    let dates = batch
        .column_by_name(col::DATE)
        .expect("features have dates")
        .as_primitive::<Date32Type>();
    let date_headers: Vec<String> = (0..batch.num_rows())
        .map(|i| {
            dates
                .value_as_date(i)
                .map_or_else(String::new, |d| d.to_string())
        })
        .collect();
    let mut header = vec!["feature"];
    header.extend(date_headers.iter().map(String::as_str));
    let features = [
        col::ADJ_OPEN,
        col::ADJ_HIGH,
        col::ADJ_LOW,
        col::ADJ_CLOSE,
        col::VOLUME,
    ]
    .into_iter()
    .chain(FEATURE_COLUMNS);
    let table_rows = features
        .map(|name| {
            let column = batch.column_by_name(name).expect("features column");
            let mut row = vec![name.to_string()];
            row.extend((0..batch.num_rows()).map(|i| {
                if column.is_null(i) {
                    "—".to_string()
                } else if let Some(ints) = column.as_primitive_opt::<Int64Type>() {
                    count_text(ints.value(i).max(0) as usize)
                } else {
                    number_text(name, column.as_primitive::<Float64Type>().value(i))
                }
            }));
            row
        })
        .collect();
    printer.table(&header, &header[1..], table_rows)?;
    printer.summary(&format!(
        "{symbol} {}: last {} bars; — = not enough history yet",
        args.interval.as_str(),
        batch.num_rows()
    ));
    Ok(Outcome::Success)
}

/// Prices and indicators with 4 decimals, returns as percentages, balances as integers.
fn number_text(column: &str, value: f64) -> String {
    match column {
        "ret_1" | "log_ret_1" | "vol_20" => format!("{:.2}%", value * 100.0),
        "obv" => {
            let text = count_text(value.abs() as usize);
            if value < 0.0 {
                format!("-{text}")
            } else {
                text
            }
        }
        _ => format!("{value:.4}"),
    }
}

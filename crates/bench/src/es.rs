//! `bf-bench es`: syncing generated features and signals into an
//! Elasticsearch-API server, phase by phase: reading the changes from the
//! lake, encoding bulk bodies (bf's own work, timed alone), and the sync as a
//! whole, with the server's own time (the `took` of its bulk answers) apart.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use bf_core::tables::{FEATURES, SIGNALS, TableSpec};
use bf_lake::Lake;
use bf_sinks::elasticsearch::{
    DEFAULT_BULK_BYTES, EsClient, EsConfig, TableEncoder, drop_indices, sync,
};
use chrono::NaiveDate;
use clap::Args;
use serde::Serialize;

use crate::benches::{bench_symbols, cpu_seconds, nth_weekday_from, store_synthetic, work_folders};
use crate::present::{Printer, count_text};

#[derive(Debug, Args)]
pub struct BenchEsArgs {
    /// The server to sync into (its indices PREFIX-* are overwritten).
    #[arg(long, env = "BF_ES_URL", required_unless_present = "encode_only")]
    pub es_url: Option<String>,

    /// Only read and encode (bf's own work): no server needed.
    #[arg(long)]
    pub encode_only: bool,

    #[arg(long, default_value = "bench")]
    pub index_prefix: String,

    /// Number of symbols.
    #[arg(long, env = "BF_BENCH_SYMBOLS", default_value_t = 500)]
    pub symbols: usize,

    /// Trading days per symbol.
    #[arg(long, env = "BF_BENCH_DAYS", default_value_t = 5000)]
    pub days: usize,

    /// Work folder for the lake (default: a temporary folder, removed after).
    #[arg(long, env = "BF_BENCH_DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Phase {
    table: &'static str,
    phase: &'static str,
    documents: usize,
    megabytes: f64,
    wall_seconds: f64,
    cpu_seconds: f64,
    /// Summed `took` of the server's bulk answers (requests overlap).
    server_seconds: f64,
    documents_per_second: f64,
    megabytes_per_second: f64,
}

const COLUMNS: [&str; 9] = [
    "table",
    "phase",
    "documents",
    "MB",
    "wall s",
    "CPU s",
    "server s",
    "docs/s",
    "MB/s",
];

pub async fn es(args: BenchEsArgs, printer: &Printer) -> anyhow::Result<()> {
    let (_temp, folders) = work_folders(args.dir.as_deref(), &["lake"])?;
    let lake = Lake::open(folders[0].to_str().context("work folder is not UTF-8")?)?;
    let start = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    let prepared = Instant::now();
    let symbols = bench_symbols(args.symbols)?;
    store_synthetic(&lake, &symbols, start, nth_weekday_from(start, args.days)).await?;
    bf_features::build::build(&lake, &Default::default(), &()).await?;
    let names: Vec<String> = symbols.iter().map(|s| s.as_str().to_string()).collect();
    let strategies = bf_signals::strategy::Strategies::builtin();
    bf_signals::generate::generate_and_store(&lake, &strategies, &names).await?;
    printer.summary(&format!(
        "generated ohlcv, features and signals in {:.1}s (untimed)",
        prepared.elapsed().as_secs_f64()
    ));

    let mut phases = Vec::new();
    for spec in [&SIGNALS, &FEATURES] {
        phases.extend(read_and_encode(&lake, spec, DEFAULT_BULK_BYTES).await?);
    }
    if let Some(url) = args.es_url.as_ref().filter(|_| !args.encode_only) {
        let mut config = EsConfig::new(url)?;
        config.index_prefix = args.index_prefix.clone();
        let client = EsClient::new(config)?;
        for spec in [&SIGNALS, &FEATURES] {
            phases.extend(sync_phases(&lake, &client, spec).await?);
        }
    }
    print(&phases, &args, printer)
}

/// A first sync into a fresh mirror (every row sent), then one with
/// nothing changed.
async fn sync_phases(
    lake: &Lake,
    client: &EsClient,
    spec: &'static TableSpec,
) -> anyhow::Result<Vec<Phase>> {
    drop_indices(client).await?;
    let mut phases = Vec::new();
    for phase in ["first sync", "nothing changed"] {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let report = sync(lake, client, &[spec], &()).await?;
        let table = &report.tables[0];
        anyhow::ensure!(report.complete(), "{}: {:?}", spec.name, table.bulk.errors);
        phases.push(phase_of(
            spec,
            phase,
            table.indexed + table.deleted,
            table.bulk.bytes,
            started.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
            table.bulk.server_millis as f64 / 1000.0,
        ));
    }
    Ok(phases)
}

/// The lake's rows as the first sync reads them, then encoded into bulk
/// bodies and thrown away: bf's share of a sync, without the network.
async fn read_and_encode(
    lake: &Lake,
    spec: &'static TableSpec,
    max_bytes: usize,
) -> anyhow::Result<Vec<Phase>> {
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let changes = lake
        .row_changes_since(spec, None)
        .await?
        .context("the table exists")?;
    let documents: usize = changes.upserts.iter().map(|b| b.num_rows()).sum();
    let read = phase_of(
        spec,
        "read changes",
        documents,
        0,
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        0.0,
    );
    let encoder = TableEncoder {
        spec,
        index: "bench",
        lake_version: changes.version,
        sync_run: "bench",
        max_bytes,
    };
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut bytes = 0;
    for batch in &changes.upserts {
        bytes += encoder
            .upserts(batch)?
            .iter()
            .map(|c| c.body.len())
            .sum::<usize>();
    }
    let encode = phase_of(
        spec,
        "encode (1 core)",
        documents,
        bytes,
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        0.0,
    );
    Ok(vec![read, encode])
}

fn phase_of(
    spec: &TableSpec,
    phase: &'static str,
    documents: usize,
    bytes: usize,
    wall_seconds: f64,
    cpu_seconds: f64,
    server_seconds: f64,
) -> Phase {
    let megabytes = bytes as f64 / 1e6;
    Phase {
        table: spec.name,
        phase,
        documents,
        megabytes,
        wall_seconds,
        cpu_seconds,
        server_seconds,
        documents_per_second: documents as f64 / wall_seconds.max(1e-9),
        megabytes_per_second: megabytes / wall_seconds.max(1e-9),
    }
}

fn print(phases: &[Phase], args: &BenchEsArgs, printer: &Printer) -> anyhow::Result<()> {
    if printer.json() {
        printer.json_value(&phases)?;
        return Ok(());
    }
    let rows = phases
        .iter()
        .map(|p| {
            vec![
                p.table.to_string(),
                p.phase.to_string(),
                count_text(p.documents),
                format!("{:.1}", p.megabytes),
                format!("{:.2}", p.wall_seconds),
                format!("{:.2}", p.cpu_seconds),
                format!("{:.2}", p.server_seconds),
                count_text(p.documents_per_second as usize),
                format!("{:.1}", p.megabytes_per_second),
            ]
        })
        .collect();
    printer.table(&COLUMNS, &COLUMNS[2..], rows)?;
    let target = match (&args.es_url, args.encode_only) {
        (Some(url), false) => format!("into {url} (prefix {})", args.index_prefix),
        _ => "encoded only".to_string(),
    };
    printer.summary(&format!(
        "{} symbols × {} days {target}; CPU s is bf's process; server s sums the `took` of \
         the bulk answers, which overlap (3 in flight)",
        args.symbols, args.days
    ));
    Ok(())
}

//! `bf-bench`: bf's benchmarks, a binary of its own so that the user's `bf`
//! carries neither them nor the local Yahoo server they fetch from. Each
//! prints a table of figures to compare with the baselines in
//! `../shared/baselines/` (run side by side, on the same machine and data).

mod benches;
mod es;
mod fetch;
mod kernels;
mod present;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::present::Printer;

// The allocator of the `bf` binary, so that figures are those a user gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "bf-bench",
    about = "Benchmarks of bf on generated data",
    max_term_width = 100
)]
struct Cli {
    /// Print the passes as JSON.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: BenchCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(benches::run(cli.command, &printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FileFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Fetch N symbols × Y years from a local Yahoo-format server at several concurrencies.
    Fetch(BenchFetchArgs),
    /// The local Yahoo-format server of `bench fetch`; prints its URL, serves until stdin closes.
    #[command(hide = true)]
    YahooServer(BenchYahooServerArgs),
    /// Import generated files (one per symbol) into a fresh lake, then re-import them unchanged.
    Import(BenchImportArgs),
    /// Build features from a generated ohlcv table: first build, no-op rebuild, one new day.
    Features(BenchFeaturesArgs),
    /// Generate signals with the built-in strategies from generated features, twice.
    Signals(BenchSignalsArgs),
    /// Sync generated features and signals into an Elasticsearch-API server, phase by phase.
    Es(es::BenchEsArgs),
    /// The features build's compute in memory: each indicator kernel on one core, then all cores.
    Kernels(BenchKernelsArgs),
}

/// The synthetic history a benchmark generates: daily bars of S00000, S00001, …
#[derive(Debug, Args)]
pub struct Generated {
    /// Number of symbols.
    #[arg(long, env = "BF_BENCH_SYMBOLS", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000).map(|n| n as usize))]
    pub symbols: usize,

    /// Trading days per symbol.
    #[arg(long, env = "BF_BENCH_DAYS", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(2..=100_000).map(|n| n as usize))]
    pub days: usize,
}

#[derive(Debug, Args)]
pub struct BenchKernelsArgs {
    #[command(flatten)]
    pub generated: Generated,

    /// Runs of each pass; the fastest is shown.
    #[arg(long, env = "BF_BENCH_RUNS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100).map(|n| n as usize))]
    pub runs: usize,
}

#[derive(Debug, Args)]
pub struct BenchFetchArgs {
    /// Number of symbols.
    #[arg(long, env = "BF_BENCH_SYMBOLS", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000).map(|n| n as usize))]
    pub symbols: usize,

    /// Years of daily bars per symbol.
    #[arg(long, env = "BF_BENCH_YEARS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=200))]
    pub years: u32,

    /// Concurrencies to measure, one pass each.
    #[arg(
        long,
        env = "BF_BENCH_CONCURRENCY",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u32).range(1..=64),
        default_value = "1,4,16"
    )]
    pub concurrency: Vec<u32>,

    /// Work folder for the lake (default: a temporary folder, removed after).
    #[arg(long, env = "BF_BENCH_DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchYahooServerArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, env = "BF_YAHOO_SERVER_PORT", default_value_t = 0)]
    pub port: u16,

    /// The server's today.
    #[arg(long, env = "BF_YAHOO_SERVER_AS_OF")]
    pub as_of: NaiveDate,

    /// Seed of the synthetic history it serves.
    #[arg(long, env = "BF_SEED", default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct BenchSignalsArgs {
    #[command(flatten)]
    pub generated: Generated,

    /// Work folder for the lake (default: a temporary folder, removed after).
    #[arg(long, env = "BF_BENCH_DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchFeaturesArgs {
    #[command(flatten)]
    pub generated: Generated,

    /// Input rows per build group (bounds memory).
    #[arg(long, env = "BF_BENCH_GROUP_ROWS",
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub group_rows: Option<usize>,

    /// Work folder for the lake (default: a temporary folder, removed after).
    #[arg(long, env = "BF_BENCH_DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchImportArgs {
    #[command(flatten)]
    pub generated: Generated,

    /// Format of the generated files.
    #[arg(long, env = "BF_BENCH_FORMAT", value_enum, default_value = "parquet")]
    pub format: FileFormat,

    /// Work folder for files and lake (default: a temporary folder, removed after).
    #[arg(long, env = "BF_BENCH_DIR")]
    pub dir: Option<PathBuf>,

    /// Also import into this empty S3 lake (s3://bucket/prefix), for figures side by side.
    #[arg(long, env = "BF_BENCH_S3_LAKE")]
    pub s3_lake: Option<String>,
}

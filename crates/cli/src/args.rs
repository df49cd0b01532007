//! The command line. Every flag also reads a `BF_*` environment variable (and
//! `.env` in the working directory), so `bf config` can show where each came from.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, NaiveDate};
use clap::builder::{BoolishValueParser, TypedValueParser as _};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "bf",
    version,
    about = "Market-data lakehouse and signal engine",
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Lake root: a local folder.
    #[arg(long, env = "BF_LAKE", default_value = "./lake", global = true)]
    pub lake: String,

    /// Folder of user symbol lists (`NAME.txt`, one symbol per line).
    #[arg(long, env = "BF_SYMBOL_LISTS", global = true)]
    pub symbol_lists: Option<PathBuf>,

    /// Print results as JSON, for scripts.
    #[arg(long, env = "BF_JSON", global = true, value_parser = BoolishValueParser::new())]
    pub json: bool,

    /// Print only results and errors: no progress, no summary.
    #[arg(short, long, env = "BF_QUIET", global = true, value_parser = BoolishValueParser::new())]
    pub quiet: bool,

    /// More log output on stderr (-v info, -vv debug); `BF_LOG` takes tracing filters.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Named symbol lists.
    #[command(subcommand)]
    Symbols(SymbolsCommand),
    /// Fetch, import and inspect price history.
    #[command(subcommand)]
    Data(DataCommand),
    /// Compute technical features from the bars.
    #[command(subcommand)]
    Features(FeaturesCommand),
    /// Generate and inspect trading signals.
    #[command(subcommand)]
    Signals(SignalsCommand),
    /// The main job: fetch -> features -> signals -> stats, each stage incremental.
    Run(RunArgs),
    /// Draw one symbol's chart: candles, SMA 50/200, Bollinger bands, signals, RSI, MACD.
    Chart(ChartArgs),
    /// Write a static HTML page for a symbol list: stats, every chart, latest signals.
    Report(ReportArgs),
    /// Run SQL over every lake table.
    Sql(SqlArgs),
    /// Table maintenance: compaction and vacuum.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Mirror signals, features and bars into Elasticsearch or OpenSearch.
    #[command(subcommand)]
    Es(EsCommand),
    /// Kafka: the lake's changes as messages, and a consumer group into Elasticsearch.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Kibana: the dashboard over the Elasticsearch indices.
    #[command(subcommand)]
    Kibana(KibanaCommand),
    /// The infrastructure under docker compose: MinIO, Kafka, Elasticsearch, Kibana.
    #[command(subcommand)]
    Infra(InfraCommand),
    /// The distributed engine (Ballista): scheduler, executors, status.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print the effective settings and where each came from.
    Config,
}

#[derive(Debug, Subcommand)]
pub enum SymbolsCommand {
    /// Every list bf can find, with its size and origin.
    List,
    /// The symbols of one list.
    Show {
        /// A list name or a path to a list file.
        name: String,
    },
}

/// Which symbols a command works on.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SymbolSelection {
    /// A named symbol list (see `bf symbols list`) or a path to a list file.
    #[arg(long, env = "BF_SYMBOL_LIST")]
    pub symbol_list: Option<String>,

    /// Comma-separated symbols.
    #[arg(long, env = "BF_SYMBOLS")]
    pub symbols: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceKind {
    /// Yahoo Finance's chart API: daily and intraday bars, dividends, splits.
    Yahoo,
    /// Seeded, realistic daily bars generated locally; no network.
    Synthetic,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Fetch price history into the lake; only what is new is added.
    Fetch(FetchArgs),
    /// Poll Yahoo for new intraday bars while each exchange is open, until Ctrl-C.
    Watch(WatchArgs),
    /// Import CSV or Parquet files of OHLCV from any vendor.
    Import(ImportArgs),
    /// Per symbol and interval: rows, first and last date, last ingest, source.
    Status,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub selection: SymbolSelection,

    /// First date (YYYY-MM-DD).
    #[arg(long, env = "BF_START", default_value = "2000-01-01")]
    pub start: NaiveDate,

    /// Last date (YYYY-MM-DD); default today.
    #[arg(long, env = "BF_END")]
    pub end: Option<NaiveDate>,

    /// Bar interval.
    #[arg(long, env = "BF_INTERVAL", default_value = "1d")]
    pub interval: bf_core::Interval,

    /// Where bars come from.
    #[arg(long, env = "BF_SOURCE", value_enum, default_value = "yahoo")]
    pub source: SourceKind,

    /// Fetch the whole range again instead of only what is new.
    #[arg(long, env = "BF_FULL", value_parser = BoolishValueParser::new())]
    pub full: bool,

    /// Seed of the synthetic source: same seed and symbol, same bars.
    #[arg(long, env = "BF_SEED", default_value_t = 42)]
    pub seed: u64,

    #[command(flatten)]
    pub yahoo: YahooArgs,
}

/// How bf talks to Yahoo's chart API.
#[derive(Debug, Args)]
pub struct YahooArgs {
    /// Base URL of Yahoo's chart API (a local server in tests).
    #[arg(long, env = "BF_YAHOO_URL", default_value = bf_sources::yahoo::DEFAULT_BASE_URL)]
    pub yahoo_url: String,

    /// Symbols fetched from Yahoo at once.
    #[arg(long, env = "BF_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// Most requests per second to Yahoo, over all symbols (0 = no limit).
    #[arg(long, env = "BF_RATE_LIMIT", default_value_t = 10.0, value_parser = rate_limit)]
    pub rate_limit: f64,

    /// Retries of a failed request (429, 5xx, timeout, reset) before a symbol fails.
    #[arg(long, env = "BF_RETRIES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,

    /// Seconds before a request to Yahoo times out (and is retried).
    #[arg(long, env = "BF_TIMEOUT", default_value_t = 30.0, value_parser = timeout_seconds)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub selection: SymbolSelection,

    /// Bar interval (intraday: 1m, 2m, 5m, 15m, 30m, 60m, 90m).
    #[arg(long, env = "BF_INTERVAL", default_value = "1m", value_parser = intraday_interval)]
    pub interval: bf_core::Interval,

    /// Time between polls of an open exchange (e.g. 30s, 1m); default: the interval.
    #[arg(long, value_parser = duration_seconds)]
    pub every: Option<f64>,

    /// First date to catch up from when a symbol has no bars of the interval
    /// yet (YYYY-MM-DD); default: five days ago.
    #[arg(long)]
    pub start: Option<NaiveDate>,

    #[command(flatten)]
    pub yahoo: YahooArgs,

    /// Run the watch's clock from this instant (RFC 3339) instead of the
    /// system time: a replay against a local Yahoo-format server.
    #[arg(long)]
    pub now: Option<DateTime<FixedOffset>>,

    /// Simulated seconds per real second of the clock started by --now.
    #[arg(long, default_value_t = 1.0, requires = "now", value_parser = clock_speed)]
    pub clock_speed: f64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or folders (every .csv and .parquet inside).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Interval of the bars in the files.
    #[arg(long, env = "BF_INTERVAL", default_value = "1d")]
    pub interval: bf_core::Interval,

    /// Fail the whole import, writing nothing, if any row or file is rejected.
    #[arg(long, env = "BF_STRICT", value_parser = BoolishValueParser::new())]
    pub strict: bool,
}

#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Compute SPEC's feature columns for symbols whose bars changed since their last build.
    Build(FeaturesBuildArgs),
    /// One symbol's latest features, one row per feature.
    Show(FeaturesShowArgs),
}

#[derive(Debug, Args)]
pub struct FeaturesBuildArgs {
    #[command(flatten)]
    pub selection: SymbolSelection,

    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Where work runs: embedded (the default) or on a Ballista cluster.
#[derive(Debug, Args)]
pub struct ClusterArg {
    /// Run on the cluster whose scheduler is at df://HOST:PORT (empty: embedded).
    #[arg(long = "cluster", env = "BF_CLUSTER", value_name = "df://HOST:PORT")]
    pub address: Option<String>,
}

impl ClusterArg {
    pub fn scheduler(
        &self,
    ) -> Result<Option<bf_cluster::SchedulerAddress>, bf_cluster::ClusterError> {
        self.address
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(bf_cluster::SchedulerAddress::parse)
            .transpose()
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler (Ballista's, with bf's functions); its REST API is on the same port.
    Scheduler(SchedulerArgs),
    /// Run an executor that takes tasks from a scheduler.
    Executor(ExecutorArgs),
    /// The scheduler's executors and recent jobs.
    Status(ClusterStatusArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on (gRPC and REST).
    #[arg(long, env = "BF_SCHEDULER_BIND", default_value = "127.0.0.1:50050")]
    pub bind: std::net::SocketAddr,

    /// Seconds without a heartbeat before an executor counts as lost.
    #[arg(long, env = "BF_EXECUTOR_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub executor_timeout: u64,

    /// Serve job results through the scheduler's port (for executors in a
    /// container network the client cannot reach).
    #[arg(long, env = "BF_SCHEDULER_FLIGHT_PROXY", value_parser = BoolishValueParser::new())]
    pub flight_proxy: bool,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler: df://HOST:PORT or HOST:PORT.
    #[arg(long, env = "BF_SCHEDULER", default_value = "df://127.0.0.1:50050")]
    pub scheduler: String,

    /// Tasks at once (0: one per core).
    #[arg(long, env = "BF_EXECUTOR_SLOTS", default_value_t = 0)]
    pub slots: usize,

    /// Folder for shuffle and spill files (default: a temporary folder, removed at exit).
    #[arg(long, env = "BF_EXECUTOR_WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "BF_EXECUTOR_BIND", default_value = "127.0.0.1")]
    pub bind_host: String,

    /// Host the scheduler and other executors reach this one by (default:
    /// --bind-host, or this host's address when that is 0.0.0.0).
    #[arg(long, env = "BF_EXECUTOR_ADVERTISE")]
    pub advertise_host: Option<String>,

    /// Arrow Flight port for shuffle reads (default: a free one).
    #[arg(long, env = "BF_EXECUTOR_FLIGHT_PORT")]
    pub flight_port: Option<u16>,

    /// gRPC port the scheduler launches tasks on (default: a free one).
    #[arg(long, env = "BF_EXECUTOR_GRPC_PORT")]
    pub grpc_port: Option<u16>,

    /// Seconds to keep trying to reach the scheduler at start (0: fail at once).
    #[arg(long, env = "BF_EXECUTOR_CONNECT_TIMEOUT", default_value_t = 30)]
    pub connect_timeout: u16,

    /// Seconds between heartbeats to the scheduler.
    #[arg(long, env = "BF_EXECUTOR_HEARTBEAT", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub heartbeat: u64,
}

#[derive(Debug, Args)]
pub struct ClusterStatusArgs {
    #[command(flatten)]
    pub cluster: ClusterArg,

    /// How many recent jobs to list.
    #[arg(long, env = "BF_CLUSTER_JOBS", default_value_t = 10)]
    pub jobs: usize,
}

#[derive(Debug, Args)]
pub struct FeaturesShowArgs {
    pub symbol: String,

    /// How many of the latest bars to show.
    #[arg(long, env = "BF_LAST", default_value_t = 5)]
    pub last: usize,

    /// Bar interval.
    #[arg(long, env = "BF_INTERVAL", default_value = "1d")]
    pub interval: bf_core::Interval,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// Strategies file (TOML); default: the built-in config/strategies.toml.
    #[arg(long, env = "BF_STRATEGIES")]
    pub strategies: Option<PathBuf>,

    #[command(flatten)]
    pub es: EsArgs,

    #[command(flatten)]
    pub cluster: ClusterArg,
}

#[derive(Debug, Subcommand)]
pub enum SignalsCommand {
    /// Run every strategy over the features of the given symbols into the signals table.
    Generate(SignalsGenerateArgs),
    /// Stored signals, newest first.
    Show(SignalsShowArgs),
    /// Per strategy and side: count, hit rate and mean forward return over 5 and 20 rows.
    Stats(SignalsStatsArgs),
}

#[derive(Debug, Args)]
pub struct SignalsStatsArgs {
    /// How many of the most recent signals to list under the statistics.
    #[arg(long, env = "BF_RECENT", default_value_t = 10)]
    pub recent: usize,
}

#[derive(Debug, Args)]
pub struct SignalsGenerateArgs {
    #[command(flatten)]
    pub selection: SymbolSelection,

    /// Strategies file (TOML); default: the built-in config/strategies.toml.
    #[arg(long, env = "BF_STRATEGIES")]
    pub strategies: Option<PathBuf>,

    #[command(flatten)]
    pub es: EsArgs,

    #[command(flatten)]
    pub cluster: ClusterArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Debug, Args)]
pub struct SignalsShowArgs {
    /// Only this symbol.
    #[arg(long, env = "BF_SYMBOL")]
    pub symbol: Option<String>,

    /// Only this strategy.
    #[arg(long, env = "BF_STRATEGY")]
    pub strategy: Option<String>,

    /// Only this side.
    #[arg(long, env = "BF_SIDE", value_enum)]
    pub side: Option<Side>,

    /// Only signals on or after this date (YYYY-MM-DD).
    #[arg(long, env = "BF_SINCE")]
    pub since: Option<NaiveDate>,

    /// At most this many signals.
    #[arg(long, env = "BF_LIMIT", default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ChartArgs {
    pub symbol: String,

    /// First date to draw (YYYY-MM-DD); default: the last 252 bars.
    #[arg(long, env = "BF_SINCE")]
    pub since: Option<NaiveDate>,

    /// Image file, .png or .svg; default: SYMBOL.png in the working directory.
    #[arg(long, env = "BF_CHART_OUT")]
    pub out: Option<PathBuf>,

    /// Image width in pixels.
    #[arg(long, env = "BF_CHART_WIDTH", default_value_t = bf_charts::DEFAULT_SIZE.0,
          value_parser = clap::value_parser!(u32).range(400..=8000))]
    pub width: u32,

    /// Image height in pixels.
    #[arg(long, env = "BF_CHART_HEIGHT", default_value_t = bf_charts::DEFAULT_SIZE.1,
          value_parser = clap::value_parser!(u32).range(300..=8000))]
    pub height: u32,

    /// Bar interval.
    #[arg(long, env = "BF_INTERVAL", default_value = "1d")]
    pub interval: bf_core::Interval,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The symbol list to report on (a name or a path to a list file).
    #[arg(long, env = "BF_SYMBOL_LIST")]
    pub symbol_list: String,

    /// Folder for the page (LIST.html) and its charts (charts/SYMBOL.svg).
    #[arg(long, env = "BF_REPORT_OUT", default_value = "report")]
    pub out: PathBuf,

    /// Bar interval.
    #[arg(long, env = "BF_INTERVAL", default_value = "1d")]
    pub interval: bf_core::Interval,
}

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Rewrite each table's small files into large ones, in one commit per table.
    Optimize {
        /// Sort along a Z-order curve of (symbol, date) while rewriting.
        #[arg(long, env = "BF_ZORDER", value_parser = BoolishValueParser::new())]
        zorder: bool,
    },
    /// Delete data files that no table version of the retention period uses.
    Vacuum {
        /// Keep files that versions of the last N hours use (time travel ends there).
        #[arg(long, env = "BF_RETAIN_HOURS", default_value_t = 168,
              value_parser = clap::value_parser!(u64).range(0..=MAX_RETAIN_HOURS))]
        retain_hours: u64,

        /// Only count what would be deleted.
        #[arg(long, env = "BF_DRY_RUN", value_parser = BoolishValueParser::new())]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One SQL statement; tables: ohlcv, corporate_actions, features.
    #[arg(required_unless_present = "functions")]
    pub query: Option<String>,

    /// List bf's indicator window functions with their signatures, and exit.
    #[arg(long, env = "BF_SQL_FUNCTIONS", value_parser = BoolishValueParser::new())]
    pub functions: bool,

    /// Output format.
    #[arg(long, env = "BF_FORMAT", value_enum, default_value = "table")]
    pub format: OutputFormat,

    /// Most rows the table format shows (csv and json stream every row).
    #[arg(long, env = "BF_SQL_MAX_ROWS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000).map(|n| n as usize))]
    pub max_rows: usize,

    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Longest `bf lake vacuum --retain-hours`: 100 years (time arithmetic
/// overflows far beyond it).
const MAX_RETAIN_HOURS: u64 = 100 * 366 * 24;

/// Requests per second: 0 (no limit) or between 0.001 and 1,000,000.
fn rate_limit(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if rate == 0.0 || (0.001..=1e6).contains(&rate) {
        Ok(rate)
    } else {
        Err("must be 0 (no limit) or between 0.001 and 1000000 requests per second".into())
    }
}

/// A timeout in seconds: more than 0, at most a day.
/// A span such as `90`, `90s`, `5m` or `1h`, in seconds (more than 0, at most a day).
fn duration_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    timeout_seconds(number)
        .map(|n| n * scale)
        .and_then(|seconds| {
            if seconds <= 86_400.0 {
                Ok(seconds)
            } else {
                Err("must be at most a day".into())
            }
        })
}

fn intraday_interval(text: &str) -> Result<bf_core::Interval, String> {
    let interval: bf_core::Interval = text.parse().map_err(|e| format!("{e}"))?;
    if interval.is_intraday() {
        Ok(interval)
    } else {
        Err(format!(
            "{interval} is not an intraday interval (1m, 2m, 5m, 15m, 30m, 60m, 90m)"
        ))
    }
}

fn clock_speed(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 && speed <= 1e6 => Ok(speed),
        _ => Err(format!(
            "{text:?}: expected a number more than 0, at most 1000000"
        )),
    }
}

fn timeout_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if seconds > 0.0 && seconds <= 86_400.0 {
        Ok(seconds)
    } else {
        Err("must be more than 0 and at most 86400 seconds".into())
    }
}

/// Where Elasticsearch (or OpenSearch) is. With a URL, `signals generate` and
/// `run` sync signals and features after their lake commit.
#[derive(Debug, Clone, Args)]
pub struct EsArgs {
    /// Elasticsearch node URLs, comma-separated (http://host:9200,...).
    #[arg(long = "es-url", env = "BF_ES_URL")]
    pub url: Option<String>,

    #[command(flatten)]
    pub access: EsAccess,
}

impl EsArgs {
    /// The URL setting, unless it is empty (`BF_ES_URL=` turns the mirror off).
    pub fn configured_url(&self) -> Option<&str> {
        self.url.as_deref().filter(|url| !url.trim().is_empty())
    }
}

/// Credentials, CA and index names: Elasticsearch's, which Kibana shares.
#[derive(Debug, Clone, Args)]
pub struct EsAccess {
    /// User for basic authentication (with BF_ES_PASSWORD).
    #[arg(long = "es-username", env = "BF_ES_USERNAME", requires = "password")]
    pub username: Option<String>,

    #[arg(long = "es-password", env = "BF_ES_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Encoded API key (instead of a user and password).
    #[arg(
        long = "es-api-key",
        env = "BF_ES_API_KEY",
        hide_env_values = true,
        conflicts_with = "username"
    )]
    pub api_key: Option<String>,

    /// PEM file of the CA that signed the nodes' certificates.
    #[arg(long = "es-ca-cert", env = "BF_ES_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// Seconds one request may take (a bulk request to a slow cluster needs more).
    #[arg(long = "es-timeout", env = "BF_ES_TIMEOUT", default_value_t = 60.0,
          value_parser = timeout_seconds)]
    pub es_timeout: f64,

    /// Indices are PREFIX-signals, PREFIX-features, PREFIX-ohlcv and PREFIX-sync.
    #[arg(long = "es-index-prefix", env = "BF_ES_INDEX_PREFIX", default_value = "bf",
          value_parser = index_prefix)]
    pub index_prefix: String,
}

/// Elasticsearch index names: lowercase letters, digits, '-' and '_', not
/// starting with '-' or '_'.
fn index_prefix(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if text.is_empty() || text.starts_with(['-', '_']) || !text.chars().all(allowed) {
        return Err(
            "use lowercase letters, digits, '-' and '_' (not first), as index names require".into(),
        );
    }
    Ok(text.to_string())
}

#[derive(Debug, Subcommand)]
pub enum EsCommand {
    /// Install the index templates (safe to run again).
    Setup(EsSetupArgs),
    /// Send what changed in the lake since the last sync (everything the first time).
    Sync(EsSyncArgs),
    /// Per table: lake version, synced version, rows and documents.
    Status(EsSetupArgs),
}

#[derive(Debug, Args)]
pub struct EsSetupArgs {
    #[command(flatten)]
    pub es: EsArgs,
}

#[derive(Debug, Args)]
pub struct EsSyncArgs {
    #[command(flatten)]
    pub es: EsArgs,

    /// Tables to mirror.
    #[arg(long, value_delimiter = ',', default_value = "signals,features,ohlcv")]
    pub tables: Vec<MirroredTable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MirroredTable {
    Signals,
    Features,
    Ohlcv,
}

#[derive(Debug, Subcommand)]
pub enum KibanaCommand {
    /// Load bf's data views and "bf signals" dashboard (or --file) into Kibana.
    Import(KibanaImportArgs),
}

#[derive(Debug, Args)]
pub struct KibanaImportArgs {
    /// Kibana's URL.
    #[arg(long, env = "BF_KIBANA_URL", default_value = "http://localhost:5601")]
    pub url: String,

    /// Saved objects to import instead of bf's own (a Kibana .ndjson export).
    #[arg(long)]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub access: EsAccess,
}

/// Where Kafka is and how bf names and creates its topics.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka brokers, host:port,...
    #[arg(
        long = "kafka-brokers",
        env = "BF_KAFKA_BROKERS",
        default_value = "localhost:9092"
    )]
    pub brokers: String,

    /// Topics are PREFIX.ohlcv, PREFIX.features, PREFIX.signals, PREFIX.checkpoints, PREFIX.dead-letter.
    #[arg(
        long = "kafka-topic-prefix",
        env = "BF_KAFKA_TOPIC_PREFIX",
        default_value = "bf"
    )]
    pub topic_prefix: String,

    /// librdkafka properties for every client, key=value,... (security.protocol, sasl.*, ssl.*).
    #[arg(
        long = "kafka-properties",
        env = "BF_KAFKA_PROPERTIES",
        hide_env_values = true
    )]
    pub properties: Option<String>,

    /// Partitions of the table topics bf creates.
    #[arg(long = "kafka-partitions", env = "BF_KAFKA_PARTITIONS", default_value_t = 6,
          value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: i32,

    /// Replication factor of the topics bf creates.
    #[arg(long = "kafka-replication", env = "BF_KAFKA_REPLICATION", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..=32))]
    pub replication: i32,
}

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Send every row changed since the last published lake version, one message each.
    Publish(StreamPublishArgs),
    /// A consumer group that indexes the messages into Elasticsearch.
    Consume(StreamConsumeArgs),
    /// Per topic and partition: end offset, committed offset, lag; published versions.
    Status(StreamStatusArgs),
}

#[derive(Debug, Args)]
pub struct StreamPublishArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Tables to publish.
    #[arg(long, value_delimiter = ',', default_value = "ohlcv,features,signals")]
    pub tables: Vec<MirroredTable>,

    /// Keep publishing new lake versions until Ctrl-C.
    #[arg(long)]
    pub follow: bool,

    /// Time between looks at the lake with --follow (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = duration_seconds)]
    pub poll: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamSink {
    Elasticsearch,
}

#[derive(Debug, Args)]
pub struct StreamConsumeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub es: EsArgs,

    /// Where the messages go.
    #[arg(long, value_enum, default_value = "elasticsearch")]
    pub sink: StreamSink,

    /// Consumer group: consumers of one group share the partitions.
    #[arg(long, env = "BF_KAFKA_GROUP", default_value = "bf-es")]
    pub group: String,

    /// Static member name (group.instance.id): restarted under the same name,
    /// a consumer takes its partitions back at once, without a rebalance.
    #[arg(long, env = "BF_KAFKA_INSTANCE")]
    pub instance: Option<String>,

    /// Tables to consume.
    #[arg(long, value_delimiter = ',', default_value = "ohlcv,features,signals")]
    pub tables: Vec<MirroredTable>,

    /// Keep consuming until Ctrl-C; without it, stop at the end offsets found at start.
    #[arg(long)]
    pub follow: bool,

    /// Most messages indexed and committed together.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
}

#[derive(Debug, Args)]
pub struct StreamStatusArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group whose committed offsets to show.
    #[arg(long, env = "BF_KAFKA_GROUP", default_value = "bf-es")]
    pub group: String,

    /// Tables whose topics to show.
    #[arg(long, value_delimiter = ',', default_value = "ohlcv,features,signals")]
    pub tables: Vec<MirroredTable>,
}

#[derive(Debug, Subcommand)]
pub enum InfraCommand {
    /// Start the stack, wait until every service is healthy, bootstrap it
    /// (bucket, topics, index templates, dashboard) and write the client settings to .env.
    Start(InfraStartArgs),
    /// Stop the stack; its data stays in named volumes unless --volumes.
    Stop(InfraStopArgs),
    /// Container state and health per service.
    Status(InfraDirArgs),
    /// The services' logs.
    Logs(InfraLogsArgs),
}

#[derive(Debug, Args)]
pub struct InfraDirArgs {
    /// Folder of docker-compose.yml and the stack's .env (secrets, ports).
    #[arg(long = "infra-dir", env = "BF_INFRA_DIR", default_value = "infra")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct InfraStartArgs {
    #[command(flatten)]
    pub dir: InfraDirArgs,

    /// Services to start (minio, kafka, elasticsearch, kibana, scheduler); default all.
    #[arg(long, value_delimiter = ',')]
    pub services: Vec<String>,

    /// Cluster executors beside the scheduler (default: the compose file's 2).
    #[arg(long, env = "BF_EXECUTORS")]
    pub executors: Option<usize>,

    /// How long the services may take to become healthy (e.g. 180s, 5m).
    #[arg(long = "timeout", id = "infra_timeout", default_value = "180s", value_parser = duration_seconds)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct InfraStopArgs {
    #[command(flatten)]
    pub dir: InfraDirArgs,

    /// Also delete the named volumes: every service's data (asks first).
    #[arg(long)]
    pub volumes: bool,

    /// Do not ask before deleting the volumes.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct InfraLogsArgs {
    #[command(flatten)]
    pub dir: InfraDirArgs,

    /// One service; default all.
    pub service: Option<String>,

    /// Keep printing new lines until Ctrl-C.
    #[arg(long)]
    pub follow: bool,

    /// Lines of each log to show first.
    #[arg(long, default_value_t = 100)]
    pub tail: usize,
}

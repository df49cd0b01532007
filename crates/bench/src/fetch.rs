//! `bf-bench fetch`: the Yahoo source end to end against the local Yahoo-format
//! server, run as a separate process so the CPU time measured is bf's alone.
//! Each pass fetches every symbol into a fresh lake at one concurrency; a last
//! pass fetches again with everything up to date.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use bf_core::Symbol;
use bf_lake::Lake;
use bf_pipeline::fetch::FetchRequest;
use bf_sources::SourceSettings;
use bf_sources::yahoo::YahooConfig;
use bf_testkit::yahoo_server::{Server, ServerConfig};
use chrono::NaiveDate;
use serde::Serialize;

use crate::benches::{bench_symbols, cpu_seconds, peak_rss_mib, reset_peak_rss, work_folders};
use crate::present::{Printer, count_text};
use crate::{BenchFetchArgs, BenchYahooServerArgs};

/// The server's "today": fixed, so every run serves the same bars.
const AS_OF: NaiveDate = NaiveDate::from_ymd_opt(2025, 12, 31).expect("valid date");

#[derive(Debug, Serialize)]
struct FetchPass {
    pass: String,
    concurrency: u32,
    requests: usize,
    rows: usize,
    seconds: f64,
    rows_per_second: f64,
    cpu_seconds: f64,
    cpu_ms_per_1000_rows: f64,
    peak_rss_mib: f64,
}

const COLUMNS: [&str; 9] = [
    "pass",
    "concurrency",
    "requests",
    "rows",
    "wall s",
    "rows/s",
    "CPU s",
    "CPU ms / 1000 rows",
    "peak RSS MiB",
];

/// The server in its own process; killed when dropped.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start() -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["yahoo-server", "--as-of", &AS_OF.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the local Yahoo server")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("server stdout")?).read_line(&mut line)?;
        anyhow::ensure!(
            line.starts_with("http://"),
            "the local Yahoo server said {line:?}"
        );
        Ok(Self {
            child,
            url: line.trim().to_string(),
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn fetch(args: BenchFetchArgs, printer: &Printer) -> anyhow::Result<()> {
    let server = ServerProcess::start()?;
    let symbols: Vec<Symbol> = bench_symbols(args.symbols)?;
    let start = AS_OF
        .checked_sub_months(chrono::Months::new(12 * args.years))
        .context("--years reaches before year 0")?;
    let fetch_args = |concurrency: u32| FetchRequest {
        symbols: symbols.clone(),
        start,
        end: Some(AS_OF),
        interval: bf_core::Interval::D1,
        full: false,
        source: SourceSettings::Yahoo(YahooConfig {
            base_url: server.url.clone(),
            concurrency: concurrency as usize,
            requests_per_second: 0.0,
            max_retries: 5,
            timeout: std::time::Duration::from_secs(30),
            ..YahooConfig::default()
        }),
    };
    let mut passes = Vec::new();
    let mut last_lake = None;
    for &concurrency in &args.concurrency {
        let (temp, folders) = work_folders(args.dir.as_deref(), &["lake"])?;
        let lake = Lake::open(folders[0].to_str().context("work folder is not UTF-8")?)?;
        passes.push(measure("first fetch", concurrency, &lake, &fetch_args).await?);
        last_lake = Some((temp, lake, concurrency));
    }
    if let Some((_temp, lake, concurrency)) = &last_lake {
        passes.push(measure("up to date", *concurrency, lake, &fetch_args).await?);
    }
    if printer.json() {
        printer.json_value(&passes)?;
        return Ok(());
    }
    let rows = passes
        .iter()
        .map(|p| {
            vec![
                p.pass.clone(),
                p.concurrency.to_string(),
                count_text(p.requests),
                count_text(p.rows),
                format!("{:.2}", p.seconds),
                count_text(p.rows_per_second as usize),
                format!("{:.2}", p.cpu_seconds),
                format!("{:.2}", p.cpu_ms_per_1000_rows),
                format!("{:.0}", p.peak_rss_mib),
            ]
        })
        .collect();
    printer.table(&COLUMNS, &COLUMNS[1..], rows)?;
    printer.summary(&format!(
        "{} symbols × {} years of daily bars from a local Yahoo-format server (its own process, \
         answering at once, no rate limit); wall time includes storing into a fresh Delta lake",
        args.symbols, args.years
    ));
    Ok(())
}

async fn measure(
    pass: &str,
    concurrency: u32,
    lake: &Lake,
    fetch_args: &impl Fn(u32) -> FetchRequest,
) -> anyhow::Result<FetchPass> {
    reset_peak_rss();
    let (started, cpu_before) = (Instant::now(), cpu_seconds());
    let report =
        bf_pipeline::fetch::fetch(lake, &fetch_args(concurrency), std::sync::Arc::new(())).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    if let Some(failed) = report.failed().next() {
        anyhow::bail!("{}", failed.error.as_deref().unwrap_or_default());
    }
    let rows: usize = report.symbols.iter().map(|s| s.bars).sum();
    Ok(FetchPass {
        pass: pass.to_string(),
        concurrency,
        requests: report.requests,
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds,
        cpu_seconds: cpu,
        cpu_ms_per_1000_rows: if rows > 0 {
            cpu * 1e6 / rows as f64
        } else {
            f64::NAN
        },
        peak_rss_mib: peak_rss_mib(),
    })
}

/// `bf-bench yahoo-server`: serves until its stdin closes (the parent exits).
pub(crate) fn yahoo_server(args: BenchYahooServerArgs) -> anyhow::Result<()> {
    let mut config = ServerConfig::new(args.as_of);
    config.seed = args.seed;
    let server = Server::spawn(config, args.port)?;
    println!("{}", server.url());
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink)? > 0 {}
    Ok(())
}

//! `bf signals generate | show`.

use bf_core::SymbolLists;
use bf_core::tables::{SIGNALS, col, side};
use bf_lake::Lake;
use bf_signals::generate::generate_and_store;
use bf_signals::stats::{HORIZONS, side_stats};
use bf_signals::strategy::Strategies;
use serde::Serialize;

use super::{Outcome, es, resolve_symbols};
use crate::args::{
    GlobalArgs, OutputFormat, Side, SignalsCommand, SignalsGenerateArgs, SignalsShowArgs,
    SignalsStatsArgs,
};
use crate::present::{Printer, count_text, seconds_text};

pub async fn run(
    command: SignalsCommand,
    global: &GlobalArgs,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    match command {
        SignalsCommand::Generate(args) => generate(args, &lake, lists, printer).await,
        SignalsCommand::Show(args) => show(args, &lake, printer).await,
        SignalsCommand::Stats(args) => stats(args, &lake, printer).await,
    }
}

async fn generate(
    args: SignalsGenerateArgs,
    lake: &Lake,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let symbols: Vec<String> = resolve_symbols(&args.selection, lists)?
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let strategies = strategies(args.strategies.as_deref())?;
    if let Some(cluster) = super::cluster::connect(&args.cluster).await? {
        let report =
            bf_cluster::signals::generate_signals(&cluster, lake, &strategies, Some(&symbols))
                .await?;
        if !printer.json() {
            print_counts(&report.strategies, printer)?;
            printer.summary(&format!(
                "signals on the cluster: {} partitions, {:.2} s; {}",
                report.partitions,
                report.seconds,
                super::cluster::commit_text(&report.commit),
            ));
        }
        return finish_generate(&args, lake, &report, printer).await;
    }
    let report = generate_and_store(lake, &strategies, &symbols).await?;
    if !printer.json() {
        print_generated(&report, started.elapsed(), printer)?;
    }
    finish_generate(&args, lake, &report, printer).await
}

/// A run's signals per strategy and side.
fn print_counts(
    counts: &[bf_signals::generate::StrategyCount],
    printer: &Printer,
) -> anyhow::Result<()> {
    let rows = counts
        .iter()
        .map(|c| vec![c.strategy.clone(), count_text(c.buy), count_text(c.sell)])
        .collect();
    printer.table(&["strategy", "BUY", "SELL"], &["BUY", "SELL"], rows)?;
    Ok(())
}

/// The Elasticsearch mirror after a commit, and the JSON report with it.
async fn finish_generate(
    args: &SignalsGenerateArgs,
    lake: &Lake,
    report: &impl Serialize,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let synced = es::sync_after_commit(&args.es, lake, printer).await;
    if printer.json() {
        printer.json_value(&es::WithSync {
            report,
            elasticsearch: synced.as_ref(),
        })?;
    }
    Ok(synced.map_or(Outcome::Success, |s| s.outcome))
}

fn print_generated(
    report: &bf_signals::generate::GenerateReport,
    took: std::time::Duration,
    printer: &Printer,
) -> anyhow::Result<()> {
    print_counts(&report.strategies, printer)?;
    let m = &report.signals;
    printer.summary(&if m.committed {
        format!(
            "signals: {} new, {} changed, {} no longer firing (removed), {} unchanged (committed version {}) in {}",
            count_text(m.inserted),
            count_text(m.updated),
            count_text(m.deleted),
            count_text(m.unchanged),
            m.version.unwrap_or_default(),
            seconds_text(took)
        )
    } else {
        format!(
            "signals: no new or changed signals ({} unchanged); nothing written, in {}",
            count_text(m.unchanged),
            seconds_text(took)
        )
    });
    Ok(())
}

/// The strategies of a `--strategies` file, or the built-in ones.
pub fn strategies(file: Option<&std::path::Path>) -> anyhow::Result<Strategies> {
    Ok(match file {
        Some(path) => Strategies::load(path)?,
        None => Strategies::builtin(),
    })
}

const RECENT_COLUMNS: &str =
    "date, symbol, strategy, side, round(strength, 3) AS strength, round(price, 2) AS price";

pub async fn stats(
    args: SignalsStatsArgs,
    lake: &Lake,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let by_side = side_stats(lake, None).await?;
    if by_side.is_empty() {
        printer.summary("no signals yet; run `bf signals generate --symbol-list demo_small`");
        return Ok(Outcome::Success);
    }
    let recent = lake
        .sql(&format!(
            "SELECT {RECENT_COLUMNS} FROM {} ORDER BY date DESC, symbol, strategy LIMIT {}",
            SIGNALS.name, args.recent
        ))
        .await?;
    if printer.json() {
        #[derive(Serialize)]
        struct StatsReport<'a> {
            stats: &'a [bf_signals::stats::SideStats],
            recent: Vec<serde_json::Value>,
        }
        let recent = crate::present::batches_json(&recent.batches)?;
        printer.json_value(&StatsReport {
            stats: &by_side,
            recent,
        })?;
        return Ok(Outcome::Success);
    }
    let percent =
        |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{:.1}%", v * 100.0));
    let mut header = vec![
        "strategy".to_string(),
        "side".to_string(),
        "signals".to_string(),
    ];
    for h in HORIZONS {
        header.push(format!("hit {h}"));
        header.push(format!("mean {h}"));
    }
    let rows = by_side
        .iter()
        .map(|s| {
            let mut row = vec![
                s.strategy.clone(),
                s.side.clone(),
                count_text(s.signals as usize),
            ];
            for h in &s.horizons {
                row.push(percent(h.hit_rate));
                row.push(percent(h.mean_return));
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    printer.table(&header, &header[2..], rows)?;
    printer.line("")?;
    printer.batches(OutputFormat::Table, &recent.schema, &recent.batches)?;
    printer.summary(
        "hit: share of signals whose forward return over that many rows had the signal's sign \
         (BUY > 0, SELL < 0); mean: average forward return; — = no signal that old yet",
    );
    Ok(Outcome::Success)
}

async fn show(args: SignalsShowArgs, lake: &Lake, printer: &Printer) -> anyhow::Result<Outcome> {
    if lake.version(&SIGNALS).await?.is_none() {
        printer.summary("no signals yet; run `bf signals generate --symbol-list demo_small`");
        return Ok(Outcome::Success);
    }
    let quote = bf_lake::sql_literal;
    let mut conditions = Vec::new();
    if let Some(symbol) = &args.symbol {
        conditions.push(format!(
            "{} = {}",
            col::SYMBOL,
            quote(&symbol.to_uppercase())
        ));
    }
    if let Some(strategy) = &args.strategy {
        conditions.push(format!("{} = {}", col::STRATEGY, quote(strategy)));
    }
    if let Some(wanted) = args.side {
        let value = match wanted {
            Side::Buy => side::BUY,
            Side::Sell => side::SELL,
        };
        conditions.push(format!("{} = {}", col::SIDE, quote(value)));
    }
    if let Some(since) = args.since {
        conditions.push(format!(
            "{} >= DATE {}",
            col::DATE,
            quote(&since.to_string())
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let query = format!(
        "SELECT {RECENT_COLUMNS}, inputs FROM {} {filter} ORDER BY date DESC, symbol, strategy LIMIT {}",
        SIGNALS.name, args.limit
    );
    let result = lake.sql(&query).await?;
    let format = if printer.json() {
        OutputFormat::Json
    } else {
        OutputFormat::Table
    };
    printer.batches(format, &result.schema, &result.batches)?;
    Ok(Outcome::Success)
}

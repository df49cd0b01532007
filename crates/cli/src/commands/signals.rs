//! `bf signals generate | show`.

use std::collections::BTreeMap;

use bf_core::SymbolLists;
use bf_core::tables::{SIGNALS, col, side};
use bf_lake::{Lake, UpsertMetrics};
use bf_signals::engine::{RunStamp, generate as generate_signals, prepare};
use bf_signals::strategy::Strategies;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;

use super::{Outcome, now_micros, resolve_symbols};
use crate::args::{
    GlobalArgs, OutputFormat, Side, SignalsCommand, SignalsGenerateArgs, SignalsShowArgs,
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
    }
}

#[derive(Debug, Serialize)]
struct StrategyCount {
    strategy: String,
    buy: usize,
    sell: usize,
}

#[derive(Debug, Serialize)]
struct GenerateReport {
    run_id: String,
    strategies_file: String,
    strategies: Vec<StrategyCount>,
    signals: UpsertMetrics,
    seconds: f64,
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
    let strategies = match &args.strategies {
        Some(path) => Strategies::load(path)?,
        None => Strategies::builtin(),
    };
    let plan = prepare(&strategies).await?;
    let generated_at = now_micros();
    let run = RunStamp {
        run_id: format!("run-{generated_at:x}"),
        generated_at,
    };
    let batches = generate_signals(lake, &plan, Some(&symbols), &run).await?;
    let counts = count_by_strategy(&plan.strategy_names(), &batches)?;
    let metrics = lake.upsert(&SIGNALS, batches).await?;
    let report = GenerateReport {
        run_id: run.run_id,
        strategies_file: strategies.path,
        strategies: counts,
        signals: metrics,
        seconds: started.elapsed().as_secs_f64(),
    };
    if printer.json() {
        printer.json_value(&report)?;
        return Ok(Outcome::Success);
    }
    let rows = report
        .strategies
        .iter()
        .map(|c| vec![c.strategy.clone(), count_text(c.buy), count_text(c.sell)])
        .collect();
    printer.table(&["strategy", "BUY", "SELL"], &["BUY", "SELL"], rows)?;
    let m = &report.signals;
    printer.summary(&if m.committed {
        format!(
            "signals: {} new, {} changed, {} unchanged (committed version {}) in {}",
            count_text(m.inserted),
            count_text(m.updated),
            count_text(m.unchanged),
            m.version.unwrap_or_default(),
            seconds_text(started.elapsed())
        )
    } else {
        format!(
            "signals: no new or changed signals ({} unchanged); nothing written, in {}",
            count_text(m.unchanged),
            seconds_text(started.elapsed())
        )
    });
    Ok(Outcome::Success)
}

fn count_by_strategy(
    names: &[&str],
    batches: &[RecordBatch],
) -> anyhow::Result<Vec<StrategyCount>> {
    let mut counts: BTreeMap<&str, (usize, usize)> = names.iter().map(|n| (*n, (0, 0))).collect();
    for batch in batches {
        let strategies = cast(
            batch.column_by_name(col::STRATEGY).expect("signals column"),
            &DataType::Utf8,
        )?;
        let sides = cast(
            batch.column_by_name(col::SIDE).expect("signals column"),
            &DataType::Utf8,
        )?;
        for (strategy, side_value) in strategies
            .as_string::<i32>()
            .iter()
            .zip(sides.as_string::<i32>())
        {
            if let (Some(strategy), Some(side_value)) = (strategy, side_value)
                && let Some(count) = counts.get_mut(strategy)
            {
                if side_value == side::BUY {
                    count.0 += 1;
                } else {
                    count.1 += 1;
                }
            }
        }
    }
    Ok(names
        .iter()
        .map(|n| StrategyCount {
            strategy: n.to_string(),
            buy: counts[n].0,
            sell: counts[n].1,
        })
        .collect())
}

async fn show(args: SignalsShowArgs, lake: &Lake, printer: &Printer) -> anyhow::Result<Outcome> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
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
        "SELECT date, symbol, strategy, side, round(strength, 3) AS strength, round(price, 2) AS price, inputs \
         FROM {} {filter} ORDER BY date DESC, symbol, strategy LIMIT {}",
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

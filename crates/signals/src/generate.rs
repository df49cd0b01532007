//! The signals stage in one step: check the strategies, generate their
//! signals for some symbols and store them, counting what fired.

use std::collections::BTreeMap;
use std::time::Instant;

use bf_core::tables::{col, side};
use bf_lake::{Lake, UpsertMetrics};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;

use crate::SignalsError;
use crate::engine::{RunStamp, generate, prepare, store};
use crate::strategy::Strategies;

/// Signals one strategy produced in a run, by side.
#[derive(Debug, Serialize)]
pub struct StrategyCount {
    pub strategy: String,
    pub buy: usize,
    pub sell: usize,
}

#[derive(Debug, Serialize)]
pub struct GenerateReport {
    pub run_id: String,
    pub strategies_file: String,
    pub strategies: Vec<StrategyCount>,
    pub signals: UpsertMetrics,
    pub seconds: f64,
}

/// Generates the signals of `strategies` for `symbols` and stores them in one
/// commit (signals that no longer fire are removed).
pub async fn generate_and_store(
    lake: &Lake,
    strategies: &Strategies,
    symbols: &[String],
) -> Result<GenerateReport, SignalsError> {
    let started = Instant::now();
    let plan = prepare(strategies).await?;
    let run = RunStamp::now();
    let batches = generate(lake, &plan, Some(symbols), &run).await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        "signals computed"
    );
    let counts = count_by_strategy(&plan.strategy_names(), &batches)?;
    let signals = store(lake, &plan, Some(symbols), batches).await?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "signals stored");
    Ok(GenerateReport {
        run_id: run.run_id,
        strategies_file: strategies.path.clone(),
        strategies: counts,
        signals,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn count_by_strategy(
    names: &[&str],
    batches: &[RecordBatch],
) -> Result<Vec<StrategyCount>, SignalsError> {
    let mut counts: BTreeMap<&str, (usize, usize)> = names.iter().map(|n| (*n, (0, 0))).collect();
    let as_text = |batch: &RecordBatch, name: &str| {
        let column = batch.column_by_name(name).expect("signals column");
        cast(column, &DataType::Utf8).map_err(|e| SignalsError::Query(e.into()))
    };
    for batch in batches {
        let (strategies, sides) = (as_text(batch, col::STRATEGY)?, as_text(batch, col::SIDE)?);
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

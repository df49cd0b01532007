//! `bf signals generate --cluster`: the strategies' query planned here over
//! the `features` files and run on the executors (windows split by symbol),
//! its rows turned into signals and written there; the current `signals`
//! files are rewritten in the same job without the signals this run replaces
//! (its strategies on its symbols). One commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bf_core::tables::{FEATURES, SIGNALS, col, side};
use bf_lake::{Lake, sql_literal};
use bf_signals::SignalsError;
use bf_signals::engine::{RunStamp, prepare};
use bf_signals::generate::StrategyCount;
use bf_signals::strategy::Strategies;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use futures::TryStreamExt;
use serde::Serialize;

use crate::client::{physical_plan, split_by_symbol};
use crate::partition_op::{PartitionOp, PartitionOpExec};
use crate::write_job::{WriteOutcome, partitions_for, write_and_commit};
use crate::{Cluster, ClusterError};

/// What a signals run on the cluster did.
#[derive(Debug, Serialize)]
pub struct ClusterSignalsReport {
    pub run_id: String,
    pub strategies_file: String,
    /// Signals of this run per strategy and side.
    pub strategies: Vec<StrategyCount>,
    pub partitions: usize,
    pub commit: WriteOutcome,
    pub seconds: f64,
}

/// Generates the signals of `strategies` for `symbols` (all when `None`) on
/// the cluster and stores them in one commit, replacing this run's scope.
pub async fn generate_signals(
    cluster: &Cluster,
    lake: &Lake,
    strategies: &Strategies,
    symbols: Option<&[String]>,
) -> Result<ClusterSignalsReport, ClusterError> {
    let started = Instant::now();
    let plan = prepare(strategies).await?;
    let names: Vec<String> = plan
        .strategy_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let run = RunStamp::now();
    lake.ensure_table(&SIGNALS).await?;
    let features_rows = lake
        .table_files(&FEATURES)
        .await?
        .ok_or(SignalsError::NoFeatures)?
        .files
        .iter()
        .map(|f| f.rows.unwrap_or_default())
        .sum();
    let partitions = partitions_for(cluster, features_rows);
    let snapshot = cluster.snapshot(lake, partitions).await?;
    let signals = &snapshot.tables[SIGNALS.name];

    let rows = physical_plan(&snapshot.ctx, &plan.read_sql(symbols)).await?;
    let computed: Arc<dyn ExecutionPlan> = Arc::new(PartitionOpExec::new(
        split_by_symbol(rows, partitions)?,
        PartitionOp::Signals {
            strategies: strategies.clone(),
            run: run.clone(),
        },
    ));
    let replaced: Vec<String> = signals
        .files
        .iter()
        .filter(|file| symbols.is_none_or(|symbols| file.may_hold_any(&sorted(symbols))))
        .map(|file| file.url.clone())
        .collect();
    let rows: Arc<dyn ExecutionPlan> = if replaced.is_empty() {
        computed
    } else {
        let ctx = cluster.files_session(&SIGNALS, &replaced, partitions)?;
        let kept = physical_plan(
            &ctx,
            &format!(
                "SELECT * FROM {} WHERE NOT ({})",
                SIGNALS.name,
                scope(&names, symbols)
            ),
        )
        .await?;
        UnionExec::try_new(vec![computed, kept]).map_err(ClusterError::Plan)?
    };
    let commit = write_and_commit(
        cluster,
        lake,
        &SIGNALS,
        rows,
        signals.version,
        &replaced.into_iter().collect::<HashSet<_>>(),
        "bf signals generate",
    )
    .await?;
    let counts = count_run(cluster, lake, &names, &run.run_id).await?;
    Ok(ClusterSignalsReport {
        run_id: run.run_id,
        strategies_file: strategies.path.clone(),
        strategies: counts,
        partitions,
        commit,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Signals of run `run_id` per strategy and side, counted on the cluster.
async fn count_run(
    cluster: &Cluster,
    lake: &Lake,
    names: &[String],
    run_id: &str,
) -> Result<Vec<StrategyCount>, ClusterError> {
    let query = format!(
        "SELECT {strategy}, {side}, count(*) FROM {table} WHERE {run} = {id} GROUP BY 1, 2",
        strategy = col::STRATEGY,
        side = col::SIDE,
        table = SIGNALS.name,
        run = col::RUN_ID,
        id = sql_literal(run_id),
    );
    let counted = crate::sql::query(cluster, lake, &query).await?;
    let batches: Vec<RecordBatch> = counted
        .stream
        .try_collect()
        .await
        .map_err(ClusterError::Plan)?;
    let mut counts: Vec<StrategyCount> = names
        .iter()
        .map(|name| StrategyCount {
            strategy: name.clone(),
            buy: 0,
            sell: 0,
        })
        .collect();
    let plan_error = |e: datafusion::arrow::error::ArrowError| ClusterError::Plan(e.into());
    for batch in &batches {
        let strategies = cast(batch.column(0), &DataType::Utf8).map_err(plan_error)?;
        let sides = cast(batch.column(1), &DataType::Utf8).map_err(plan_error)?;
        let numbers = cast(batch.column(2), &DataType::Int64).map_err(plan_error)?;
        let (strategies, sides) = (strategies.as_string::<i32>(), sides.as_string::<i32>());
        let numbers = numbers.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let Some(count) = counts
                .iter_mut()
                .find(|c| c.strategy == strategies.value(row))
            else {
                continue;
            };
            let n = numbers.value(row) as usize;
            if sides.value(row) == side::BUY {
                count.buy += n;
            } else {
                count.sell += n;
            }
        }
    }
    Ok(counts)
}

fn sorted(symbols: &[String]) -> Vec<String> {
    let mut sorted = symbols.to_vec();
    sorted.sort_unstable();
    sorted
}

/// The signals a run replaces: its strategies on its symbols.
fn scope(strategies: &[String], symbols: Option<&[String]>) -> String {
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| sql_literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let strategies = format!("{} IN ({})", col::STRATEGY, list(strategies));
    match symbols {
        Some(symbols) => format!("{strategies} AND {} IN ({})", col::SYMBOL, list(symbols)),
        None => strategies,
    }
}

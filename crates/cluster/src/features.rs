//! `bf features build --cluster`: the same plan as the embedded build (which
//! series changed), then one job: the changed series' `ohlcv` rows are split
//! by symbol across the executors, each computes them with the embedded
//! build's kernels and writes `features` files; files holding older rows of
//! those series are rewritten without them in the same job. One commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bf_core::tables::{FEATURES, OHLCV, col};
use bf_features::build::{BuildPlan, BuildReport, BuildRequest, built_intervals, plan_build};
use bf_features::frame::INPUT_COLUMNS;
use bf_lake::{Lake, Series, sql_literal};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::client::{physical_plan, split_by_symbol};
use crate::partition_op::{PartitionOp, PartitionOpExec};
use crate::write_job::{WriteOutcome, partitions_for, write_and_commit};
use crate::{Cluster, ClusterError};

/// What a build on the cluster did.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterBuildReport {
    /// The plan's counts (series built, up to date, missing symbols).
    pub build: BuildReport,
    /// Nothing to build: no job ran and nothing was committed.
    pub up_to_date: bool,
    pub partitions: usize,
    pub commit: WriteOutcome,
    pub seconds: f64,
}

/// Builds the features of the requested symbols on the cluster.
pub async fn build_features(
    cluster: &Cluster,
    lake: &Lake,
    request: &BuildRequest,
) -> Result<ClusterBuildReport, ClusterError> {
    let started = Instant::now();
    let plan = plan_build(lake, request).await?;
    let series: Vec<&(Series, usize)> = plan.fresh.iter().chain(&plan.rebuild).collect();
    let rows: u64 = series.iter().map(|(_, n)| *n as u64).sum();
    let partitions = partitions_for(cluster, rows);
    let mut report = ClusterBuildReport {
        build: plan.report.clone(),
        up_to_date: series.is_empty(),
        partitions,
        commit: WriteOutcome::default(),
        seconds: 0.0,
    };
    if series.is_empty() {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    lake.ensure_table(&FEATURES).await?;
    let snapshot = cluster.snapshot(lake, partitions).await?;
    let features = &snapshot.tables[FEATURES.name];
    if features.version != plan.features_version.unwrap_or(features.version) {
        return Err(ClusterError::Conflict {
            table: FEATURES.name.to_string(),
        });
    }

    let computed = computed_rows(&snapshot.ctx, &plan, partitions).await?;
    // Files that may hold rows of a rebuilt series are rewritten without them.
    let mut rebuilt_symbols: Vec<String> =
        plan.rebuild.iter().map(|((s, _), _)| s.clone()).collect();
    rebuilt_symbols.sort_unstable();
    rebuilt_symbols.dedup();
    let replaced: Vec<String> = if rebuilt_symbols.is_empty() {
        Vec::new()
    } else {
        features
            .files
            .iter()
            .filter(|file| file.may_hold_any(&rebuilt_symbols))
            .map(|file| file.url.clone())
            .collect()
    };
    let rows_plan: Arc<dyn ExecutionPlan> = if replaced.is_empty() {
        computed
    } else {
        let kept = kept_rows(cluster, &plan, &replaced, partitions).await?;
        UnionExec::try_new(vec![computed, kept]).map_err(ClusterError::Plan)?
    };
    report.commit = write_and_commit(
        cluster,
        lake,
        &FEATURES,
        rows_plan,
        features.version,
        &replaced.into_iter().collect::<HashSet<_>>(),
        "bf features build",
    )
    .await?;
    report.build.files_added = report.commit.files_added;
    report.build.commits = 1;
    report.build.inserted = report.commit.rows_written as usize;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The plan's series computed: their `ohlcv` rows split by symbol into
/// `partitions`, each turned into `features` rows.
async fn computed_rows(
    ctx: &SessionContext,
    plan: &BuildPlan,
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>, ClusterError> {
    let columns: Vec<String> = INPUT_COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
    let every_series =
        plan.all_symbols && plan.rebuild.is_empty() && plan.report.series_up_to_date == 0;
    let filter = if every_series {
        built_intervals()
    } else {
        series_filter(plan.fresh.iter().chain(&plan.rebuild).map(|(s, _)| s))
    };
    let query = format!(
        "SELECT {} FROM {} WHERE {filter}",
        columns.join(", "),
        OHLCV.name
    );
    let scan = physical_plan(ctx, &query).await?;
    Ok(Arc::new(PartitionOpExec::new(
        split_by_symbol(scan, partitions)?,
        PartitionOp::Features {
            ohlcv_version: plan.stamp.ohlcv_version,
            computed_at: plan.stamp.computed_at,
        },
    )))
}

/// The rows of the `replaced` files that belong to no rebuilt series.
async fn kept_rows(
    cluster: &Cluster,
    plan: &BuildPlan,
    replaced: &[String],
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>, ClusterError> {
    let ctx = cluster.files_session(&FEATURES, replaced, partitions)?;
    let query = format!(
        "SELECT * FROM {} WHERE NOT ({})",
        FEATURES.name,
        series_filter(plan.rebuild.iter().map(|(s, _)| s))
    );
    physical_plan(&ctx, &query).await
}

/// `(symbol, interval)` in a list of series, as SQL.
fn series_filter<'a>(series: impl Iterator<Item = &'a Series>) -> String {
    let keys: Vec<String> = series
        .map(|(symbol, interval)| sql_literal(&format!("{symbol}\u{1f}{interval}")))
        .collect();
    format!(
        "concat(\"{}\", '\u{1f}', \"{}\") IN ({})",
        col::SYMBOL,
        col::INTERVAL,
        keys.join(", ")
    )
}

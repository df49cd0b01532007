//! A job whose last step writes a lake table's files on the executors, then
//! one commit here: the files it wrote added, the files it replaced removed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bf_core::tables::TableSpec;
use bf_lake::{Lake, WrittenFile};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;
use serde::Serialize;

use crate::partition_op::{PartitionOp, PartitionOpExec, written};
use crate::{Cluster, ClusterError};

/// What one executor wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecutorShare {
    pub files: usize,
    pub rows: u64,
}

/// What a write job committed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteOutcome {
    pub version: u64,
    pub rows_written: u64,
    pub files_added: usize,
    pub files_removed: usize,
    /// Files and rows per executor (`host:port`).
    pub by_executor: BTreeMap<String, ExecutorShare>,
}

/// Runs `rows` (a plan in `spec`'s schema) on the cluster into new files of
/// the table, then commits them on top of version `based_on`, removing the
/// files in `replaced`. A failed job commits nothing; files it wrote before
/// failing are not known here and are left for `bf lake vacuum`.
pub(crate) async fn write_and_commit(
    cluster: &Cluster,
    lake: &Lake,
    spec: &TableSpec,
    rows: Arc<dyn ExecutionPlan>,
    based_on: u64,
    replaced: &HashSet<String>,
    job_name: &str,
) -> Result<WriteOutcome, ClusterError> {
    let write = PartitionOpExec::new(
        rows,
        PartitionOp::WriteFiles {
            lake: lake.root().to_string(),
            table: spec.name.to_string(),
        },
    );
    let stream = cluster.execute(Arc::new(write), job_name).await?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| ClusterError::Job {
        message: crate::client::first_line(&e.to_string()),
    })?;
    let mut outcome = WriteOutcome::default();
    let mut files: Vec<WrittenFile> = Vec::new();
    for batch in &batches {
        let column = |name: &str| batch.column_by_name(name).expect("written files column");
        let adds = column(written::ADD).as_string::<i32>();
        let counts = column(written::ROWS).as_primitive::<UInt64Type>();
        let executors = column(written::EXECUTOR).as_string::<i32>();
        for row in 0..batch.num_rows() {
            files.push(adds.value(row).to_string());
            let share = outcome
                .by_executor
                .entry(executors.value(row).to_string())
                .or_default();
            share.files += 1;
            share.rows += counts.value(row);
            outcome.rows_written += counts.value(row);
        }
    }
    match lake.commit_files(spec, based_on, &files, replaced).await {
        Ok(commit) => {
            outcome.version = commit.version;
            outcome.files_added = commit.files_added;
            outcome.files_removed = commit.files_removed;
            Ok(outcome)
        }
        Err(error) => {
            let deleted = lake.delete_written(spec, &files).await;
            tracing::info!(
                deleted,
                table = spec.name,
                "removed the files of a job not committed"
            );
            if error.is_conflict() {
                Err(ClusterError::Conflict {
                    table: spec.name.to_string(),
                })
            } else {
                Err(error.into())
            }
        }
    }
}

/// Partitions for `rows` rows: every slot busy, and about a million rows per
/// partition at most, since a partition's series are held in memory whole.
pub(crate) fn partitions_for(cluster: &Cluster, rows: u64) -> usize {
    const ROWS_PER_PARTITION: u64 = 1_000_000;
    cluster
        .slots()
        .max(rows.div_ceil(ROWS_PER_PARTITION) as usize)
        .max(1)
}

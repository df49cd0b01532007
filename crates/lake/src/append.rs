//! Appending rows whose keys are new: Parquet files encoded in parallel, one
//! per core, all added in a single Delta commit.
//!
//! A Parquet file is encoded on one core; for wide tables such as `features`
//! the encoding dominates the whole write, so bf splits the rows into
//! contiguous chunks (keeping the callers' symbol order, which keeps each file's
//! symbol range narrow for pruning), writes each on its own thread, and
//! commits every file at once.

use std::num::NonZeroUsize;

use bf_core::tables::TableSpec;
use datafusion::arrow::array::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::{Action, Add, StructType};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};

use crate::change_log;
use crate::changes::ChangedSeries;
use crate::files::{commit_on, data_files};
use crate::lake::local_path;
use crate::upsert::{UpsertMetrics, rows};
use crate::{Lake, LakeError};

/// Below this many rows per core another file costs more than it saves.
const MIN_ROWS_PER_FILE: usize = 256 * 1024;

/// Above this many rows a file is cut in two: a changed row rewrites its
/// whole file (delta-rs 1.1 writes no deletion vectors), so the smaller the
/// files, the less of the table a day's re-adjusted series rewrite.
const MAX_ROWS_PER_FILE: usize = 128 * 1024;

impl Lake {
    /// Appends rows whose keys were not stored at version `based_on` of the
    /// table (`None`: the table did not exist), skipping the comparison an
    /// upsert makes: a first build, new symbols. Creates the table if needed.
    /// One commit; nothing is committed for no rows.
    ///
    /// When another writer committed since `based_on` (or commits first), the
    /// caller's knowledge is stale and a blind append could store keys twice:
    /// the rows are upserted instead, compared with what is stored now.
    pub async fn append(
        &self,
        spec: &'static TableSpec,
        batches: Vec<RecordBatch>,
        based_on: Option<u64>,
    ) -> Result<UpsertMetrics, LakeError> {
        let table = self.load(spec).await?;
        if table.as_ref().and_then(DeltaTable::version) == based_on {
            match self.append_rows(spec, table, batches.clone()).await {
                Err(err) if err.is_conflict() => {}
                done => return done,
            }
        }
        tracing::info!(
            table = spec.name,
            "another writer committed since the rows were planned; upserting them instead"
        );
        let metrics = self.upsert(spec, batches).await?;
        Ok(UpsertMetrics {
            conflicts_retried: metrics.conflicts_retried + 1,
            ..metrics
        })
    }

    pub(crate) async fn append_rows(
        &self,
        spec: &TableSpec,
        table: Option<DeltaTable>,
        batches: Vec<RecordBatch>,
    ) -> Result<UpsertMetrics, LakeError> {
        let inserted = rows(&batches);
        if inserted == 0 {
            return Ok(UpsertMetrics {
                version: table.and_then(|t| t.version()),
                ..UpsertMetrics::default()
            });
        }
        let table = match table {
            Some(table) => table,
            None => {
                let created = self.create_table(spec).await?;
                // The caller found no table, so it compared its rows with none.
                // If another writer created the table and wrote to it meanwhile,
                // a blind append could store keys twice: report a conflict, so
                // that an upsert starts over and compares.
                if let Some(version) = created.version().filter(|&v| v > 0) {
                    return Err(
                        self.delta_error(spec, DeltaTableError::VersionAlreadyExists(version))
                    );
                }
                created
            }
        };
        let (version, files_added) = write_in_parallel(spec, &table, batches)
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        Ok(UpsertMetrics {
            inserted,
            files_added,
            version: Some(version),
            committed: true,
            ..UpsertMetrics::default()
        })
    }

    /// An empty table with the spec's schema; a concurrent creator's table is
    /// used as it is.
    pub(crate) async fn create_table(&self, spec: &TableSpec) -> Result<DeltaTable, LakeError> {
        let url = self.table_url(spec);
        if let Some(path) = local_path(&url) {
            std::fs::create_dir_all(&path).map_err(|e| LakeError::Location {
                location: path.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let schema: StructType = spec
            .schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| self.delta_error(spec, e.into()))?;
        self.table_builder(url)
            .and_then(|builder| builder.build())
            .map_err(|e| self.delta_error(spec, e))?
            .create()
            .with_table_name(spec.name)
            .with_columns(schema.fields().cloned())
            .with_save_mode(SaveMode::Ignore)
            .await
            .map_err(|e| self.delta_error(spec, e))
    }
}

/// Writes `batches` as up to one file per core and commits them; returns the
/// new version and the number of files.
async fn write_in_parallel(
    spec: &TableSpec,
    table: &DeltaTable,
    batches: Vec<RecordBatch>,
) -> Result<(u64, usize), DeltaTableError> {
    let snapshot = table.snapshot()?;
    // Every row is new.
    let changed = spec.logs_changes.then(|| {
        let mut changed = ChangedSeries::new();
        for batch in &batches {
            change_log::add_rows(&mut changed, batch);
        }
        changed
    });
    let actions: Vec<Action> = write_files_in_parallel(spec, table, batches)
        .await?
        .into_iter()
        .map(Action::Add)
        .collect();
    let files_added = actions.len();
    // No rebasing onto a concurrent commit: a blind append would then store
    // keys the other writer also stored. The caller re-reads and retries.
    let version = commit_on(table, snapshot, actions, SaveMode::Append, changed.as_ref()).await?;
    Ok((version, files_added))
}

/// Writes `batches` into the table's folder as up to one file per core, or
/// more where each would exceed [`MAX_ROWS_PER_FILE`], without committing
/// them; their `add` actions.
pub(crate) async fn write_files_in_parallel(
    spec: &TableSpec,
    table: &DeltaTable,
    batches: Vec<RecordBatch>,
) -> Result<Vec<Add>, DeltaTableError> {
    let data_files = data_files(spec, table)?;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let rows = rows(&batches);
    let files = rows
        .div_ceil(MIN_ROWS_PER_FILE)
        .clamp(1, cores)
        .max(rows.div_ceil(MAX_ROWS_PER_FILE));

    let mut tasks = tokio::task::JoinSet::new();
    for chunk in split_rows(batches, files) {
        let data_files = data_files.clone();
        tasks.spawn(async move { data_files.write(chunk).await });
    }
    let mut adds = Vec::new();
    while let Some(written) = tasks.join_next().await {
        adds.extend(written.map_err(|e| DeltaTableError::Generic(format!("writer task: {e}")))??);
    }
    Ok(adds)
}

/// Splits batches into at most `parts` contiguous runs of about equal row
/// counts. A batch of at most an eighth of a run is kept whole, so that rows
/// a writer handed together (one series of the features build) land in one
/// file, which lets readers take each file's series as whole.
fn split_rows(batches: Vec<RecordBatch>, parts: usize) -> Vec<Vec<RecordBatch>> {
    let target = rows(&batches).div_ceil(parts.max(1)).max(1);
    let mut chunks = vec![Vec::new()];
    let mut filled = 0;
    for batch in batches {
        let whole = batch.num_rows() <= target / 8;
        let mut offset = 0;
        while offset < batch.num_rows() {
            if filled >= target {
                chunks.push(Vec::new());
                filled = 0;
            }
            let rest = batch.num_rows() - offset;
            let take = if whole {
                rest
            } else {
                rest.min(target - filled)
            };
            chunks
                .last_mut()
                .expect("one chunk")
                .push(batch.slice(offset, take));
            offset += take;
            filled += take;
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[tokio::test]
    async fn appending_to_a_table_found_missing_that_another_writer_filled_is_a_conflict() {
        use bf_core::Symbol;
        use bf_core::tables::OHLCV;
        use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
        use bf_sources::{ActionsBuilder, BarsBuilder};
        use chrono::NaiveDate;

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
        Synthetic::new(42).generate(
            &Symbol::parse("AAA").unwrap(),
            NaiveDate::from_ymd_opt(2021, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2021, 3, 31).unwrap(),
            &mut bars,
            &mut ActionsBuilder::new(SOURCE_NAME, 1),
        );
        let bars = bars.finish();
        // This writer found no table; before it created one, another writer
        // created it and stored the same keys.
        lake.upsert(&OHLCV, vec![bars.clone()]).await.unwrap();
        let err = lake
            .append_rows(&OHLCV, None, vec![bars.clone()])
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert_eq!(
            lake.version(&OHLCV).await.unwrap(),
            Some(1),
            "nothing appended"
        );
    }

    #[test]
    fn splits_into_equal_contiguous_runs() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = |values: Vec<i32>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(values))]).unwrap()
        };
        let chunks = split_rows(vec![batch((0..5).collect()), batch((5..10).collect())], 3);
        let sizes: Vec<usize> = chunks.iter().map(|c| rows(c)).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let first: Vec<i32> = chunks[1]
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(first, [4, 5, 6, 7]);

        // Small batches stay whole; a run overshoots by less than one.
        let small: Vec<RecordBatch> = (0..21).map(|i| batch(vec![i; 3])).collect();
        let chunks = split_rows(small, 2);
        let sizes: Vec<usize> = chunks.iter().map(|c| rows(c)).collect();
        assert_eq!(sizes, [33, 30]);
        assert!(chunks.iter().flatten().all(|b| b.num_rows() == 3));
    }
}

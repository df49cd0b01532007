//! What changed between two versions of a table, per series and per row, read
//! from the Delta log rather than from clocks: rows in files added since the
//! old version that are not identical to a row in a file removed since then,
//! and keys in removed files that no added file holds.
//!
//! Tables that log their changes (`TableSpec::logs_changes`) say per commit
//! which series changed; the rows are compared only when a commit since did
//! not say.
//!
//! An append adds files holding only new rows; a MERGE removes the files it
//! touched and adds rewritten copies, whose unchanged rows cancel against the
//! removed originals; a compaction cancels out entirely.

use std::collections::{HashMap, HashSet};

use bf_core::tables::{TableSpec, col};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;

use crate::change_log;
use crate::files::register_data_files;
use crate::upsert::file_paths;
use crate::{Lake, LakeError};

/// A (symbol, interval) pair.
pub type Series = (String, String);

/// Changed series with the first date (days since 1970-01-01) whose row was
/// added or changed: rows before it are as they were.
pub type ChangedSeries = HashMap<Series, i32>;

impl Lake {
    /// The (symbol, interval) series of `spec` whose rows were added or changed
    /// after `version` (key and value columns compared; provenance ignored), each
    /// with its first changed date.
    pub async fn changed_series_since(
        &self,
        spec: &TableSpec,
        version: u64,
    ) -> Result<ChangedSeries, LakeError> {
        match self.load(spec).await? {
            Some(now) => self.changed_series_up_to(spec, &now, version).await,
            None => Ok(HashMap::new()),
        }
    }

    /// [`Lake::changed_series_since`] up to `now`, the table as already
    /// loaded: its log is not read again.
    pub async fn changed_series_up_to(
        &self,
        spec: &TableSpec,
        now: &DeltaTable,
        version: u64,
    ) -> Result<ChangedSeries, LakeError> {
        if now.version() == Some(version) {
            return Ok(HashMap::new());
        }
        if spec.logs_changes
            && let Some(logged) = change_log::changed_since(now, version).await
        {
            return Ok(logged);
        }
        let then = self
            .open_table(self.table_url(spec), Some(version))
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        let (now_files, then_files) = (file_paths(now), file_paths(&then));
        let added: Vec<&String> = now_files.difference(&then_files).collect();
        let removed: Vec<&String> = then_files.difference(&now_files).collect();
        if added.is_empty() {
            return Ok(HashMap::new());
        }
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let ctx = SessionContext::new();
        now.update_datafusion_session(&ctx.state())
            .map_err(|e| scan_error(e.into()))?;
        register_files(&ctx, spec, now, "added", &added).map_err(scan_error)?;
        let columns: Vec<String> = spec
            .key
            .iter()
            .copied()
            .chain(spec.value_columns())
            .map(|c| format!("\"{c}\""))
            .collect();
        let columns = columns.join(", ");
        let series = format!("{}, \"{}\", min({})", col::SYMBOL, col::INTERVAL, col::DATE);
        let exact = format!(
            "SELECT {series} FROM (SELECT {columns} FROM added EXCEPT SELECT {columns} FROM removed) GROUP BY 1, 2"
        );
        let all_added = format!("SELECT {series} FROM added GROUP BY 1, 2");
        if removed.is_empty() {
            return series_of(&ctx, &all_added).await.map_err(scan_error);
        }
        register_files(&ctx, spec, now, "removed", &removed).map_err(scan_error)?;
        match series_of(&ctx, &exact).await {
            Ok(changed) => Ok(changed),
            // Removed files can be gone (vacuum); then every series in the
            // added files counts as changed, which costs time but misses nothing.
            Err(error) => {
                tracing::warn!(table = spec.name, %error, "files removed since version {version} are unreadable; treating all rewritten series as changed");
                series_of(&ctx, &all_added).await.map_err(scan_error)
            }
        }
    }
}

/// Registers the given data files of a table (paths relative to it, or URLs)
/// as one Parquet table named `name`.
pub(crate) fn register_files(
    ctx: &SessionContext,
    spec: &TableSpec,
    table: &DeltaTable,
    name: &str,
    files: &[impl AsRef<str>],
) -> Result<(), DataFusionError> {
    let root = table.table_url();
    let urls = files
        .iter()
        .map(|path| {
            root.join(path.as_ref())
                .map(String::from)
                .map_err(|e| DataFusionError::External(Box::new(e)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    register_data_files(ctx, spec.schema(), name, &urls)
}

async fn series_of(ctx: &SessionContext, query: &str) -> Result<ChangedSeries, DataFusionError> {
    let mut series = HashMap::new();
    for batch in ctx.sql(query).await?.collect().await? {
        let symbols = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let intervals = datafusion::arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
        let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
        let first_dates = batch.column(2).as_primitive::<Date32Type>();
        for row in 0..batch.num_rows() {
            series.insert(
                (
                    symbols.value(row).to_string(),
                    intervals.value(row).to_string(),
                ),
                first_dates.value(row),
            );
        }
    }
    Ok(series)
}

/// Rows of a table that changed after a version: what a copy of the table
/// elsewhere (a search index, a topic) applies to match it again.
#[derive(Debug)]
pub struct RowChanges {
    /// The table version these changes lead to.
    pub version: u64,
    /// Rows added or changed since (key and value columns compared,
    /// provenance ignored), whole, in the table's schema.
    pub upserts: Vec<RecordBatch>,
    /// Keys (the key columns only) of rows no longer in the table.
    pub deletes: Vec<RecordBatch>,
}

impl Lake {
    /// Row-level changes of `spec` after version `since` (every row when
    /// `None`), read from the Delta log as [`Self::changed_series_since`]
    /// does: a MERGE's rewritten but unchanged rows and a compaction cancel
    /// out. `None` when the table does not exist yet.
    pub async fn row_changes_since(
        &self,
        spec: &TableSpec,
        since: Option<u64>,
    ) -> Result<Option<RowChanges>, LakeError> {
        let Some(now) = self.load(spec).await? else {
            return Ok(None);
        };
        let version = now.version().unwrap_or_default();
        let mut changes = RowChanges {
            version,
            upserts: Vec::new(),
            deletes: Vec::new(),
        };
        let then_files = match since {
            Some(since) if since == version => return Ok(Some(changes)),
            Some(since) => file_paths(
                &self
                    .open_table(self.table_url(spec), Some(since))
                    .await
                    .map_err(|e| self.delta_error(spec, e))?,
            ),
            None => HashSet::new(),
        };
        let now_files = file_paths(&now);
        let added: Vec<&String> = now_files.difference(&then_files).collect();
        let removed: Vec<&String> = then_files.difference(&now_files).collect();
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let ctx = SessionContext::new();
        now.update_datafusion_session(&ctx.state())
            .map_err(|e| scan_error(e.into()))?;
        let quoted = |columns: &[&str]| {
            columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let keys = quoted(spec.key);
        let compared: Vec<&str> = spec
            .key
            .iter()
            .copied()
            .chain(spec.value_columns())
            .collect();
        let compared = quoted(&compared);
        let on: Vec<String> = spec
            .key
            .iter()
            .map(|k| format!("a.\"{k}\" = c.\"{k}\""))
            .collect();
        let (upserts, deletes) = match (added.is_empty(), removed.is_empty()) {
            (true, true) => return Ok(Some(changes)),
            (false, true) => (Some("SELECT * FROM added".to_string()), None),
            (true, false) => (None, Some(format!("SELECT {keys} FROM removed"))),
            (false, false) => (
                Some(format!(
                    "SELECT a.* FROM added a LEFT SEMI JOIN (SELECT {keys} FROM \
                     (SELECT {compared} FROM added EXCEPT SELECT {compared} FROM removed)) c ON {}",
                    on.join(" AND ")
                )),
                Some(format!(
                    "SELECT {keys} FROM removed EXCEPT SELECT {keys} FROM added"
                )),
            ),
        };
        if !added.is_empty() {
            register_files(&ctx, spec, &now, "added", &added).map_err(scan_error)?;
        }
        if !removed.is_empty() {
            register_files(&ctx, spec, &now, "removed", &removed).map_err(scan_error)?;
        }
        let collect = |query: Option<String>| {
            let ctx = ctx.clone();
            async move {
                match query {
                    Some(query) => ctx.sql(&query).await?.collect().await,
                    None => Ok(Vec::new()),
                }
            }
        };
        changes.upserts = collect(upserts).await.map_err(scan_error)?;
        changes.deletes = collect(deletes).await.map_err(scan_error)?;
        Ok(Some(changes))
    }
}

//! Tables as lists of Parquet files, for engines that read and write them
//! without delta-rs (the cluster's executors): the current version's files,
//! files written into a table's folder but not yet committed, and one commit
//! that adds the written files and removes the replaced ones.

use std::collections::HashSet;
use std::sync::Arc;

use bf_core::tables::{TableSpec, col};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::object_store::ObjectStoreExt as _;
use datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::{DeltaTable, DeltaTableError};
use serde::Deserialize;

use crate::change_log;
use crate::changes::ChangedSeries;
use crate::data_file::DataFiles;
use crate::upsert::writer_properties;
use crate::{Lake, LakeError};

/// A table's data files at one version.
#[derive(Debug, Clone)]
pub struct TableFiles {
    pub version: u64,
    pub files: Vec<DataFile>,
}

/// One data file of a table version.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Absolute URL (`s3://…` or `file://…`).
    pub url: String,
    pub size: u64,
    /// Rows, from its statistics.
    pub rows: Option<u64>,
    /// Smallest and largest `symbol` in the file, from its statistics (`None`
    /// when the file has none).
    pub symbols: Option<(String, String)>,
}

impl DataFile {
    /// Whether the file may hold rows of any of `symbols` (sorted).
    pub fn may_hold_any(&self, symbols: &[String]) -> bool {
        match &self.symbols {
            None => true,
            Some((low, high)) => any_between(symbols, low, high),
        }
    }
}

/// Whether any of `symbols` (sorted) lies from `low` to `high`.
fn any_between(symbols: &[String], low: &str, high: &str) -> bool {
    let first = symbols.partition_point(|s| s.as_str() < low);
    symbols.get(first).is_some_and(|s| s.as_str() <= high)
}

impl TableFiles {
    /// The symbol ranges of the files, merged where they overlap: disjoint,
    /// in symbol order, each with its rows and files (a symbol's rows all lie
    /// in one range). `None` when some file has no symbol statistics.
    pub fn symbol_ranges(&self) -> Option<Vec<SymbolRange>> {
        let mut files = self
            .files
            .iter()
            .map(|f| {
                let (low, high) = f.symbols.clone()?;
                Some(SymbolRange {
                    low,
                    high,
                    rows: f.rows.unwrap_or_default(),
                    files: vec![f.url.clone()],
                })
            })
            .collect::<Option<Vec<_>>>()?;
        files.sort_by(|a, b| a.low.cmp(&b.low));
        let mut merged: Vec<SymbolRange> = Vec::new();
        for file in files {
            match merged.last_mut() {
                Some(last) if file.low <= last.high => {
                    last.high = last.high.clone().max(file.high);
                    last.rows += file.rows;
                    last.files.extend(file.files);
                }
                _ => merged.push(file),
            }
        }
        Some(merged)
    }
}

/// Symbols from `low` to `high`, both included, and the rows stored for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolRange {
    pub low: String,
    pub high: String,
    pub rows: u64,
    /// The URLs of the files merged into the range: with more than one, a
    /// symbol's rows may lie in several of them.
    pub files: Vec<String>,
}

impl SymbolRange {
    /// Whether the range holds any of `symbols` (sorted).
    pub fn holds_any(&self, symbols: &[String]) -> bool {
        any_between(symbols, &self.low, &self.high)
    }
}

/// Registers data files of a table (absolute URLs, as [`TableFiles`] lists
/// them) as one Parquet table named `name` in `ctx`, whose session knows the
/// lake's object store ([`Lake::table_session`]), read as `schema` (the
/// table's, texts perhaps as views): for readers that choose a version's
/// files themselves instead of filtering the whole table's rows.
pub fn register_data_files(
    ctx: &SessionContext,
    schema: SchemaRef,
    name: &str,
    urls: &[String],
) -> Result<(), DataFusionError> {
    let urls = urls
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// A file written into a table's folder, to be committed: delta's `add`
/// action as JSON, so that it can travel from an executor to the client.
pub type WrittenFile = String;

/// What [`Lake::commit_files`] committed.
#[derive(Debug, Clone, Copy)]
pub struct FilesCommit {
    pub version: u64,
    pub files_added: usize,
    pub files_removed: usize,
}

#[derive(Deserialize)]
struct SymbolStats {
    #[serde(rename = "minValues")]
    min: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "maxValues")]
    max: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Lake {
    /// The table's current files, `None` before its first write.
    pub async fn table_files(&self, spec: &TableSpec) -> Result<Option<TableFiles>, LakeError> {
        let Some(table) = self.load(spec).await? else {
            return Ok(None);
        };
        self.files_of(spec, &table).map(Some)
    }

    /// The files of `table`'s version.
    pub(crate) fn files_of(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
    ) -> Result<TableFiles, LakeError> {
        Ok(TableFiles {
            version: table.version().unwrap_or_default(),
            files: self.data_files(spec, table)?,
        })
    }

    /// The files of `table`'s version.
    pub(crate) fn data_files(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
    ) -> Result<Vec<DataFile>, LakeError> {
        let snapshot = table.snapshot().map_err(|e| self.delta_error(spec, e))?;
        let root = self.table_url(spec);
        snapshot
            .log_data()
            .iter()
            .map(|file| {
                let url = root
                    .join(file.object_store_path().as_ref())
                    .map_err(|e| self.delta_error(spec, DeltaTableError::Generic(e.to_string())))?;
                Ok(DataFile {
                    url: url.to_string(),
                    size: file.size().max(0) as u64,
                    rows: file.num_records().map(|n| n as u64),
                    symbols: file.stats().and_then(|stats| symbol_range(&stats)),
                })
            })
            .collect()
    }

    /// Creates the table if it does not exist yet; its version.
    pub async fn ensure_table(&self, spec: &TableSpec) -> Result<u64, LakeError> {
        let table = match self.load(spec).await? {
            Some(table) => table,
            None => self.create_table(spec).await?,
        };
        Ok(table.version().unwrap_or_default())
    }

    /// Writes rows into the table's folder as Parquet files, with the
    /// statistics delta-rs would record, without committing them: until
    /// [`Lake::commit_files`] adds them they are invisible (and
    /// `bf lake vacuum` deletes them once old enough). The table must exist.
    pub async fn write_files(
        &self,
        spec: &TableSpec,
        batches: impl IntoIterator<Item = RecordBatch>,
    ) -> Result<Vec<WrittenFile>, LakeError> {
        let table = self.load(spec).await?.ok_or_else(|| {
            self.delta_error(spec, DeltaTableError::NotATable(spec.name.to_string()))
        })?;
        let written = data_files(spec, &table)
            .map_err(|e| self.delta_error(spec, e))?
            .write(batches.into_iter().collect())
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        written
            .iter()
            .map(|add| {
                serde_json::to_string(add)
                    .map_err(|e| self.delta_error(spec, DeltaTableError::Generic(e.to_string())))
            })
            .collect()
    }

    /// One commit on top of version `based_on`: adds `written` files and
    /// removes the current files whose URL is in `replaced`. Nothing is
    /// committed, and a conflict is returned, when another writer committed
    /// since `based_on`: the caller planned on what it read then.
    pub async fn commit_files(
        &self,
        spec: &TableSpec,
        based_on: u64,
        written: &[WrittenFile],
        replaced: &HashSet<String>,
    ) -> Result<FilesCommit, LakeError> {
        let table = self
            .open_table(self.table_url(spec), Some(based_on))
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        let added = written
            .iter()
            .map(|json| {
                serde_json::from_str(json)
                    .map_err(|e| self.delta_error(spec, DeltaTableError::Generic(e.to_string())))
            })
            .collect::<Result<Vec<Add>, LakeError>>()?;
        // What the files hold is not known here: no change log.
        self.commit_replacing(spec, &table, added, replaced, None)
            .await
    }

    /// One commit on top of `table`'s version: adds `added` files and removes
    /// the files whose URL is in `replaced`, logging the series it `changed`
    /// where known; a conflict when another writer committed since.
    pub(crate) async fn commit_replacing(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        added: Vec<Add>,
        replaced: &HashSet<String>,
        changed: Option<&ChangedSeries>,
    ) -> Result<FilesCommit, LakeError> {
        let snapshot = table.snapshot().map_err(|e| self.delta_error(spec, e))?;
        let root = self.table_url(spec);
        let removes: Vec<Action> = snapshot
            .log_data()
            .iter()
            .filter(|file| {
                root.join(file.object_store_path().as_ref())
                    .is_ok_and(|url| replaced.contains(url.as_str()))
            })
            .map(|file| Action::Remove(file.remove_action(true)))
            .collect();
        let (files_added, files_removed) = (added.len(), removes.len());
        let mut actions = removes;
        actions.extend(added.into_iter().map(Action::Add));
        let version = table.version().unwrap_or_default();
        if actions.is_empty() {
            return Ok(FilesCommit {
                version,
                files_added,
                files_removed,
            });
        }
        let mode = if files_removed > 0 {
            SaveMode::Overwrite
        } else {
            SaveMode::Append
        };
        let version = commit_on(table, snapshot, actions, mode, changed)
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        Ok(FilesCommit {
            version,
            files_added,
            files_removed,
        })
    }

    /// Deletes files [`Lake::write_files`] wrote for a job that will not be
    /// committed. Best effort: what is left, `bf lake vacuum` removes.
    pub async fn delete_written(&self, spec: &TableSpec, written: &[WrittenFile]) -> usize {
        let Ok(Some(table)) = self.load(spec).await else {
            return 0;
        };
        let paths = written
            .iter()
            .filter_map(|json| serde_json::from_str::<Add>(json).ok())
            .map(|add| add.path);
        delete_uncommitted(&table, paths).await
    }
}

/// Deletes files written into `table`'s folder (paths relative to it) and
/// never committed; how many. Best effort: what is left, `bf lake vacuum` removes.
pub(crate) async fn delete_uncommitted(
    table: &DeltaTable,
    paths: impl IntoIterator<Item = String>,
) -> usize {
    let store = table.object_store();
    let mut deleted = 0;
    for path in paths {
        match store.delete(&deltalake::Path::from(path.as_str())).await {
            Ok(()) => deleted += 1,
            Err(error) => tracing::warn!(%error, %path, "cannot delete an uncommitted file"),
        }
    }
    deleted
}

/// Commits `actions` as a write on exactly `snapshot`'s version: when another
/// writer committed first, a conflict, never a rebase (the caller planned on
/// what it read). Through `CommitProperties`, so a checkpoint is written every
/// 100 commits and opening a long-lived table reads one Parquet file, not
/// thousands of JSONs.
pub(crate) async fn commit_on(
    table: &DeltaTable,
    snapshot: &DeltaTableState,
    actions: Vec<Action>,
    mode: SaveMode,
    changed: Option<&ChangedSeries>,
) -> Result<u64, DeltaTableError> {
    let properties = CommitProperties::default().with_max_retries(0);
    let properties = match changed {
        Some(changed) => properties.with_metadata([change_log::to_commit_info(changed)]),
        None => properties,
    };
    let commit = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode,
                partition_by: None,
                predicate: None,
            },
        )
        .await?;
    Ok(commit.version)
}

/// How a table's files are written: bf's Parquet settings for it and the
/// table's statistics settings.
pub(crate) fn data_files(
    spec: &TableSpec,
    table: &DeltaTable,
) -> Result<DataFiles, DeltaTableError> {
    DataFiles::new(table, spec.schema(), writer_properties(spec))
}

/// The `symbol` range of a file from its `add` statistics.
fn symbol_range(stats: &str) -> Option<(String, String)> {
    let stats: SymbolStats = serde_json::from_str(stats).ok()?;
    let text = |values: Option<serde_json::Map<String, serde_json::Value>>| {
        values?.get(col::SYMBOL)?.as_str().map(str::to_string)
    };
    Some((text(stats.min)?, text(stats.max)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::bars;

    fn file(symbols: Option<(&str, &str)>) -> DataFile {
        DataFile {
            url: "file:///t/a.parquet".into(),
            size: 1,
            rows: None,
            symbols: symbols.map(|(a, b)| (a.into(), b.into())),
        }
    }

    #[test]
    fn a_file_may_hold_a_symbol_inside_its_range() {
        let wanted = vec!["B".to_string(), "M".to_string()];
        assert!(file(Some(("A", "C"))).may_hold_any(&wanted));
        assert!(file(Some(("M", "M"))).may_hold_any(&wanted));
        assert!(!file(Some(("C", "L"))).may_hold_any(&wanted));
        assert!(!file(Some(("N", "Z"))).may_hold_any(&wanted));
        assert!(file(None).may_hold_any(&wanted), "no statistics: maybe");
    }

    #[test]
    fn overlapping_files_merge_into_one_symbol_range() {
        let ranged = |low: &str, high: &str, rows| DataFile {
            url: format!("file:///t/{low}-{high}"),
            rows: Some(rows),
            ..file(Some((low, high)))
        };
        let range = |low: &str, high: &str, rows, files: &[&str]| SymbolRange {
            low: low.into(),
            high: high.into(),
            rows,
            files: files
                .iter()
                .map(|name| format!("file:///t/{name}"))
                .collect(),
        };
        let table = |files| TableFiles { version: 1, files };
        let files = vec![
            ranged("M", "P", 5),
            ranged("A", "C", 1),
            ranged("B", "F", 2),
            ranged("G", "K", 3),
            ranged("N", "O", 4),
        ];
        assert_eq!(
            table(files.clone()).symbol_ranges().unwrap(),
            [
                range("A", "F", 3, &["A-C", "B-F"]),
                range("G", "K", 3, &["G-K"]),
                range("M", "P", 9, &["M-P", "N-O"])
            ]
        );
        let mut unknown = files;
        unknown.push(file(None));
        assert_eq!(table(unknown).symbol_ranges(), None);
    }

    async fn count(lake: &Lake) -> String {
        let result = lake.sql("SELECT count(*) FROM ohlcv").await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&result.batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn written_files_are_invisible_until_committed_and_replace_what_they_name() {
        use bf_core::tables::OHLCV;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        lake.upsert(&OHLCV, vec![bars("AAA")]).await.unwrap();
        let before = lake.table_files(&OHLCV).await.unwrap().unwrap();
        assert_eq!(before.files[0].symbols, Some(("AAA".into(), "AAA".into())));
        let rows = bars("AAA").num_rows();

        let written = lake.write_files(&OHLCV, [bars("BBB")]).await.unwrap();
        assert_eq!(written.len(), 1);
        assert!(
            count(&lake).await.contains(&format!("| {rows} ")),
            "not visible yet"
        );

        // Replacing AAA's file with BBB's rows: one commit, version + 1.
        let replaced = before.files.iter().map(|f| f.url.clone()).collect();
        let commit = lake
            .commit_files(&OHLCV, before.version, &written, &replaced)
            .await
            .unwrap();
        assert_eq!((commit.files_added, commit.files_removed), (1, 1));
        assert_eq!(commit.version, before.version + 1);
        let after = lake.table_files(&OHLCV).await.unwrap().unwrap();
        assert_eq!(after.files.len(), 1);
        assert_eq!(after.files[0].symbols, Some(("BBB".into(), "BBB".into())));
        assert_eq!(after.files[0].rows, Some(bars("BBB").num_rows() as u64));

        // Planned on a version another commit has passed: nothing committed,
        // and the job's files can be deleted.
        let late = lake.write_files(&OHLCV, [bars("CCC")]).await.unwrap();
        let error = lake
            .commit_files(&OHLCV, before.version, &late, &HashSet::new())
            .await
            .unwrap_err();
        assert!(error.is_conflict(), "{error}");
        assert_eq!(lake.version(&OHLCV).await.unwrap(), Some(commit.version));
        assert_eq!(lake.delete_written(&OHLCV, &late).await, 1);
    }

    #[test]
    fn symbol_range_comes_from_the_add_statistics() {
        let stats = r#"{"numRecords":2,"minValues":{"symbol":"AAA","date":"2024-01-02"},"maxValues":{"symbol":"ZZZ"},"nullCount":{}}"#;
        assert_eq!(symbol_range(stats), Some(("AAA".into(), "ZZZ".into())));
        assert_eq!(symbol_range(r#"{"numRecords":2}"#), None);
    }
}

//! Replacing what a table holds for a scope (say, the signals of some
//! strategies and symbols), or upserting rows, one symbol range at a time, in
//! one commit: each range's new rows are compared with the stored ones as
//! they come, so memory holds a range's rows, never the whole table's.
//!
//! Per range, as an upsert decides: nothing new, changed or (in a scope) gone,
//! nothing is written; only new keys, their rows are written as new files;
//! otherwise the range's stored files that may hold a changed or vanished row
//! (by their symbol statistics) are rewritten without those rows, together
//! with the new and changed ones, in key order. A range ends only where no
//! stored file holds symbols on both sides, so a rewrite never drops another
//! range's rows; a range whose stored files hold more than
//! [`RANGE_STORED_ROWS`] is replaced in steps, so a day's few new rows spread
//! over every symbol never bring the whole table into memory. The files stay
//! invisible until [`RangeReplace::commit`] adds them, and removes the
//! rewritten ones, in one commit.

use std::collections::HashSet;
use std::ops::Bound;

use bf_core::tables::{TableSpec, col as column};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::kernels::cmp::lt_eq;
use datafusion::arrow::compute::{
    SortColumn, cast, concat_batches, filter_record_batch, lexsort_to_indices, not, partition,
    take_record_batch,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::logical_expr::{Expr, col, lit};
use deltalake::kernel::Add;
use deltalake::{DeltaTable, DeltaTableError};
use tokio::task::JoinHandle;

use crate::append::write_files_in_parallel;
use crate::change_log;
use crate::changes::ChangedSeries;
use crate::files::{DataFile, delete_uncommitted};
use crate::upsert::{UpsertMetrics, distinct_symbols, ensure_same_columns, rows};
use crate::{Lake, LakeError};

/// A replace under way; see the module documentation.
pub struct RangeReplace {
    lake: Lake,
    spec: &'static TableSpec,
    /// The version every range is compared with and the commit builds on.
    table: DeltaTable,
    stored: Vec<DataFile>,
    /// The stored rows the pushed ones replace; `None`: only those of the
    /// keys pushed (an upsert).
    scope: Option<Expr>,
    /// Symbols in scope, sorted; `None`: every symbol.
    symbols: Option<Vec<String>>,
    /// Rows pushed since the last range was replaced.
    pending: Vec<RecordBatch>,
    /// Where the next range starts: after the last cut, at the first symbol,
    /// or where [`RangeReplace::start_at`] put it.
    start: Bound<String>,
    /// At most one write in flight, overlapping the caller's next range.
    writing: Option<JoinHandle<Result<Vec<Add>, DeltaTableError>>>,
    added: Vec<Add>,
    replaced: HashSet<String>,
    /// Series with rows inserted, changed or deleted, for the change log.
    changed: ChangedSeries,
    metrics: UpsertMetrics,
    /// Stored rows a step of a range holds at most, about.
    step_rows: u64,
}

impl Lake {
    /// Starts replacing the rows of `spec` that match `scope` and belong to
    /// `symbols` (all when `None`) with the rows [`RangeReplace::push`]ed, in
    /// ascending symbol ranges. Creates the table if needed.
    pub async fn replace_by_range(
        &self,
        spec: &'static TableSpec,
        scope: Expr,
        symbols: Option<&[String]>,
    ) -> Result<RangeReplace, LakeError> {
        self.by_range(spec, Some(scope), symbols).await
    }

    /// Starts an upsert of the rows [`RangeReplace::push`]ed, in ascending
    /// symbol ranges: new keys inserted, changed rows replaced, every other
    /// stored row kept. Creates the table if needed.
    pub async fn upsert_by_range(
        &self,
        spec: &'static TableSpec,
    ) -> Result<RangeReplace, LakeError> {
        self.by_range(spec, None, None).await
    }

    async fn by_range(
        &self,
        spec: &'static TableSpec,
        scope: Option<Expr>,
        symbols: Option<&[String]>,
    ) -> Result<RangeReplace, LakeError> {
        let table = match self.load(spec).await? {
            Some(table) => table,
            None => self.create_table(spec).await?,
        };
        let stored_schema = table
            .snapshot()
            .map_err(|e| self.delta_error(spec, e))?
            .snapshot()
            .arrow_schema();
        ensure_same_columns(spec, &spec.schema(), stored_schema.as_ref())?;
        let stored = self.data_files(spec, &table)?;
        let symbols = symbols.map(|symbols| {
            let mut sorted = symbols.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            sorted
        });
        Ok(RangeReplace {
            lake: self.clone(),
            spec,
            table,
            stored,
            scope,
            symbols,
            pending: Vec::new(),
            start: Bound::Unbounded,
            writing: None,
            added: Vec::new(),
            replaced: HashSet::new(),
            changed: ChangedSeries::new(),
            metrics: UpsertMetrics::default(),
            step_rows: RANGE_STORED_ROWS,
        })
    }
}

impl RangeReplace {
    /// Starts the first range at `first` instead of the table's first symbol
    /// (rows stored before it are left alone), or earlier where a stored file
    /// holds symbols on both sides. Before any push.
    pub fn start_at(&mut self, first: &str) {
        let mut first = first.to_string();
        loop {
            let mut widened = None;
            for file in &self.stored {
                match &file.symbols {
                    Some((low, high)) if low < &first && &first <= high => {
                        widened = Some(widened.map_or(low, |w: &String| w.min(low)));
                    }
                    Some(_) => {}
                    // Such a file may hold any symbol.
                    None => return,
                }
            }
            match widened {
                Some(low) => first = low.clone(),
                None => break,
            }
        }
        self.start = Bound::Included(first);
    }

    /// The least cut at or after `last` that no stored file straddles, so a
    /// range ending there is replaced at once; `None` when a file without
    /// statistics may hold any symbol.
    pub fn cut_at_or_after(&self, last: &str) -> Option<String> {
        let mut cut = last.to_string();
        loop {
            let mut widened: Option<&String> = None;
            for file in &self.stored {
                match &file.symbols {
                    Some((low, high)) if low.as_str() <= cut.as_str() && &cut < high => {
                        widened = Some(widened.map_or(high, |w| w.max(high)));
                    }
                    Some(_) => {}
                    None => return None,
                }
            }
            match widened {
                Some(high) => cut = high.clone(),
                None => return Some(cut),
            }
        }
    }

    /// The whole new content of the scope (of an upsert: the rows to store)
    /// for the symbols after the previous push's `up_to` up to `up_to` (every
    /// later symbol when `None`). Rows of distinct keys; a later push holds
    /// only greater symbols.
    pub async fn push(
        &mut self,
        batches: Vec<RecordBatch>,
        up_to: Option<&str>,
    ) -> Result<(), LakeError> {
        for batch in &batches {
            ensure_same_columns(self.spec, &self.spec.schema(), batch.schema().as_ref())?;
        }
        self.pending
            .extend(batches.into_iter().filter(|b| b.num_rows() > 0));
        let Some(cut) = up_to else {
            return Ok(());
        };
        // Stored files seldom end where the caller cuts: the range is
        // replaced up to the last cut that no file straddles, and the rows
        // after it wait for the next push.
        match self.cut_at_or_before(cut) {
            Some(ready) if ready == cut => {
                let pending = std::mem::take(&mut self.pending);
                self.replace_in_steps(pending, Some(cut)).await
            }
            Some(ready) => {
                let step = take_symbols_up_to(&mut self.pending, &ready)
                    .map_err(|e| self.arrow_error(e))?;
                self.replace_in_steps(step, Some(&ready)).await
            }
            None => Ok(()),
        }
    }

    /// Replaces the rest of the scope with what is pending and commits
    /// everything on the version the replace started from: a conflict, with
    /// nothing committed and the written files deleted, when another writer
    /// committed since.
    pub async fn commit(mut self) -> Result<UpsertMetrics, LakeError> {
        let pending = std::mem::take(&mut self.pending);
        let replaced = self.replace_in_steps(pending, None).await;
        let written = self.finish_write().await;
        let paths: Vec<String> = self.added.iter().map(|add| add.path.clone()).collect();
        let committed = match (replaced, written) {
            (Ok(()), Ok(())) => {
                let added = std::mem::take(&mut self.added);
                let changed = self.spec.logs_changes.then_some(&self.changed);
                self.lake
                    .commit_replacing(self.spec, &self.table, added, &self.replaced, changed)
                    .await
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match committed {
            Ok(commit) => Ok(UpsertMetrics {
                files_added: commit.files_added,
                version: Some(commit.version),
                committed: commit.files_added + commit.files_removed > 0,
                ..self.metrics
            }),
            Err(error) => {
                delete_uncommitted(&self.table, paths).await;
                Err(error)
            }
        }
    }

    /// The greatest cut at or before `last`, after the range's start, that
    /// no stored file straddles; `None` when there is none, or when a file
    /// without statistics may hold any symbol.
    fn cut_at_or_before(&self, last: &str) -> Option<String> {
        let mut candidates = vec![last];
        for file in &self.stored {
            match &file.symbols {
                Some((_, high)) if high.as_str() < last => candidates.push(high),
                Some(_) => {}
                None => return None,
            }
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates
            .into_iter()
            .take_while(|&cut| from(&self.start, cut))
            .find(|&cut| !self.straddled(cut))
            .map(str::to_string)
    }

    /// Whether a stored file holds symbols on both sides of `cut` (a file
    /// without statistics may hold any).
    fn straddled(&self, cut: &str) -> bool {
        self.stored.iter().any(|file| {
            file.symbols
                .as_ref()
                .is_none_or(|(low, high)| low.as_str() <= cut && cut < high.as_str())
        })
    }

    /// [`RangeReplace::replace`] in steps of about `step_rows` stored rows
    /// each, cut where no stored file straddles.
    async fn replace_in_steps(
        &mut self,
        mut batches: Vec<RecordBatch>,
        up_to: Option<&str>,
    ) -> Result<(), LakeError> {
        for cut in self.cuts_before(up_to) {
            let step = take_symbols_up_to(&mut batches, &cut).map_err(|e| self.arrow_error(e))?;
            self.replace(step, Some(&cut)).await?;
        }
        self.replace(batches, up_to).await
    }

    /// Cuts from the range's start to `up_to` (the end when `None`), each
    /// after about `step_rows` stored rows, that no stored file straddles;
    /// none when a file without statistics may hold any symbol.
    fn cuts_before(&self, up_to: Option<&str>) -> Vec<String> {
        let mut in_range: Vec<(&str, u64)> = Vec::new();
        for file in &self.stored {
            match &file.symbols {
                Some((low, high)) => {
                    if from(&self.start, high) && up_to.is_none_or(|u| low.as_str() <= u) {
                        in_range.push((high.as_str(), file.rows.unwrap_or(0)));
                    }
                }
                None => return Vec::new(),
            }
        }
        in_range.sort_unstable();
        let mut cuts: Vec<String> = Vec::new();
        let mut rows = 0;
        for (high, file_rows) in in_range {
            // Files ending before the last cut belong to the step before it.
            if cuts.last().is_some_and(|cut| high <= cut.as_str()) {
                continue;
            }
            rows += file_rows;
            if rows < self.step_rows {
                continue;
            }
            match self.cut_at_or_after(high) {
                Some(cut) if up_to.is_none_or(|u| cut.as_str() < u) => {
                    cuts.push(cut);
                    rows = 0;
                }
                _ => break,
            }
        }
        cuts
    }

    fn arrow_error(&self, error: ArrowError) -> LakeError {
        LakeError::Scan {
            table: self.spec.name.to_string(),
            source: error.into(),
        }
    }

    /// Replaces the scope's rows from the range's start up to `up_to` with `batches`.
    async fn replace(
        &mut self,
        batches: Vec<RecordBatch>,
        up_to: Option<&str>,
    ) -> Result<(), LakeError> {
        let start = std::mem::replace(
            &mut self.start,
            up_to.map_or(Bound::Unbounded, |u| Bound::Excluded(u.to_string())),
        );
        let inside = |symbol: &str| from(&start, symbol) && up_to.is_none_or(|u| symbol <= u);
        let in_range: Vec<String> = self
            .stored
            .iter()
            .filter(|file| match &file.symbols {
                Some((low, high)) => from(&start, high) && up_to.is_none_or(|u| low.as_str() <= u),
                None => true,
            })
            .map(|file| file.url.clone())
            .collect();
        let incoming = rows(&batches);
        if in_range.is_empty() {
            self.metrics.inserted += incoming;
            self.log_changes(&batches);
            return self.write(batches).await;
        }
        let bounds = [
            match &start {
                Bound::Included(first) => Some(col(column::SYMBOL).gt_eq(lit(first.as_str()))),
                Bound::Excluded(cut) => Some(col(column::SYMBOL).gt(lit(cut.as_str()))),
                Bound::Unbounded => None,
            },
            up_to.map(|u| col(column::SYMBOL).lt_eq(lit(u))),
        ]
        .into_iter()
        .flatten()
        .reduce(Expr::and);
        let (lake, spec, table) = (&self.lake, self.spec, &self.table);
        let stale = match &self.scope {
            Some(scope) => {
                let wanted: Option<Vec<Expr>> = self.symbols.as_ref().map(|symbols| {
                    symbols
                        .iter()
                        .filter(|s| inside(s))
                        .map(|s| lit(s.as_str()))
                        .collect()
                });
                if wanted.as_ref().is_some_and(Vec::is_empty) && incoming == 0 {
                    return Ok(());
                }
                let scope = [
                    Some(scope.clone()),
                    bounds.clone(),
                    wanted.map(|symbols| col(column::SYMBOL).in_list(symbols, false)),
                ]
                .into_iter()
                .flatten()
                .reduce(Expr::and)
                .expect("a scope");
                lake.file_keys_without(spec, table, &in_range, scope, &batches)
                    .await?
            }
            None if incoming == 0 => return Ok(()),
            None => Vec::new(),
        };
        let (inserts, updates) = if incoming == 0 {
            (Vec::new(), Vec::new())
        } else {
            lake.changed_rows(spec, table, &in_range, batches).await?
        };
        let (inserted, updated, deleted) = (rows(&inserts), rows(&updates), rows(&stale));
        self.metrics.inserted += inserted;
        self.metrics.updated += updated;
        self.metrics.deleted += deleted;
        self.metrics.unchanged += incoming - inserted - updated;
        if updated + deleted == 0 {
            self.log_changes(&inserts);
            return self.write(inserts).await;
        }
        // Only files that may hold a changed or vanished row are rewritten;
        // the range's other files stay as they are.
        let dirty: Vec<RecordBatch> = updates.iter().chain(&stale).cloned().collect();
        let dirty_symbols = distinct_symbols(&dirty);
        let in_range: HashSet<String> = in_range.into_iter().collect();
        let touched: Vec<String> = self
            .stored
            .iter()
            .filter(|file| in_range.contains(&file.url) && file.may_hold_any(&dirty_symbols))
            .map(|file| file.url.clone())
            .collect();
        let mut rewritten = lake
            .file_rows_without(spec, table, &touched, &dirty)
            .await?;
        self.log_changes(&dirty);
        self.log_changes(&inserts);
        rewritten.extend(inserts);
        rewritten.extend(updates);
        self.replaced.extend(touched);
        let rewritten = in_key_order(self.spec, rewritten).map_err(|e| self.arrow_error(e))?;
        self.write(rewritten).await
    }

    fn log_changes(&mut self, batches: &[RecordBatch]) {
        if self.spec.logs_changes {
            for batch in batches {
                change_log::add_rows(&mut self.changed, batch);
            }
        }
    }

    /// Starts writing `batches` once the previous write is done.
    async fn write(&mut self, batches: Vec<RecordBatch>) -> Result<(), LakeError> {
        if rows(&batches) == 0 {
            return Ok(());
        }
        self.finish_write().await?;
        let (spec, table) = (self.spec, self.table.clone());
        self.writing = Some(tokio::spawn(async move {
            write_files_in_parallel(spec, &table, batches).await
        }));
        Ok(())
    }

    async fn finish_write(&mut self) -> Result<(), LakeError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        let added = writing
            .await
            .map_err(|e| DeltaTableError::Generic(format!("writer task: {e}")))
            .and_then(|written| written)
            .map_err(|e| self.lake.delta_error(self.spec, e))?;
        self.added.extend(added);
        Ok(())
    }
}

/// Stored rows a replace holds at once: a range whose files hold more is
/// replaced in steps. About 100 MB of `ohlcv`, 300 MB of `features`.
const RANGE_STORED_ROWS: u64 = 1_000_000;

/// Removes the rows of symbols up to `cut` from `batches` and returns them.
fn take_symbols_up_to(
    batches: &mut Vec<RecordBatch>,
    cut: &str,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let cut = StringArray::new_scalar(cut);
    let (mut taken, mut kept) = (Vec::new(), Vec::new());
    for batch in batches.drain(..) {
        let symbols = cast(
            batch
                .column_by_name(column::SYMBOL)
                .expect("every table has a symbol"),
            &DataType::Utf8,
        )?;
        let up_to = lt_eq(&symbols, &cut)?;
        taken.push(filter_record_batch(&batch, &up_to)?);
        kept.push(filter_record_batch(&batch, &not(&up_to)?)?);
    }
    taken.retain(|b| b.num_rows() > 0);
    kept.retain(|b| b.num_rows() > 0);
    *batches = kept;
    Ok(taken)
}

/// `batches` sorted by the table's key, one slice per (symbol, interval)
/// series: rewritten files then hold each series whole and in date order, as
/// first writes do, so readers take them as stored and statistics stay narrow.
fn in_key_order(
    spec: &TableSpec,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let all = concat_batches(&first.schema(), &batches)?;
    drop(batches);
    let key = |name: &str| -> ArrayRef { all.column_by_name(name).expect("key column").clone() };
    let order: Vec<SortColumn> = spec
        .key
        .iter()
        .map(|name| SortColumn {
            values: key(name),
            options: None,
        })
        .collect();
    let sorted = take_record_batch(&all, &lexsort_to_indices(&order, None)?)?;
    drop(all);
    let series: Vec<ArrayRef> = spec
        .key
        .iter()
        .filter(|name| [column::SYMBOL, column::INTERVAL].contains(name))
        .map(|name| sorted.column_by_name(name).expect("key column").clone())
        .collect();
    Ok(partition(&series)?
        .ranges()
        .into_iter()
        .map(|range| sorted.slice(range.start, range.len()))
        .collect())
}

/// Whether `symbol` lies at or after a range's `start`.
fn from(start: &Bound<String>, symbol: &str) -> bool {
    match start {
        Bound::Included(first) => first.as_str() <= symbol,
        Bound::Excluded(cut) => cut.as_str() < symbol,
        Bound::Unbounded => true,
    }
}

#[cfg(test)]
mod tests {
    use bf_core::Symbol;
    use bf_core::tables::OHLCV;
    use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
    use bf_sources::{ActionsBuilder, BarsBuilder};
    use chrono::NaiveDate;
    use datafusion::arrow::array::{AsArray, Float64Array};
    use datafusion::arrow::datatypes::{Date32Type, Float64Type};
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use url::Url;

    use super::*;
    use crate::lake::local_path;

    /// The bars of `symbol` from 2021-01-01 to `end`.
    fn bars(symbol: &str, end: NaiveDate) -> RecordBatch {
        let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
        Synthetic::new(42).generate(
            &Symbol::parse(symbol).unwrap(),
            NaiveDate::from_ymd_opt(2021, 1, 1).unwrap(),
            end,
            &mut bars,
            &mut ActionsBuilder::new(SOURCE_NAME, 1),
        );
        bars.finish()
    }

    /// `bars` with every adjusted close 1 % lower, as a dividend re-adjusts.
    fn readjusted(bars: &RecordBatch) -> RecordBatch {
        let index = bars.schema().index_of(column::ADJ_CLOSE).unwrap();
        let lower: Float64Array = bars
            .column(index)
            .as_primitive::<Float64Type>()
            .unary(|v| v * 0.99);
        let mut columns = bars.columns().to_vec();
        columns[index] = std::sync::Arc::new(lower);
        RecordBatch::try_new(bars.schema(), columns).unwrap()
    }

    /// (symbol, date) of a stored file's rows, in the file's order.
    fn keys_in(file: &DataFile) -> Vec<(String, i32)> {
        let path = local_path(&Url::parse(&file.url).unwrap()).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|batch| {
                let batch = batch.unwrap();
                let symbols = cast(
                    batch.column_by_name(column::SYMBOL).unwrap(),
                    &DataType::Utf8,
                );
                let symbols = symbols.unwrap();
                let dates = batch.column_by_name(column::DATE).unwrap();
                symbols
                    .as_string::<i32>()
                    .iter()
                    .zip(dates.as_primitive::<Date32Type>().iter())
                    .map(|(symbol, date)| (symbol.unwrap().to_string(), date.unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_push_cut_inside_a_stored_file_replaces_up_to_the_file_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let (day, next_day) = (
            NaiveDate::from_ymd_opt(2021, 3, 30).unwrap(),
            NaiveDate::from_ymd_opt(2021, 3, 31).unwrap(),
        );
        // Two files: AAA-BBB and CCC-DDD.
        for pair in [["AAA", "BBB"], ["CCC", "DDD"]] {
            let stored = pair.iter().map(|&symbol| bars(symbol, day)).collect();
            lake.upsert(&OHLCV, stored).await.unwrap();
        }
        let n = bars("AAA", day).num_rows();
        let next_bar = |symbol: &str| bars(symbol, next_day).slice(n, 1);

        let mut upsert = lake.upsert_by_range(&OHLCV).await.unwrap();
        upsert
            .push(
                vec![next_bar("AAA"), next_bar("BBB"), next_bar("CCC")],
                Some("CCC"),
            )
            .await
            .unwrap();
        // CCC's file also holds DDD, whose rows are still to come: only the
        // rows up to BBB were replaced; CCC's wait.
        assert_eq!(rows(&upsert.pending), 1, "only CCC's bar pending");
        assert_eq!(upsert.metrics.inserted, 2);
        upsert
            .push(vec![next_bar("DDD")], Some("DDD"))
            .await
            .unwrap();
        assert!(upsert.pending.is_empty());
        let metrics = upsert.commit().await.unwrap();

        assert_eq!((metrics.inserted, metrics.unchanged), (4, 0));
        let mut stored: Vec<(String, i32)> = lake
            .table_files(&OHLCV)
            .await
            .unwrap()
            .unwrap()
            .files
            .iter()
            .flat_map(keys_in)
            .collect();
        stored.sort_unstable();
        let mut expected = Vec::new();
        for symbol in ["AAA", "BBB", "CCC", "DDD"] {
            let bars = bars(symbol, next_day);
            let dates = bars.column_by_name(column::DATE).unwrap();
            for &date in dates.as_primitive::<Date32Type>().values() {
                expected.push((symbol.to_string(), date));
            }
        }
        assert_eq!(stored, expected, "every bar once");
    }

    #[tokio::test]
    async fn a_wide_range_is_replaced_in_steps_each_rewritten_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let (day, next_day) = (
            NaiveDate::from_ymd_opt(2021, 3, 30).unwrap(),
            NaiveDate::from_ymd_opt(2021, 3, 31).unwrap(),
        );
        let symbols = ["AAA", "BBB", "CCC", "DDD"];
        for symbol in symbols {
            lake.upsert(&OHLCV, vec![bars(symbol, day)]).await.unwrap();
        }
        let n = bars("AAA", day).num_rows();
        // The next day brings one bar per symbol, and re-adjusts the whole
        // history of AAA and CCC.
        let next: Vec<RecordBatch> = symbols
            .iter()
            .map(|&symbol| {
                let bars = bars(symbol, next_day);
                match symbol {
                    "AAA" | "CCC" => readjusted(&bars),
                    _ => bars.slice(n, 1),
                }
            })
            .collect();

        let mut upsert = lake.upsert_by_range(&OHLCV).await.unwrap();
        upsert.step_rows = n as u64;
        upsert.push(next, None).await.unwrap();
        let metrics = upsert.commit().await.unwrap();

        assert_eq!(
            (metrics.inserted, metrics.updated, metrics.unchanged),
            (4, 2 * n, 0)
        );
        let files = lake.table_files(&OHLCV).await.unwrap().unwrap().files;
        let mut stored = Vec::new();
        for file in &files {
            let (low, high) = file.symbols.clone().unwrap();
            // In one step, the new bars of BBB and DDD would have joined the
            // rewrite of AAA and CCC in one file.
            assert_eq!(low, high, "a file per step: {file:?}");
            let keys = keys_in(file);
            assert!(keys.is_sorted(), "rows in key order: {keys:?}");
            stored.extend(keys);
        }
        stored.sort_unstable();
        let expected: Vec<(String, i32)> = symbols
            .iter()
            .flat_map(|&symbol| {
                let bars = bars(symbol, next_day);
                let dates = bars.column_by_name(column::DATE).unwrap();
                let dates: Vec<i32> = dates.as_primitive::<Date32Type>().values().to_vec();
                dates
                    .into_iter()
                    .map(move |date| (symbol.to_string(), date))
            })
            .collect();
        assert_eq!(stored, expected, "every bar once");
    }
}

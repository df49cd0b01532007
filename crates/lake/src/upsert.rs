//! Idempotent upserts on a table's key.
//!
//! A plain Delta MERGE joins and rewrites every file its source touches, so
//! re-importing unchanged history would rewrite the whole table, and delta-rs's
//! MERGE evaluates its clauses row by row on one core. Instead the incoming rows
//! are first compared with the stored rows of the same symbols and dates (one
//! hash join); then
//! - nothing new or changed: no commit at all (a re-import adds no files);
//! - only new keys: one append commit;
//! - some keys changed: the stored files that may hold a changed row (by
//!   their symbol statistics) are rewritten without those rows, plus the new
//!   and changed ones, by bf's parallel writer, in one commit
//!   (`Lake::upsert_by_range`, replace.rs).
//!
//! Replacing a whole scope of stored rows (say, the signals of these symbols
//! and strategies), deleting what the new rows no longer hold, is
//! `Lake::replace_by_range` (replace.rs), built on the same comparison.
//!
//! Every path is a single atomic Delta commit (a new table is first created
//! empty, in its own commit), so a crash leaves the previous version readable
//! and complete.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bf_core::retry::{RetryPolicy, Verdict};
use bf_core::tables::{Storage, TableSpec, col as column};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{cast as cast_array, filter_record_batch, max, min, partition};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Schema};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, JoinType, Operator, binary_expr, cast, col, lit};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use deltalake::DeltaTable;
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use deltalake::parquet::schema::types::ColumnPath;

use crate::changes::register_files;
use crate::{Lake, LakeError};

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpsertMetrics {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Stored rows removed because a replacing upsert no longer produced them.
    pub deleted: usize,
    /// Times another writer committed first and the upsert started over.
    pub conflicts_retried: usize,
    pub files_added: usize,
    /// The table version after the upsert (unchanged when nothing was committed).
    pub version: Option<u64>,
    pub committed: bool,
}

const TARGET_PREFIX: &str = "__target_";

/// Concurrent commits an upsert outlasts before it gives up; writers that
/// collided wait different times before trying again.
const CONFLICT_RETRIES: RetryPolicy = RetryPolicy {
    max_retries: 20,
    first_backoff: Duration::from_millis(50),
    max_wait: Duration::from_secs(2),
};
const IS_NEW: &str = "__is_new";

/// Runs `attempt` again while another writer commits first, counting the
/// conflicts it outlasted.
async fn retry_on_conflict<Fut>(
    spec: &TableSpec,
    conflicts: &mut usize,
    attempt: impl FnMut() -> Fut,
) -> Result<UpsertMetrics, LakeError>
where
    Fut: Future<Output = Result<UpsertMetrics, LakeError>>,
{
    CONFLICT_RETRIES
        .run(
            attempt,
            |err: &LakeError| {
                if err.is_conflict() {
                    Verdict::Retry { after: None }
                } else {
                    Verdict::Final
                }
            },
            |_, wait| {
                *conflicts += 1;
                tracing::info!(
                    table = spec.name,
                    conflicts = *conflicts,
                    ?wait,
                    "concurrent commit; upserting again"
                );
            },
        )
        .await
}

impl Lake {
    /// Inserts rows whose key is new, replaces rows whose values changed, and leaves
    /// identical rows alone, in at most one commit. Rows within `batches` must have
    /// distinct keys (sources de-duplicate).
    pub async fn upsert(
        &self,
        spec: &'static TableSpec,
        batches: Vec<RecordBatch>,
    ) -> Result<UpsertMetrics, LakeError> {
        // Retries the whole upsert when another writer committed in between:
        // the comparison with the stored rows is redone on the new version, so
        // no key is stored twice and no change is lost.
        let mut conflicts = 0;
        let metrics = retry_on_conflict(spec, &mut conflicts, || {
            self.upsert_once(spec, batches.clone())
        })
        .await?;
        Ok(UpsertMetrics {
            conflicts_retried: conflicts,
            ..metrics
        })
    }

    /// [`Lake::upsert`] of rows handed in groups of whole symbols, ascending,
    /// each with its greatest symbol: each group is compared with the stored
    /// files of its symbol range only, so memory holds a group or two, not
    /// the whole table; one commit. `groups` is called again for each start
    /// over (another writer committed first).
    pub async fn upsert_in_groups<G>(
        &self,
        spec: &'static TableSpec,
        groups: impl Fn() -> G,
    ) -> Result<UpsertMetrics, LakeError>
    where
        G: Iterator<Item = (Vec<RecordBatch>, String)>,
    {
        let mut conflicts = 0;
        let metrics = retry_on_conflict(spec, &mut conflicts, || async {
            let mut groups = groups().peekable();
            if groups.peek().is_none() {
                // Nothing to store creates no table.
                return Ok(UpsertMetrics {
                    version: self.version(spec).await?,
                    ..UpsertMetrics::default()
                });
            }
            let mut upsert = self.upsert_by_range(spec).await?;
            for (batches, last) in groups {
                upsert.push(batches, Some(&last)).await?;
            }
            upsert.commit().await
        })
        .await?;
        Ok(UpsertMetrics {
            conflicts_retried: conflicts,
            ..metrics
        })
    }

    /// One attempt of [`Lake::upsert`]: the rows' symbol range, widened to
    /// whole stored files, compared and, where rows changed, rewritten.
    async fn upsert_once(
        &self,
        spec: &'static TableSpec,
        batches: Vec<RecordBatch>,
    ) -> Result<UpsertMetrics, LakeError> {
        let schema = spec.schema();
        for batch in &batches {
            ensure_same_columns(spec, &schema, batch.schema().as_ref())?;
        }
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        let symbols = distinct_symbols(&batches);
        let (Some(first), Some(last)) = (symbols.first(), symbols.last()) else {
            return Ok(UpsertMetrics {
                version: self.version(spec).await?,
                ..UpsertMetrics::default()
            });
        };
        let mut upsert = self.upsert_by_range(spec).await?;
        upsert.start_at(first);
        let cut = upsert.cut_at_or_after(last);
        upsert.push(batches, cut.as_deref()).await?;
        upsert.commit().await
    }

    /// Splits incoming rows into (new keys, changed rows), comparing value columns
    /// with the rows of the stored `files` (URLs) that have the same symbols
    /// and dates.
    pub(crate) async fn changed_rows(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        files: &[String],
        batches: Vec<RecordBatch>,
    ) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>), LakeError> {
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let schema = spec.schema();
        let ctx = files_session(spec, table, files)?;

        let compared: Vec<&str> = spec
            .key
            .iter()
            .copied()
            .chain(spec.value_columns())
            .collect();
        let target = stored_columns(
            &ctx,
            spec,
            key_range_filter(&batches),
            &compared,
            TARGET_PREFIX,
        )
        .await
        .map_err(scan_error)?;

        let target_key: Vec<String> = spec
            .key
            .iter()
            .map(|k| format!("{TARGET_PREFIX}{k}"))
            .collect();
        let target_key: Vec<&str> = target_key.iter().map(String::as_str).collect();
        let is_new = Expr::Column(Column::from_name(target_key[0])).is_null();
        let changed = spec
            .value_columns()
            .into_iter()
            .fold(is_new.clone(), |any, name| {
                any.or(binary_expr(
                    col(quoted(name)),
                    Operator::IsDistinctFrom,
                    Expr::Column(Column::from_name(format!("{TARGET_PREFIX}{name}"))),
                ))
            });
        let mut output: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|f| col(quoted(f.name())))
            .collect();
        output.push(is_new.alias(IS_NEW));

        let changed_batches = ctx
            .read_batches(batches)
            .map_err(scan_error)?
            .join(target, JoinType::Left, spec.key, &target_key, None)
            .map_err(scan_error)?
            .filter(changed)
            .map_err(scan_error)?
            .select(output)
            .map_err(scan_error)?
            .collect()
            .await
            .map_err(scan_error)?;

        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        for batch in changed_batches {
            let is_new = batch.column(batch.num_columns() - 1).as_boolean().clone();
            let data = RecordBatch::try_new(
                schema.clone(),
                batch.columns()[..batch.num_columns() - 1].to_vec(),
            )
            .expect("projection matches the table schema");
            let is_old = datafusion::arrow::compute::not(&is_new).expect("boolean negation");
            let new_rows = filter_record_batch(&data, &is_new).expect("mask matches batch");
            let old_rows = filter_record_batch(&data, &is_old).expect("mask matches batch");
            if new_rows.num_rows() > 0 {
                inserts.push(new_rows);
            }
            if old_rows.num_rows() > 0 {
                updates.push(old_rows);
            }
        }
        Ok((inserts, updates))
    }

    /// Every row of the stored `files` (URLs), in the table's schema, but
    /// those whose key is among `without`'s.
    pub(crate) async fn file_rows_without(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        files: &[String],
        without: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let schema = spec.schema();
        let all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let kept = self
            .stored_without(spec, table, files, lit(true), &all, without)
            .await?;
        kept.into_iter()
            .map(|batch| RecordBatch::try_new(schema.clone(), batch.columns().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| LakeError::Scan {
                table: spec.name.to_string(),
                source: e.into(),
            })
    }

    /// The keys (the key columns alone) of the rows of the stored `files`
    /// (URLs) matching `filter`, but those among `without`'s.
    pub(crate) async fn file_keys_without(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        files: &[String],
        filter: Expr,
        without: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, LakeError> {
        self.stored_without(spec, table, files, filter, spec.key, without)
            .await
    }

    /// The `names` columns of the rows of the stored `files` matching
    /// `filter`, but those whose key is among `without`'s.
    async fn stored_without(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        files: &[String],
        filter: Expr,
        names: &[&str],
        without: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let ctx = files_session(spec, table, files)?;
        let stored = stored_columns(&ctx, spec, filter, names, "")
            .await
            .map_err(scan_error)?;
        let without: Vec<&RecordBatch> = without.iter().filter(|b| b.num_rows() > 0).collect();
        if without.is_empty() {
            stored.collect().await.map_err(scan_error)
        } else {
            self.anti_join_keys(spec, &ctx, stored, &without).await
        }
    }

    /// `stored` rows whose key is not among `without`'s.
    async fn anti_join_keys(
        &self,
        spec: &TableSpec,
        ctx: &SessionContext,
        stored: DataFrame,
        without: &[&RecordBatch],
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let schema = spec.schema();
        // Key columns only, under one schema: `without` mixes incoming and
        // stored rows, whose schemas differ in nullability.
        let removed_key: Vec<String> = spec
            .key
            .iter()
            .map(|k| format!("{TARGET_PREFIX}{k}"))
            .collect();
        let key_schema = Arc::new(Schema::new(
            spec.key
                .iter()
                .zip(&removed_key)
                .map(|(k, alias)| {
                    let field = schema.field_with_name(k).expect("key column");
                    Field::new(alias, field.data_type().clone(), true)
                })
                .collect::<Vec<_>>(),
        ));
        let keys = without
            .iter()
            .map(|batch| {
                let columns = spec
                    .key
                    .iter()
                    .map(|k| batch.column_by_name(k).expect("key column").clone())
                    .collect();
                RecordBatch::try_new(key_schema.clone(), columns)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| scan_error(e.into()))?;
        let removed = ctx.read_batches(keys).map_err(scan_error)?;
        let removed_key: Vec<&str> = removed_key.iter().map(String::as_str).collect();
        stored
            .join(removed, JoinType::LeftAnti, spec.key, &removed_key, None)
            .map_err(scan_error)?
            .collect()
            .await
            .map_err(scan_error)
    }
}

/// A session reading the stored `files` (URLs) as the table, filters
/// running inside the Parquet reader on their columns first, so only the
/// matching rows' other columns are decoded.
fn files_session(
    spec: &TableSpec,
    table: &DeltaTable,
    files: &[String],
) -> Result<SessionContext, LakeError> {
    let scan_error = |source| LakeError::Scan {
        table: spec.name.to_string(),
        source,
    };
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true),
    );
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| scan_error(e.into()))?;
    register_files(&ctx, spec, table, spec.name, files).map_err(scan_error)?;
    Ok(ctx)
}

/// The table's rows matching `filter`, `names` columns cast to the table's
/// types (a scan may read text as views), each renamed with `prefix`.
async fn stored_columns(
    ctx: &SessionContext,
    spec: &TableSpec,
    filter: Expr,
    names: &[&str],
    prefix: &str,
) -> datafusion::error::Result<DataFrame> {
    let schema = spec.schema();
    ctx.table(spec.name).await?.filter(filter)?.select(
        names
            .iter()
            .map(|name| {
                let data_type = schema
                    .field_with_name(name)
                    .expect("spec column")
                    .data_type()
                    .clone();
                cast(col(quoted(name)), data_type).alias(format!("{prefix}{name}"))
            })
            .collect::<Vec<_>>(),
    )
}

/// Restricts the stored side of the comparison to the incoming rows' symbols,
/// each within the dates it has rows for: a day's bars of every symbol and
/// the whole history of a few re-adjusted ones read that day and those
/// histories, not every history. Symbols sharing a span of dates share a
/// condition; with more than [`MAX_DATE_SPANS`] spans, one span covers all.
/// The range of symbols lets file and row group statistics skip the rest.
fn key_range_filter(batches: &[RecordBatch]) -> Expr {
    let spans = date_spans(batches);
    let (Some((first, _)), Some((last, _))) = (spans.first_key_value(), spans.last_key_value())
    else {
        return lit(false);
    };
    let in_range = col(column::SYMBOL).between(lit(first.as_str()), lit(last.as_str()));
    let mut by_span: BTreeMap<(i32, i32), Vec<&str>> = BTreeMap::new();
    for (symbol, &span) in &spans {
        by_span.entry(span).or_default().push(symbol);
    }
    if by_span.len() > MAX_DATE_SPANS {
        let low = by_span.keys().map(|&(low, _)| low).min().expect("a span");
        let high = by_span.keys().map(|&(_, high)| high).max().expect("a span");
        let symbols = spans.keys().map(String::as_str).collect();
        by_span = BTreeMap::from([((low, high), symbols)]);
    }
    let date = |days: i32| Expr::Literal(ScalarValue::Date32(Some(days)), None);
    let rows = by_span
        .into_iter()
        .map(|((low, high), symbols)| {
            col(column::SYMBOL)
                .in_list(symbols.into_iter().map(lit).collect(), false)
                .and(col(column::DATE).between(date(low), date(high)))
        })
        .reduce(Expr::or)
        .expect("a span");
    in_range.and(rows)
}

/// Distinct date spans the comparison's filter lists at most.
const MAX_DATE_SPANS: usize = 8;

/// Each symbol of `batches` with its first and last date.
fn date_spans(batches: &[RecordBatch]) -> BTreeMap<String, (i32, i32)> {
    let mut spans: BTreeMap<String, (i32, i32)> = BTreeMap::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let symbols = batch
            .column_by_name(column::SYMBOL)
            .expect("every table has a symbol");
        let symbols = cast_array(symbols, &DataType::Utf8).expect("text cast to text");
        let dates = batch
            .column_by_name(column::DATE)
            .expect("every table has a date")
            .as_primitive::<Date32Type>();
        // Rows come in runs of one symbol: one lookup per run.
        let runs = partition(std::slice::from_ref(&symbols)).expect("one column");
        for run in runs.ranges() {
            let symbol = symbols.as_string::<i32>().value(run.start);
            let run_dates = dates.slice(run.start, run.len());
            let (Some(low), Some(high)) = (min(&run_dates), max(&run_dates)) else {
                continue;
            };
            spans
                .entry(symbol.to_string())
                .and_modify(|span| *span = (span.0.min(low), span.1.max(high)))
                .or_insert((low, high));
        }
    }
    spans
}

/// The distinct symbols of `batches`, sorted.
pub(crate) fn distinct_symbols(batches: &[RecordBatch]) -> Vec<String> {
    let mut symbols = std::collections::BTreeSet::new();
    for batch in batches {
        let column = batch
            .column_by_name(column::SYMBOL)
            .expect("every table has a symbol");
        let text = cast_array(column, &DataType::Utf8).expect("text cast to text");
        for symbol in text.as_string::<i32>().iter().flatten() {
            if !symbols.contains(symbol) {
                symbols.insert(symbol.to_string());
            }
        }
    }
    symbols.into_iter().collect()
}

/// `col()` parses dots as qualifiers; lake column names never contain one, but
/// quoting keeps keywords such as `interval` plain names.
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

pub(crate) fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

pub(crate) fn file_paths(table: &DeltaTable) -> HashSet<String> {
    table
        .snapshot()
        .map(|s| s.log_data().iter().map(|f| f.path().to_string()).collect())
        .unwrap_or_default()
}

/// Parquet settings per `Storage`. Dictionaries pay off only for the repetitive
/// text columns; on prices, timestamps and volumes they are built and then
/// abandoned, which costs time. zstd level 1 compresses price columns better
/// than snappy at similar speed. Tables rebuilt in bulk (`Storage::Fast`) keep
/// floats plain and uncompressed, texts LZ4: on 2.5 M rows byte-stream-split +
/// LZ4 floats made `features` a quarter smaller (407 against 543 MB) but cost
/// the build's writer and every reader of its columns their encoding and
/// decompression (README, "Parquet settings"). Their unique texts (the JSON
/// of `signals.inputs`) are left uncompressed too: LZ4 shrank them only
/// from 66 to 40 MB per 2.5 M features rows, for a tenth of the signals
/// stage's CPU samples.
///
/// Version 2 data pages compress the encoded values where they lie; version 1
/// pages first copy them behind the levels, 5 % of a features build's CPU.
/// Version 2 would also delta-encode integers and texts without a dictionary:
/// on `features` that saved 2 % of the bytes and no time, so they stay plain.
pub(crate) fn writer_properties(spec: &TableSpec) -> WriterProperties {
    let builder = WriterProperties::builder().set_writer_version(WriterVersion::PARQUET_2_0);
    let builder = match spec.storage {
        Storage::Compact => builder.set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        )),
        Storage::Fast => builder
            .set_compression(Compression::LZ4_RAW)
            .set_max_row_group_row_count(Some(FAST_ROW_GROUP_ROWS)),
    };
    spec.schema()
        .fields()
        .iter()
        .fold(builder, |builder, field| {
            let name = field.name().as_str();
            let path = ColumnPath::from(name);
            let unique_text = spec.unique_text.contains(&name);
            let mut builder = if field.data_type() == &DataType::Utf8 && !unique_text {
                builder
            } else {
                builder.set_column_dictionary_enabled(path.clone(), false)
            };
            // Minimums and maximums of unique texts prune nothing and cost a
            // comparison of every value with both.
            if unique_text {
                builder =
                    builder.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
            }
            if spec.storage == Storage::Fast
                && (field.data_type() == &DataType::Float64 || unique_text)
            {
                builder = builder.set_column_compression(path.clone(), Compression::UNCOMPRESSED);
            }
            // For a column with a dictionary, the encoding it falls back to.
            builder.set_column_encoding(path, Encoding::PLAIN)
        })
        .build()
}

/// Row groups of `Storage::Fast` tables: a writer buffers one row group, so this
/// bounds its memory, and it keeps per-symbol statistics fine-grained. (Chosen
/// when delta-rs's writer assembled each row group in a buffer regrown from
/// empty, where 64 Ki rows cost more system CPU; with bf's writer 32 Ki and
/// 64 Ki rows built `features` as fast as 16 Ki.)
const FAST_ROW_GROUP_ROWS: usize = 16 * 1024;

/// Tables keep the columns bf wrote them with; names and types must match.
pub(crate) fn ensure_same_columns(
    spec: &TableSpec,
    expected: &Schema,
    found: &Schema,
) -> Result<(), LakeError> {
    let normalize = |t: &DataType| match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        other => other.clone(),
    };
    let same = expected.fields().len() == found.fields().len()
        && expected.fields().iter().zip(found.fields()).all(|(a, b)| {
            a.name() == b.name() && normalize(a.data_type()) == normalize(b.data_type())
        });
    if same {
        return Ok(());
    }
    let describe = |schema: &Schema| {
        schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), normalize(f.data_type())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(LakeError::SchemaMismatch {
        table: spec.name.to_string(),
        found: describe(found),
        expected: describe(expected),
    })
}

#[cfg(test)]
mod tests {
    use bf_core::tables::{FEATURES, SIGNALS};
    use datafusion::arrow::array::{ArrayRef, Int64Array};
    use datafusion::arrow::compute::cast;
    use deltalake::parquet::basic::PageType;
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// `rows` rows of `spec`'s columns, each column `0..rows` cast to its type.
    fn numbered_rows(spec: &TableSpec, rows: i64) -> RecordBatch {
        let numbers: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let columns = spec
            .schema()
            .fields()
            .iter()
            .map(|f| cast(&numbers, f.data_type()).unwrap())
            .collect();
        RecordBatch::try_new(spec.schema(), columns).unwrap()
    }

    #[tokio::test]
    async fn tables_are_written_in_version_2_pages_with_their_encodings() {
        for spec in [&FEATURES, &SIGNALS] {
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
            lake.append(spec, vec![numbered_rows(spec, 1000)], None)
                .await
                .unwrap();
            let table_dir = dir.path().join(spec.name);
            let file = std::fs::read_dir(&table_dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .find(|path| path.extension().is_some_and(|e| e == "parquet"))
                .unwrap();
            let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
            let row_group = reader.get_row_group(0).unwrap();
            for (index, field) in spec.schema().fields().iter().enumerate() {
                let name = field.name();
                let mut pages = row_group.get_column_page_reader(index).unwrap();
                while let Some(page) = pages.get_next_page().unwrap() {
                    assert!(
                        matches!(
                            page.page_type(),
                            PageType::DATA_PAGE_V2 | PageType::DICTIONARY_PAGE
                        ),
                        "{}.{name}: {:?}",
                        spec.name,
                        page.page_type()
                    );
                }
                let encodings: Vec<Encoding> = row_group
                    .metadata()
                    .column(index)
                    .encodings()
                    .filter(|&e| e != Encoding::RLE)
                    .collect();
                let expected = match field.data_type() {
                    DataType::Utf8 if !spec.unique_text.contains(&name.as_str()) => {
                        vec![Encoding::PLAIN, Encoding::RLE_DICTIONARY]
                    }
                    _ => vec![Encoding::PLAIN],
                };
                assert_eq!(encodings, expected, "{}.{name}", spec.name);
                let compression = match field.data_type() {
                    DataType::Float64 => Compression::UNCOMPRESSED,
                    _ if spec.unique_text.contains(&name.as_str()) => Compression::UNCOMPRESSED,
                    _ => Compression::LZ4_RAW,
                };
                assert_eq!(
                    row_group.metadata().column(index).compression(),
                    compression,
                    "{}.{name}",
                    spec.name
                );
            }
        }
    }

    /// Rows of `symbols`, each on the days `days` (as `Date32`), in the
    /// `features` schema.
    fn rows_on_days(symbols: &[&str], days: std::ops::RangeInclusive<i32>) -> RecordBatch {
        let batch = numbered_rows(&FEATURES, (symbols.len() * days.clone().count()) as i64);
        let (mut names, mut dates) = (Vec::new(), Vec::new());
        for symbol in symbols {
            for day in days.clone() {
                names.push(*symbol);
                dates.push(day);
            }
        }
        let mut columns = batch.columns().to_vec();
        columns[batch.schema().index_of(column::SYMBOL).unwrap()] =
            Arc::new(datafusion::arrow::array::StringArray::from(names));
        columns[batch.schema().index_of(column::DATE).unwrap()] =
            Arc::new(datafusion::arrow::array::Date32Array::from(dates));
        RecordBatch::try_new(batch.schema(), columns).unwrap()
    }

    /// How many of `stored` rows the comparison with `incoming` reads.
    async fn compared(stored: RecordBatch, incoming: &[RecordBatch]) -> usize {
        let ctx = SessionContext::new();
        let read = ctx.read_batch(stored).unwrap();
        let rows = read.filter(key_range_filter(incoming)).unwrap();
        rows.count().await.unwrap()
    }

    #[tokio::test]
    async fn a_comparison_reads_each_symbol_only_on_its_own_dates() {
        let stored = rows_on_days(&["A", "B", "C", "D"], 1..=10);
        // A day's rows of B and C, and the whole re-adjusted history of A.
        let day = [
            rows_on_days(&["A"], 1..=10),
            rows_on_days(&["B", "C"], 10..=10),
        ];
        assert_eq!(compared(stored.clone(), &day).await, 10 + 1 + 1);

        // Nine symbols with nine spans of dates: one span covers them all.
        let symbols = ["A", "B", "C", "D", "E", "F", "G", "H", "I"];
        let stored = rows_on_days(&symbols, 1..=10);
        let staggered: Vec<RecordBatch> = symbols
            .iter()
            .zip(1..)
            .map(|(symbol, day)| rows_on_days(&[symbol], day..=day))
            .collect();
        assert_eq!(compared(stored, &staggered).await, 9 * 9);

        assert_eq!(compared(rows_on_days(&["A"], 1..=2), &[]).await, 0);
    }
}

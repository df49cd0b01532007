//! Which series each commit changed, written into the commit itself (its
//! `commitInfo`) for tables that keep such a log (`TableSpec::logs_changes`):
//! finding what changed since a version then reads those few log entries
//! instead of comparing the table's rows with the older version's.

use std::collections::BTreeMap;

use bf_core::dates::{date_from_days, days_since_epoch};
use bf_core::tables::col;
use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use deltalake::DeltaTable;
use futures::{StreamExt, stream};
use serde_json::{Map, Value};

use crate::changes::ChangedSeries;

/// The `commitInfo` field: `{interval: {"first changed date": [symbols]}}`.
pub(crate) const CHANGED_SERIES: &str = "bf.changedSeries";

/// Operations that never change a row, so they log nothing.
const ROW_PRESERVING: &[&str] = &["CREATE TABLE", "OPTIMIZE", "VACUUM START", "VACUUM END"];

/// Adds the series of `batch` (rows inserted, changed or deleted), each with
/// its first date, to `changed`. Rows usually come sorted by series, so a
/// run of rows of one series costs one map lookup.
pub(crate) fn add_rows(changed: &mut ChangedSeries, batch: &RecordBatch) {
    let text = |name: &str| {
        let column = batch.column_by_name(name).expect("a series column");
        cast(column, &DataType::Utf8).expect("text cast to text")
    };
    let (symbols, intervals) = (text(col::SYMBOL), text(col::INTERVAL));
    let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
    let dates = batch
        .column_by_name(col::DATE)
        .expect("a date column")
        .as_primitive::<Date32Type>();
    let mut row = 0;
    while row < batch.num_rows() {
        let (symbol, interval) = (symbols.value(row), intervals.value(row));
        let mut first = dates.value(row);
        let mut end = row + 1;
        while end < batch.num_rows()
            && symbols.value(end) == symbol
            && intervals.value(end) == interval
        {
            first = first.min(dates.value(end));
            end += 1;
        }
        changed
            .entry((symbol.to_string(), interval.to_string()))
            .and_modify(|date| *date = (*date).min(first))
            .or_insert(first);
        row = end;
    }
}

/// `changed` as the `commitInfo` field, symbols grouped by interval and
/// first changed date: a day's fetch of 5,000 symbols logs one date.
pub(crate) fn to_commit_info(changed: &ChangedSeries) -> (String, Value) {
    let mut grouped: BTreeMap<&str, BTreeMap<i32, Vec<&str>>> = BTreeMap::new();
    for ((symbol, interval), &first) in changed {
        grouped
            .entry(interval)
            .or_default()
            .entry(first)
            .or_default()
            .push(symbol);
    }
    let intervals = grouped
        .into_iter()
        .map(|(interval, dates)| {
            let dates = dates
                .into_iter()
                .map(|(first, mut symbols)| {
                    symbols.sort_unstable();
                    (date_from_days(first).to_string(), Value::from(symbols))
                })
                .collect::<Map<_, _>>();
            (interval.to_string(), Value::Object(dates))
        })
        .collect::<Map<_, _>>();
    (CHANGED_SERIES.to_string(), Value::Object(intervals))
}

/// The series changed by the commits after `since` up to `table`'s version,
/// from their log entries; `None` when one of them logged nothing (written by
/// another tool or an older bf) or its entry is gone (log cleanup).
pub(crate) async fn changed_since(table: &DeltaTable, since: u64) -> Option<ChangedSeries> {
    let now = table.version()?;
    let log = table.log_store();
    // Several entries in flight: on object storage each read is a round trip,
    // and a lake watched intraday commits every few minutes.
    let mut entries = stream::iter(since + 1..=now)
        .map(|version| log.read_commit_entry(version))
        .buffered(LOG_READS_AT_ONCE);
    let mut changed = ChangedSeries::new();
    while let Some(entry) = entries.next().await {
        if !add_logged(&mut changed, &entry.ok()??)? {
            return None;
        }
    }
    Some(changed)
}

/// Log entries read at once by [`changed_since`].
const LOG_READS_AT_ONCE: usize = 16;

/// Adds what one log entry says it changed; `Some(false)` when it does not
/// say, `None` when it cannot be read.
fn add_logged(changed: &mut ChangedSeries, entry: &[u8]) -> Option<bool> {
    for line in entry.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let action: Value = serde_json::from_slice(line).ok()?;
        let Some(info) = action.get("commitInfo") else {
            continue;
        };
        let Some(logged) = info.get(CHANGED_SERIES) else {
            let operation = info.get("operation").and_then(Value::as_str);
            return Some(operation.is_some_and(|op| ROW_PRESERVING.contains(&op)));
        };
        for (interval, dates) in logged.as_object()? {
            for (first, symbols) in dates.as_object()? {
                let first = days_since_epoch(first.parse::<NaiveDate>().ok()?);
                for symbol in symbols.as_array()? {
                    changed
                        .entry((symbol.as_str()?.to_string(), interval.clone()))
                        .and_modify(|date| *date = (*date).min(first))
                        .or_insert(first);
                }
            }
        }
        return Some(true);
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::bars;

    fn entry(commit_info: Value) -> Vec<u8> {
        let add = serde_json::json!({"add": {"path": "a.parquet"}});
        format!(
            "{}\n{}\n",
            serde_json::json!({ "commitInfo": commit_info }),
            add
        )
        .into_bytes()
    }

    #[test]
    fn logged_series_round_trip_keeping_the_earliest_date() {
        let mut first = ChangedSeries::new();
        first.insert(("AAA".into(), "1d".into()), 20_000);
        first.insert(("AAA".into(), "1wk".into()), 19_000);
        let (key, value) = to_commit_info(&first);
        let mut info = Map::new();
        info.insert("operation".into(), Value::String("WRITE".into()));
        info.insert(key, value);

        let mut changed = ChangedSeries::new();
        changed.insert(("AAA".into(), "1d".into()), 20_100);
        changed.insert(("BBB".into(), "1d".into()), 20_100);
        assert_eq!(
            add_logged(&mut changed, &entry(Value::Object(info))),
            Some(true)
        );
        assert_eq!(changed[&("AAA".into(), "1d".into())], 20_000);
        assert_eq!(changed[&("AAA".into(), "1wk".into())], 19_000);
        assert_eq!(changed[&("BBB".into(), "1d".into())], 20_100);
    }

    #[test]
    fn a_write_without_the_log_is_unknown_but_a_compaction_changed_nothing() {
        let mut changed = ChangedSeries::new();
        let write = serde_json::json!({"operation": "WRITE"});
        assert_eq!(add_logged(&mut changed, &entry(write)), Some(false));
        let optimize = serde_json::json!({"operation": "OPTIMIZE"});
        assert_eq!(add_logged(&mut changed, &entry(optimize)), Some(true));
        assert!(changed.is_empty());
        assert_eq!(add_logged(&mut changed, b"not json\n"), None);
    }

    #[tokio::test]
    async fn bf_commits_log_what_they_change_and_files_committed_for_others_do_not() {
        use crate::Lake;
        use bf_core::tables::OHLCV;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let first = lake.upsert(&OHLCV, vec![bars("AAA")]).await.unwrap();
        let first = first.version.unwrap();
        lake.append(&OHLCV, vec![bars("BBB")], Some(first))
            .await
            .unwrap();
        let table = lake.load(&OHLCV).await.unwrap().unwrap();
        let logged = changed_since(&table, first).await.unwrap();
        let start = days_since_epoch(NaiveDate::from_ymd_opt(2022, 1, 3).unwrap());
        assert_eq!(
            logged,
            ChangedSeries::from([(("BBB".into(), "1d".into()), start)])
        );

        let stored = lake.table_files(&OHLCV).await.unwrap().unwrap();
        let written = lake.write_files(&OHLCV, [bars("CCC")]).await.unwrap();
        lake.commit_files(&OHLCV, stored.version, &written, &Default::default())
            .await
            .unwrap();
        let table = lake.load(&OHLCV).await.unwrap().unwrap();
        assert_eq!(changed_since(&table, first).await, None);
    }

    #[test]
    fn rows_count_once_per_series_from_their_first_date() {
        use datafusion::arrow::array::{Date32Array, StringArray};
        use datafusion::arrow::datatypes::{Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new(col::SYMBOL, DataType::Utf8, false),
            Field::new(col::INTERVAL, DataType::Utf8, false),
            Field::new(col::DATE, DataType::Date32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["AAA", "AAA", "AAA", "BBB", "AAA"])),
                Arc::new(StringArray::from(vec!["1d", "1d", "1wk", "1d", "1d"])),
                Arc::new(Date32Array::from(vec![10, 9, 12, 5, 3])),
            ],
        )
        .unwrap();
        let mut changed = ChangedSeries::new();
        add_rows(&mut changed, &batch);
        assert_eq!(changed.len(), 3);
        assert_eq!(changed[&("AAA".into(), "1d".into())], 3);
        assert_eq!(changed[&("AAA".into(), "1wk".into())], 12);
        assert_eq!(changed[&("BBB".into(), "1d".into())], 5);
    }
}

//! Lake rows as bulk request bodies (NDJSON through serde_json): an `index`
//! action per changed row with `_id` = the table key, and a `delete` action
//! per removed key. Bodies are cut at a byte budget; each keeps its items'
//! byte ranges, so items the server rejects can be sent again alone.

use std::ops::Range;
use std::sync::Arc;

use bf_core::dates::date_from_days;
use bf_core::tables::{TableSpec, col};
use chrono::{DateTime, SecondsFormat};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer as _};
use serde_json::value::RawValue;

use super::mapping::{LAKE_VERSION, SYNC_RUN, TIMESTAMP};
use crate::SinkError;

/// One bulk request body and the byte range of each item (action line and,
/// for an index action, document line) in it.
#[derive(Debug, Default)]
pub struct Chunk {
    pub body: Vec<u8>,
    pub items: Vec<Range<usize>>,
}

impl Chunk {
    /// A body holding only the given items of this one.
    pub fn subset(&self, items: &[usize]) -> Chunk {
        let mut chunk = Chunk::default();
        for &item in items {
            let range = self.items[item].clone();
            let start = chunk.body.len();
            chunk.body.extend_from_slice(&self.body[range]);
            chunk.items.push(start..chunk.body.len());
        }
        chunk
    }
}

#[derive(Serialize)]
struct Target<'a> {
    _index: &'a str,
    _id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Action<'a> {
    Index(Target<'a>),
    Delete(Target<'a>),
}

/// Encodes one table's rows for one index.
pub struct TableEncoder<'a> {
    pub spec: &'a TableSpec,
    pub index: &'a str,
    /// The lake version the rows are from, stored in every document.
    pub lake_version: u64,
    /// This sync's id, stored in every document.
    pub sync_run: &'a str,
    pub max_bytes: usize,
}

impl TableEncoder<'_> {
    /// An `index` action and document per row of `batch` (the table's schema).
    pub fn upserts(&self, batch: &RecordBatch) -> Result<Vec<Chunk>, SinkError> {
        let columns = self.columns(batch)?;
        let keys: Vec<&Column> = self.key_columns(&columns);
        let time_column = columns
            .iter()
            .find(|c| c.name == col::TS)
            .or_else(|| columns.iter().find(|c| c.name == col::DATE))
            .expect("every mirrored table has a date");
        let mut chunks = Chunks::new(self.max_bytes);
        let mut id = String::new();
        for row in 0..batch.num_rows() {
            write_id(&keys, row, &mut id);
            let body = chunks.start_item();
            write_action(body, &Action::Index(self.target(&id)));
            let mut document = serde_json::Serializer::new(&mut *body);
            let mut map = document
                .serialize_map(None)
                .map_err(|e| self.error(row, e))?;
            map.serialize_entry(TIMESTAMP, &time_column.text(row))
                .map_err(|e| self.error(row, e))?;
            map.serialize_entry(LAKE_VERSION, &self.lake_version)
                .map_err(|e| self.error(row, e))?;
            map.serialize_entry(SYNC_RUN, self.sync_run)
                .map_err(|e| self.error(row, e))?;
            for column in &columns {
                column
                    .write(&mut map, row)
                    .map_err(|e| self.error(row, e))?;
            }
            SerializeMap::end(map).map_err(|e| self.error(row, e))?;
            body.push(b'\n');
            chunks.end_item();
        }
        Ok(chunks.finish())
    }

    /// A `delete` action per row of `keys` (the table's key columns).
    pub fn deletes(&self, keys: &RecordBatch) -> Result<Vec<Chunk>, SinkError> {
        let columns = self.columns(keys)?;
        let key_columns = self.key_columns(&columns);
        let mut chunks = Chunks::new(self.max_bytes);
        let mut id = String::new();
        for row in 0..keys.num_rows() {
            write_id(&key_columns, row, &mut id);
            write_action(chunks.start_item(), &Action::Delete(self.target(&id)));
            chunks.end_item();
        }
        Ok(chunks.finish())
    }

    fn target<'a>(&'a self, id: &'a str) -> Target<'a> {
        Target {
            _index: self.index,
            _id: id,
        }
    }

    fn columns(&self, batch: &RecordBatch) -> Result<Vec<Column>, SinkError> {
        let schema = batch.schema();
        schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, array)| {
                // Scans may hand text over as views; one representation here.
                let array = match array.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => {
                        cast(array, &DataType::Utf8).map_err(|e| self.error(0, e))?
                    }
                    _ => Arc::clone(array),
                };
                Ok(Column {
                    name: field.name().clone(),
                    array,
                })
            })
            .collect()
    }

    fn key_columns<'c>(&self, columns: &'c [Column]) -> Vec<&'c Column> {
        self.spec
            .key
            .iter()
            .map(|key| {
                columns
                    .iter()
                    .find(|c| c.name == *key)
                    .unwrap_or_else(|| panic!("{} rows without key column {key}", self.spec.name))
            })
            .collect()
    }

    fn error(&self, row: usize, error: impl std::fmt::Display) -> SinkError {
        SinkError::Encode {
            table: self.spec.name.to_string(),
            row,
            message: error.to_string(),
        }
    }
}

/// `AAPL|1d|2024-01-02|sma_cross`: the key columns' values joined.
fn write_id(keys: &[&Column], row: usize, id: &mut String) {
    id.clear();
    for (i, column) in keys.iter().enumerate() {
        if i > 0 {
            id.push('|');
        }
        id.push_str(&column.text(row));
    }
}

fn write_action(body: &mut Vec<u8>, action: &Action) {
    serde_json::to_writer(&mut *body, action).expect("an action serializes");
    body.push(b'\n');
}

struct Column {
    name: String,
    array: ArrayRef,
}

impl Column {
    /// The value as text: a key part, or the document's timestamp.
    fn text(&self, row: usize) -> String {
        match self.array.data_type() {
            DataType::Utf8 => self.array.as_string::<i32>().value(row).to_string(),
            DataType::Date32 => {
                date_from_days(self.array.as_primitive::<Date32Type>().value(row)).to_string()
            }
            DataType::Timestamp(_, _) => timestamp_text(
                self.array
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(row),
            ),
            other => unreachable!("{} ({other}) is not a key or date column", self.name),
        }
    }

    fn write<M: SerializeMap>(&self, map: &mut M, row: usize) -> Result<(), M::Error> {
        if self.array.is_null(row) {
            return map.serialize_entry(&self.name, &None::<f64>);
        }
        match self.array.data_type() {
            DataType::Utf8 if self.name == col::INPUTS => {
                let text = self.array.as_string::<i32>().value(row);
                match serde_json::from_str::<&RawValue>(text) {
                    Ok(object) if text.trim_start().starts_with('{') => {
                        map.serialize_entry(&self.name, object)
                    }
                    _ => Err(serde::ser::Error::custom(format!(
                        "inputs {text:?} is not a JSON object"
                    ))),
                }
            }
            DataType::Utf8 => {
                map.serialize_entry(&self.name, self.array.as_string::<i32>().value(row))
            }
            // serde_json writes NaN and ±inf as null: never a number Elasticsearch refuses.
            DataType::Float64 => map.serialize_entry(
                &self.name,
                &self.array.as_primitive::<Float64Type>().value(row),
            ),
            DataType::Int64 => map.serialize_entry(
                &self.name,
                &self.array.as_primitive::<Int64Type>().value(row),
            ),
            DataType::Date32 | DataType::Timestamp(_, _) => {
                map.serialize_entry(&self.name, &self.text(row))
            }
            other => Err(serde::ser::Error::custom(format!(
                "column {} has type {other}, which bf does not index",
                self.name
            ))),
        }
    }
}

fn timestamp_text(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

/// Items packed into bodies of at most `max_bytes` (an item larger than that
/// gets a body of its own).
struct Chunks {
    max_bytes: usize,
    done: Vec<Chunk>,
    current: Chunk,
    item_start: usize,
}

impl Chunks {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            done: Vec::new(),
            current: Chunk::default(),
            item_start: 0,
        }
    }

    fn start_item(&mut self) -> &mut Vec<u8> {
        self.item_start = self.current.body.len();
        &mut self.current.body
    }

    fn end_item(&mut self) {
        let end = self.current.body.len();
        if end > self.max_bytes && self.item_start > 0 {
            // This item overflows: it opens the next body.
            let item = self.current.body.split_off(self.item_start);
            let full = std::mem::take(&mut self.current);
            self.done.push(full);
            self.current.body = item;
            self.current.items.push(0..self.current.body.len());
        } else {
            self.current.items.push(self.item_start..end);
        }
    }

    fn finish(mut self) -> Vec<Chunk> {
        if !self.current.items.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use bf_core::tables::{OHLCV, SIGNALS};
    use datafusion::arrow::array::{
        Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };

    use super::*;

    fn lines(chunks: &[Chunk]) -> Vec<serde_json::Value> {
        chunks
            .iter()
            .flat_map(|c| c.body.split(|b| *b == b'\n').filter(|l| !l.is_empty()))
            .map(|line| serde_json::from_slice(line).unwrap())
            .collect()
    }

    fn signals(strength: f64, inputs: &str) -> RecordBatch {
        let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        RecordBatch::try_new(
            SIGNALS.schema(),
            vec![
                text("AAPL"),
                text("1d"),
                Arc::new(Date32Array::from(vec![19724])),
                text("sma_cross"),
                text("BUY"),
                Arc::new(Float64Array::from(vec![strength])),
                Arc::new(Float64Array::from(vec![185.5])),
                text(inputs),
                text("run-1"),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_700_000_000_000_000])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap()
    }

    fn encoder(spec: &TableSpec) -> TableEncoder<'_> {
        TableEncoder {
            spec,
            index: "bf-x",
            lake_version: 7,
            sync_run: "run-1",
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_signal_is_an_index_action_keyed_by_the_table_key_and_a_document() {
        let batch = signals(0.5, r#"{"sma_20": 1.5, "prev_sma_20": null}"#);
        let lines = lines(&encoder(&SIGNALS).upserts(&batch).unwrap());
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            serde_json::json!({"index": {"_index": "bf-x", "_id": "AAPL|1d|2024-01-02|sma_cross"}})
        );
        let document = &lines[1];
        assert_eq!(document["@timestamp"], "2024-01-02");
        assert_eq!(document["date"], "2024-01-02");
        assert_eq!(document["lake_version"], 7);
        assert_eq!(document["inputs"]["sma_20"], 1.5, "inputs are an object");
        assert_eq!(document["generated_at"], "2023-11-14T22:13:20Z");
        assert_eq!(
            document.as_object().unwrap().len(),
            SIGNALS.schema().fields().len() + 3
        );
    }

    #[test]
    fn non_finite_numbers_are_sent_as_null_and_bad_inputs_are_refused() {
        let batch = signals(f64::NAN, "{}");
        let lines = lines(&encoder(&SIGNALS).upserts(&batch).unwrap());
        assert!(lines[1]["strength"].is_null());
        let err = encoder(&SIGNALS)
            .upserts(&signals(1.0, "[1, 2]"))
            .unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }

    #[test]
    fn bodies_are_cut_at_the_byte_budget_and_keep_each_items_range() {
        let rows = 100;
        let text = |v: &str| Arc::new(StringArray::from(vec![v; rows])) as ArrayRef;
        let number = || Arc::new(Float64Array::from(vec![1.0; rows])) as ArrayRef;
        let batch = RecordBatch::try_new(
            OHLCV.schema(),
            vec![
                text("AAA"),
                text("1d"),
                Arc::new(Date32Array::from((0..rows as i32).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        (0..rows as i64)
                            .map(|d| d * 86_400_000_000)
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                number(),
                number(),
                number(),
                number(),
                number(),
                Arc::new(Int64Array::from(vec![10; rows])),
                text("synthetic"),
                Arc::new(TimestampMicrosecondArray::from(vec![0; rows]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let encoder = TableEncoder {
            max_bytes: 4096,
            ..encoder(&OHLCV)
        };
        let chunks = encoder.upserts(&batch).unwrap();
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.body.len() <= 4096));
        assert_eq!(chunks.iter().map(|c| c.items.len()).sum::<usize>(), rows);
        let again = chunks[0].subset(&[1]);
        assert_eq!(again.body, chunks[0].body[chunks[0].items[1].clone()]);
        assert_eq!(
            lines(&[again])[0]["index"]["_id"],
            "AAA|1d|1970-01-02|1970-01-02T00:00:00Z"
        );

        let keys = batch.project(&[0, 1, 2, 3]).unwrap();
        let deletes = lines(&encoder.deletes(&keys).unwrap());
        assert_eq!(deletes.len(), rows);
        assert_eq!(
            deletes[0]["delete"]["_id"],
            "AAA|1d|1970-01-01|1970-01-01T00:00:00Z"
        );
    }
}

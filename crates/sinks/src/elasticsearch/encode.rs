//! Lake rows as bulk request bodies (NDJSON): an `index` action per changed
//! row with `_id` = the table key, and a `delete` action per removed key.
//! Bodies are cut at a byte budget; each keeps its items' byte ranges, so
//! items the server rejects can be sent again alone. Documents are the rows
//! as `crate::rows` writes them, with `@timestamp`, `lake_version` and
//! `sync_run` first.

use std::ops::Range;

use bf_core::tables::TableSpec;
use datafusion::arrow::array::RecordBatch;

use super::mapping::{LAKE_VERSION, SYNC_RUN, TIMESTAMP};
use crate::SinkError;
use crate::rows::{Rows, utf8_columns, write_str};

/// One bulk request body and the byte range of each item (action line and,
/// for an index action, document line) in it.
#[derive(Debug, Default, Clone)]
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
        let arrays = utf8_columns(batch).map_err(|e| self.error(0, e))?;
        let schema = batch.schema();
        let mut rows = Rows::new(self.spec, &schema, &arrays).map_err(|e| self.error(0, e))?;
        let action = self.action_prefix("index");
        let mut fixed_fields =
            format!(",\"{LAKE_VERSION}\":{},\"{SYNC_RUN}\":", self.lake_version).into_bytes();
        write_str(&mut fixed_fields, self.sync_run);
        let mut chunks = Chunks::new(self.max_bytes);
        let mut id = String::new();
        for row in 0..batch.num_rows() {
            rows.id(row, &mut id);
            let body = chunks.start_item();
            write_action(body, &action, &id);
            body.extend_from_slice(b"{\"");
            body.extend_from_slice(TIMESTAMP.as_bytes());
            body.extend_from_slice(b"\":");
            write_str(
                body,
                rows.time(row).expect("every mirrored table has a date"),
            );
            body.extend_from_slice(&fixed_fields);
            rows.write_fields(body, row)
                .map_err(|e| self.error(row, e))?;
            body.extend_from_slice(b"}\n");
            chunks.end_item();
        }
        Ok(chunks.finish())
    }

    /// A `delete` action per row of `keys` (the table's key columns).
    pub fn deletes(&self, keys: &RecordBatch) -> Result<Vec<Chunk>, SinkError> {
        let arrays = utf8_columns(keys).map_err(|e| self.error(0, e))?;
        let schema = keys.schema();
        let mut rows = Rows::new(self.spec, &schema, &arrays).map_err(|e| self.error(0, e))?;
        let action = self.action_prefix("delete");
        let mut chunks = Chunks::new(self.max_bytes);
        let mut id = String::new();
        for row in 0..keys.num_rows() {
            rows.id(row, &mut id);
            write_action(chunks.start_item(), &action, &id);
            chunks.end_item();
        }
        Ok(chunks.finish())
    }

    /// `{"index":{"_index":"bf-signals","_id":`, to which the id is appended.
    fn action_prefix(&self, action: &str) -> Vec<u8> {
        let mut prefix = format!("{{\"{action}\":{{\"_index\":").into_bytes();
        write_str(&mut prefix, self.index);
        prefix.extend_from_slice(b",\"_id\":");
        prefix
    }

    fn error(&self, row: usize, error: impl std::fmt::Display) -> SinkError {
        SinkError::Encode {
            table: self.spec.name.to_string(),
            row,
            message: error.to_string(),
        }
    }
}

fn write_action(body: &mut Vec<u8>, prefix: &[u8], id: &str) {
    body.extend_from_slice(prefix);
    write_str(body, id);
    body.extend_from_slice(b"}}\n");
}

/// Items packed into bodies of at most `max_bytes` (an item larger than that
/// gets a body of its own).
pub(crate) struct Chunks {
    max_bytes: usize,
    done: Vec<Chunk>,
    current: Chunk,
    item_start: usize,
}

impl Chunks {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            done: Vec::new(),
            current: Chunk::default(),
            item_start: 0,
        }
    }

    pub(crate) fn start_item(&mut self) -> &mut Vec<u8> {
        self.item_start = self.current.body.len();
        &mut self.current.body
    }

    pub(crate) fn end_item(&mut self) {
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

    pub(crate) fn finish(mut self) -> Vec<Chunk> {
        if !self.current.items.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bf_core::tables::{FEATURES, OHLCV, SIGNALS};
    use datafusion::arrow::array::{
        ArrayRef, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::DataType;

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

    /// Every column type of the features table: numbers round-trip exactly,
    /// NaN and nulls are null, timestamps keep their microseconds.
    #[test]
    fn a_features_row_keeps_every_value() {
        let schema = FEATURES.schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                match field.data_type() {
                    DataType::Utf8 => Arc::new(StringArray::from(vec!["A\"\n", "B"])),
                    DataType::Date32 => Arc::new(Date32Array::from(vec![19724, 19725])),
                    DataType::Float64 if field.is_nullable() => {
                        Arc::new(Float64Array::from(vec![Some(0.1 + 0.2), None]))
                    }
                    DataType::Float64 => Arc::new(Float64Array::from(vec![1e-300, f64::NAN])),
                    DataType::Int64 => Arc::new(Int64Array::from(vec![i64::MAX, -1])),
                    DataType::Timestamp(_, _) => Arc::new(
                        TimestampMicrosecondArray::from(vec![1_700_000_000_123_456, 0])
                            .with_timezone("UTC"),
                    ),
                    other => panic!("{other}"),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let lines = lines(&encoder(&FEATURES).upserts(&batch).unwrap());
        assert_eq!(lines[0]["index"]["_id"], "A\"\n|A\"\n|2024-01-02");
        let (first, second) = (&lines[1], &lines[3]);
        assert_eq!(first.as_object().unwrap().len(), schema.fields().len() + 3);
        for field in schema.fields() {
            let name = field.name().as_str();
            match field.data_type() {
                DataType::Float64 if field.is_nullable() => {
                    assert_eq!(first[name].as_f64(), Some(0.1 + 0.2), "{name}");
                    assert!(second[name].is_null(), "{name}");
                }
                DataType::Float64 => {
                    assert_eq!(first[name].as_f64(), Some(1e-300), "{name}");
                    assert!(second[name].is_null(), "{name}: NaN is null");
                }
                DataType::Int64 => assert_eq!(first[name].as_i64(), Some(i64::MAX), "{name}"),
                DataType::Timestamp(_, _) => {
                    assert_eq!(first[name], "2023-11-14T22:13:20.123456Z", "{name}");
                    assert_eq!(second[name], "1970-01-01T00:00:00Z", "{name}");
                }
                _ => {}
            }
        }
        assert_eq!(second["@timestamp"], "2024-01-03");
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

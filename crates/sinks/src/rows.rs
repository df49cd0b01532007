//! Lake rows as JSON objects, for every sink: a table key as one id string
//! (`AAPL|1d|2024-01-02|sma_cross`) and the columns as `,"name":value`
//! fields written straight into a buffer. A sink encodes millions of rows, so
//! each column is resolved to its typed array once per batch, field names
//! are escaped once, strings are escaped and numbers formatted by
//! serde_json's formatter, and dates and timestamps are formatted once per
//! run of equal values.

use std::sync::Arc;

use bf_core::dates::date_from_days;
use bf_core::tables::{TableSpec, col};
use chrono::{DateTime, SecondsFormat};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, SchemaRef, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use serde_json::ser::{CompactFormatter, Formatter as _};
use serde_json::value::RawValue;

/// A batch's columns with text as plain UTF-8 (scans may hand text over as
/// views): what [`Rows`] reads.
pub(crate) fn utf8_columns(batch: &RecordBatch) -> Result<Vec<ArrayRef>, ArrowError> {
    batch
        .columns()
        .iter()
        .map(|array| match array.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => cast(array, &DataType::Utf8),
            _ => Ok(Arc::clone(array)),
        })
        .collect()
}

/// The rows of one batch of a table (or of its key columns).
pub(crate) struct Rows<'b> {
    columns: Vec<Column<'b>>,
    keys: Vec<usize>,
    time: Option<usize>,
}

impl<'b> Rows<'b> {
    /// `arrays` are the batch's [`utf8_columns`]; an error names a column
    /// of a type no sink writes.
    pub fn new(
        spec: &TableSpec,
        schema: &'b SchemaRef,
        arrays: &'b [ArrayRef],
    ) -> Result<Self, String> {
        let columns = schema
            .fields()
            .iter()
            .zip(arrays)
            .map(|(field, array)| Column::new(field.name(), array))
            .collect::<Result<Vec<_>, _>>()?;
        let position = |name: &str| columns.iter().position(|c| c.name == name);
        let keys = spec
            .key
            .iter()
            .map(|key| {
                position(key).ok_or_else(|| format!("{} rows without key column {key}", spec.name))
            })
            .collect::<Result<_, _>>()?;
        let time = position(col::TS).or_else(|| position(col::DATE));
        Ok(Self {
            columns,
            keys,
            time,
        })
    }

    /// The row's table key, its columns' values joined with `|`.
    pub fn id(&mut self, row: usize, id: &mut String) {
        id.clear();
        for (i, &key) in self.keys.iter().enumerate() {
            if i > 0 {
                id.push('|');
            }
            id.push_str(self.columns[key].text(row));
        }
    }

    /// The row's bar time (its timestamp, or its date), if the table has one.
    pub fn time(&mut self, row: usize) -> Option<&str> {
        Some(self.columns[self.time?].text(row))
    }

    /// `,"name":value` for every column; an error says why a value cannot
    /// be written (a signal's inputs that are not a JSON object).
    pub fn write_fields(&mut self, body: &mut Vec<u8>, row: usize) -> Result<(), String> {
        for column in &mut self.columns {
            column.write(body, row)?;
        }
        Ok(())
    }
}

/// `text` as a JSON string, escaped by serde_json.
pub(crate) fn write_str(body: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(body, text).expect("writing to memory succeeds");
}

/// A column's array, its type resolved once per batch.
#[derive(Clone, Copy)]
enum Values<'a> {
    Text(&'a StringArray),
    /// A signal's inputs: a JSON object by feature name, sent as an object.
    Inputs(&'a StringArray),
    Float(&'a Float64Array),
    Int(&'a Int64Array),
    Date(&'a Date32Array),
    Timestamp(&'a TimestampMicrosecondArray),
}

struct Column<'a> {
    name: &'a str,
    /// `,"name":`, escaped once.
    key: Vec<u8>,
    values: Values<'a>,
    /// The last date or timestamp formatted and its text: equal values come
    /// in runs (one ingest time per fetch, a row's date as key and field).
    last_formatted: Option<(i64, String)>,
}

impl<'a> Column<'a> {
    fn new(name: &'a str, array: &'a ArrayRef) -> Result<Self, String> {
        let values = match array.data_type() {
            DataType::Utf8 if name == col::INPUTS => Values::Inputs(array.as_string()),
            DataType::Utf8 => Values::Text(array.as_string()),
            DataType::Float64 => Values::Float(array.as_primitive::<Float64Type>()),
            DataType::Int64 => Values::Int(array.as_primitive::<Int64Type>()),
            DataType::Date32 => Values::Date(array.as_primitive::<Date32Type>()),
            DataType::Timestamp(_, _) => {
                Values::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
            }
            other => {
                return Err(format!(
                    "column {name} has type {other}, which bf does not index"
                ));
            }
        };
        let mut key = b",".to_vec();
        write_str(&mut key, name);
        key.push(b':');
        Ok(Column {
            name,
            key,
            values,
            last_formatted: None,
        })
    }

    /// The value as text: a key part, or a date.
    fn text(&mut self, row: usize) -> &str {
        match self.values {
            Values::Text(array) | Values::Inputs(array) => array.value(row),
            Values::Date(array) => self.formatted(i64::from(array.value(row)), date_text),
            Values::Timestamp(array) => self.formatted(array.value(row), timestamp_text),
            Values::Float(_) | Values::Int(_) => {
                unreachable!("{} is not a key or date column", self.name)
            }
        }
    }

    fn formatted(&mut self, value: i64, format: fn(i64) -> String) -> &str {
        if self
            .last_formatted
            .as_ref()
            .is_none_or(|(last, _)| *last != value)
        {
            self.last_formatted = Some((value, format(value)));
        }
        &self.last_formatted.as_ref().expect("just set").1
    }

    /// `,"name":value` into `body`.
    fn write(&mut self, body: &mut Vec<u8>, row: usize) -> Result<(), String> {
        body.extend_from_slice(&self.key);
        let values = self.values;
        let is_null = match values {
            Values::Text(a) | Values::Inputs(a) => a.is_null(row),
            Values::Float(a) => a.is_null(row) || !a.value(row).is_finite(),
            Values::Int(a) => a.is_null(row),
            Values::Date(a) => a.is_null(row),
            Values::Timestamp(a) => a.is_null(row),
        };
        // NaN and ±inf as null: never a number a JSON reader refuses.
        if is_null {
            body.extend_from_slice(b"null");
            return Ok(());
        }
        let mut number = CompactFormatter;
        match values {
            Values::Text(array) => write_str(body, array.value(row)),
            Values::Inputs(array) => {
                let text = array.value(row);
                match serde_json::from_str::<&RawValue>(text) {
                    Ok(object) if text.trim_start().starts_with('{') => {
                        body.extend_from_slice(object.get().as_bytes());
                    }
                    _ => return Err(format!("inputs {text:?} is not a JSON object")),
                }
            }
            Values::Float(array) => number
                .write_f64(body, array.value(row))
                .expect("writing to memory succeeds"),
            Values::Int(array) => number
                .write_i64(body, array.value(row))
                .expect("writing to memory succeeds"),
            Values::Date(_) | Values::Timestamp(_) => {
                let text = self.text(row);
                write_str(body, text);
            }
        }
        Ok(())
    }
}

fn date_text(days: i64) -> String {
    let days = i32::try_from(days).expect("a Date32 value");
    date_from_days(days).to_string()
}

fn timestamp_text(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

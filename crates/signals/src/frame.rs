//! The signal frame: the `features` columns the strategies use, in (symbol,
//! interval, date) order, with `close` (the adjusted close), the series the
//! strategies compute, and `prev_<column>` for the previous row of the same
//! series where a strategy's SQL names it. Everything past the read is computed
//! on arrays of whole series: a previous row is the array shifted by one, no
//! window operator is involved.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use bf_core::tables::{FEATURES, col};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, RecordBatch, new_null_array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::{
    SortColumn, cast, concat, concat_batches, lexsort_to_indices, nullif, partition,
    take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{DFSchema, ScalarValue};

use crate::strategy::ComputedSeries;

/// The frame's leading columns, which order it and delimit its series.
const KEY: [&str; 3] = [col::SYMBOL, col::INTERVAL, col::DATE];

/// Which columns a frame holds.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Stored numeric columns read besides `close`.
    stored: Vec<&'static str>,
    computed: Vec<ComputedSeries>,
    /// The columns given a `prev_` column, in frame order.
    lagged: Vec<String>,
    schema: SchemaRef,
}

/// Frame rows of whole series, and where each series starts.
#[derive(Debug, Clone)]
pub struct FrameRows {
    pub batch: RecordBatch,
    pub starts: BooleanBuffer,
}

impl FrameRows {
    /// Where each row's previous row is of the same series and `holds` there.
    pub fn held_before(&self, holds: &BooleanBuffer) -> BooleanBuffer {
        &shifted_down(holds) & &!&self.starts
    }
}

/// `bits` one row later: row i holds bit i - 1, the first row false.
fn shifted_down(bits: &BooleanBuffer) -> BooleanBuffer {
    let n = bits.len();
    let mut shifted = BooleanBufferBuilder::new(n);
    if n > 0 {
        shifted.append(false);
        shifted.append_buffer(&bits.slice(0, n - 1));
    }
    shifted.finish()
}

impl Frame {
    /// Every column a strategy may use, given the series it computes
    /// (`used: None`), or only those in `used` (names without `prev_`); each
    /// with its `prev_` column until [`Frame::lagging_only`].
    pub fn new(computed: &[ComputedSeries], used: Option<&BTreeSet<String>>) -> Self {
        let wanted = |name: &str| used.is_none_or(|used| used.contains(name));
        // The stored numeric columns: adjusted bars, volume, every feature.
        let stored: Vec<&'static str> = FEATURES
            .value_columns()
            .into_iter()
            .filter(|c| wanted(c))
            .collect();
        let mut distinct: Vec<ComputedSeries> = Vec::new();
        for series in computed.iter().filter(|c| wanted(&c.name)) {
            if !distinct.iter().any(|c| c.name == series.name) {
                distinct.push(series.clone());
            }
        }
        let features = FEATURES.schema();
        // Scans give strings as views: kept so, cast only in the few rows
        // that become signals.
        let mut fields: Vec<Field> = KEY
            .iter()
            .map(|name| {
                let field = features.field_with_name(name).expect("key column");
                match field.data_type() {
                    DataType::Utf8 => field.clone().with_data_type(DataType::Utf8View),
                    _ => field.clone(),
                }
            })
            .collect();
        fields.push(Field::new("close", DataType::Float64, false));
        fields.extend(stored.iter().map(|name| {
            features
                .field_with_name(name)
                .expect("features column")
                .clone()
        }));
        fields.extend(
            distinct
                .iter()
                .map(|c| Field::new(&c.name, DataType::Float64, true)),
        );
        let lagged = fields[KEY.len()..]
            .iter()
            .map(|f| f.name().clone())
            .collect();
        Self {
            stored,
            computed: distinct,
            lagged,
            schema: Arc::new(Schema::new(fields)),
        }
        .with_lags()
    }

    /// The frame with `prev_` columns only for `lagged` (names without
    /// `prev_`): a lag is a copy of its column, and crossings and inputs find
    /// previous rows without one.
    pub fn lagging_only(mut self, lagged: &BTreeSet<String>) -> Self {
        let unlagged = self.schema.fields().len() - self.lagged.len();
        self.schema = Arc::new(Schema::new(self.schema.fields()[..unlagged].to_vec()));
        self.lagged.retain(|name| lagged.contains(name));
        self.with_lags()
    }

    fn with_lags(mut self) -> Self {
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for name in &self.lagged {
            let field = self
                .schema
                .field_with_name(name)
                .expect("lagged frame column");
            fields.push(Field::new(
                format!("prev_{name}"),
                field.data_type().clone(),
                true,
            ));
        }
        self.schema = Arc::new(Schema::new(fields));
        self
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn df_schema(&self) -> DFSchema {
        DFSchema::try_from(self.schema.as_ref().clone()).expect("unique frame column names")
    }

    /// The query reading the frame's stored columns from `table` (in the
    /// `features` schema) for rows matching `filter` (a `WHERE` clause or
    /// nothing), in no particular order.
    pub fn read_sql(&self, table: &str, filter: &str) -> String {
        let columns: Vec<String> = KEY
            .iter()
            .map(|c| format!("\"{c}\""))
            .chain(std::iter::once(format!("{} AS close", col::ADJ_CLOSE)))
            .chain(self.stored.iter().map(|c| format!("\"{c}\"")))
            .collect();
        format!("SELECT {} FROM {table} {filter}", columns.join(", "))
    }

    /// The columns [`Frame::read_sql`] reads, from rows in the `features`
    /// schema.
    pub fn rows_of_features(&self, features: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let column = |name: &str| {
            features
                .column_by_name(name)
                .expect("features column")
                .clone()
        };
        let names = KEY
            .into_iter()
            .chain(std::iter::once("close"))
            .chain(self.stored.iter().copied());
        RecordBatch::try_from_iter(names.map(|name| {
            let stored = if name == "close" {
                col::ADJ_CLOSE
            } else {
                name
            };
            (name, column(stored))
        }))
    }

    /// [`Frame::read_sql`] in frame order.
    pub fn sorted_read_sql(&self, table: &str, filter: &str) -> String {
        let key: Vec<String> = KEY.iter().map(|c| format!("\"{c}\"")).collect();
        format!(
            "{} ORDER BY {}",
            self.read_sql(table, filter),
            key.join(", ")
        )
    }

    /// Rows of [`Frame::read_sql`] in any order, as frame rows.
    pub fn sort_and_extend(&self, rows: &[RecordBatch]) -> Result<Option<FrameRows>, ArrowError> {
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let all = concat_batches(&first.schema(), rows)?;
        let key: Vec<SortColumn> = KEY
            .iter()
            .map(|name| SortColumn {
                values: all.column_by_name(name).expect("key column").clone(),
                options: None,
            })
            .collect();
        let order = lexsort_to_indices(&key, None)?;
        self.extend(&take_record_batch(&all, &order)?).map(Some)
    }

    /// Frame rows from rows of [`Frame::read_sql`] holding whole series,
    /// each in date order.
    pub fn extend(&self, rows: &RecordBatch) -> Result<FrameRows, ArrowError> {
        self.extend_series(rows, &series_ranges(rows)?)
    }

    /// [`Frame::extend`], given the rows' [`series_ranges`].
    pub fn extend_series(
        &self,
        rows: &RecordBatch,
        series: &[Range<usize>],
    ) -> Result<FrameRows, ArrowError> {
        let n = rows.num_rows();
        let mut starts = BooleanBufferBuilder::new(n);
        starts.append_n(n, false);
        for range in series {
            starts.set_bit(range.start, true);
        }
        let starts = starts.finish();
        let mut columns: Vec<ArrayRef> = KEY
            .iter()
            .chain(std::iter::once(&"close"))
            .chain(&self.stored)
            .map(|name| rows.column_by_name(name).expect("read column").clone())
            .collect();
        let close = rows
            .column_by_name("close")
            .expect("close")
            .as_primitive::<Float64Type>()
            .clone();
        for computed in &self.computed {
            columns.push(compute_series(computed, &close, series)?);
        }
        let starts_array = BooleanArray::new(starts.clone(), None);
        let lags = self
            .lagged
            .iter()
            .map(|name| {
                let index = self.schema.index_of(name)?;
                previous_rows(&columns[index], &starts_array)
            })
            .collect::<Result<Vec<_>, _>>()?;
        columns.extend(lags);
        // Strings may come back as views or dictionaries: the frame's types.
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(array, field)| {
                if array.data_type() == field.data_type() {
                    Ok(array)
                } else {
                    datafusion::arrow::compute::cast(&array, field.data_type())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FrameRows {
            batch: RecordBatch::try_new(self.schema.clone(), columns)?,
            starts,
        })
    }
}

/// A series: its symbol and interval.
pub type SeriesKey = [ScalarValue; 2];

/// The row ranges of `rows` where the series stays the same.
pub fn series_ranges(rows: &RecordBatch) -> Result<Vec<Range<usize>>, ArrowError> {
    Ok(partition(&series_key(rows))?.ranges())
}

/// The series of `rows` (cut at `series`, its [`series_ranges`]) in order of
/// appearance, when each series' rows are contiguous with dates strictly
/// increasing; `None` when not.
pub fn series_in_date_order(
    rows: &RecordBatch,
    series: &[Range<usize>],
) -> Result<Option<Vec<SeriesKey>>, ArrowError> {
    let key = series_key(rows);
    let dates = rows
        .column_by_name(col::DATE)
        .expect("date column")
        .as_primitive::<Date32Type>()
        .values();
    let mut found = Vec::new();
    for range in series {
        if dates[range.clone()]
            .windows(2)
            .any(|pair| pair[0] >= pair[1])
        {
            return Ok(None);
        }
        found.push([
            ScalarValue::try_from_array(&key[0], range.start)?,
            ScalarValue::try_from_array(&key[1], range.start)?,
        ]);
    }
    Ok(Some(found))
}

/// Rows whose series may lie in pieces (a series written by several commits
/// lies in several files, read in any order), each piece in date order, as
/// groups of slices of about `group_rows` rows that hold whole series, each
/// series' pieces in date order; `None` when two pieces of a series share a
/// date. Only the pieces are ordered, never the rows.
pub fn joined_series(
    rows: &[RecordBatch],
    group_rows: usize,
) -> Result<Option<Vec<Vec<RecordBatch>>>, ArrowError> {
    struct Piece<'a> {
        batch: &'a RecordBatch,
        rows: Range<usize>,
        series: (String, String),
        first: i32,
        last: i32,
    }
    let mut pieces = Vec::new();
    for batch in rows.iter().filter(|b| b.num_rows() > 0) {
        let key = series_key(batch);
        let (symbols, intervals) = (
            cast(&key[0], &DataType::Utf8)?,
            cast(&key[1], &DataType::Utf8)?,
        );
        let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
        let dates = batch
            .column_by_name(col::DATE)
            .expect("date column")
            .as_primitive::<Date32Type>()
            .values();
        for range in series_ranges(batch)? {
            let piece_dates = &dates[range.clone()];
            if piece_dates.windows(2).any(|pair| pair[0] >= pair[1]) {
                return Ok(None);
            }
            pieces.push(Piece {
                batch,
                series: (
                    symbols.value(range.start).to_string(),
                    intervals.value(range.start).to_string(),
                ),
                first: piece_dates[0],
                last: piece_dates[piece_dates.len() - 1],
                rows: range,
            });
        }
    }
    pieces.sort_unstable_by(|a, b| (&a.series, a.first).cmp(&(&b.series, b.first)));
    if pieces
        .windows(2)
        .any(|pair| pair[0].series == pair[1].series && pair[0].last >= pair[1].first)
    {
        return Ok(None);
    }
    let mut groups: Vec<Vec<RecordBatch>> = Vec::new();
    let mut group_size = 0;
    for (index, piece) in pieces.iter().enumerate() {
        let starts_series = index == 0 || pieces[index - 1].series != piece.series;
        if groups.is_empty() || (starts_series && group_size >= group_rows) {
            groups.push(Vec::new());
            group_size = 0;
        }
        groups
            .last_mut()
            .expect("a group")
            .push(piece.batch.slice(piece.rows.start, piece.rows.len()));
        group_size += piece.rows.len();
    }
    Ok(Some(groups))
}

fn series_key(rows: &RecordBatch) -> Vec<ArrayRef> {
    [col::SYMBOL, col::INTERVAL]
        .iter()
        .map(|name| rows.column_by_name(name).expect("key column").clone())
        .collect()
}

/// `array` shifted down one row, null on the first row of each series.
fn previous_rows(array: &ArrayRef, series_starts: &BooleanArray) -> Result<ArrayRef, ArrowError> {
    let n = array.len();
    if n == 0 {
        return Ok(array.clone());
    }
    let shifted = concat(&[
        new_null_array(array.data_type(), 1).as_ref(),
        array.slice(0, n - 1).as_ref(),
    ])?;
    nullif(&shifted, series_starts)
}

/// A computed series over the adjusted close, series by series.
fn compute_series(
    series: &ComputedSeries,
    close: &datafusion::arrow::array::Float64Array,
    ranges: &[Range<usize>],
) -> Result<ArrayRef, ArrowError> {
    let function = bf_indicators::functions::functions()
        .into_iter()
        .find(|f| f.name == series.function)
        .expect("computed series name a bf indicator");
    let parts: Vec<ArrayRef> = ranges
        .iter()
        .map(|range| {
            let values = close.values()[range.clone()].to_vec();
            Arc::new(function.compute(&[values], &series.params)) as ArrayRef
        })
        .collect();
    let parts: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
    if parts.is_empty() {
        return Ok(new_null_array(&DataType::Float64, 0));
    }
    concat(&parts)
}

/// Cuts sorted rows arriving in batches into batches of whole series: the
/// last series of a batch is held back until a batch starts another one.
/// Only a series split between batches is copied to join its parts; the
/// series wholly inside a batch are handed on as a slice of it.
#[derive(Default)]
pub struct WholeSeries {
    pending: Vec<RecordBatch>,
}

impl WholeSeries {
    /// Takes the next sorted batch; returns rows whose series are complete,
    /// in order.
    pub fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let series = partition(&series_key(&batch))?.ranges();
        let first_end = series[0].end;
        let last_start = series[series.len() - 1].start;
        let mut ready = Vec::new();
        let mut whole_from = 0;
        if self.continues_pending(&batch)? {
            if last_start == 0 {
                self.pending.push(batch);
                return Ok(ready);
            }
            self.pending.push(batch.slice(0, first_end));
            whole_from = first_end;
        }
        ready.extend(self.take()?);
        if last_start > whole_from {
            ready.push(batch.slice(whole_from, last_start - whole_from));
        }
        self.pending
            .push(batch.slice(last_start, batch.num_rows() - last_start));
        Ok(ready)
    }

    /// The rows held back at the end.
    pub fn finish(mut self) -> Result<Option<RecordBatch>, ArrowError> {
        self.take()
    }

    fn continues_pending(&self, batch: &RecordBatch) -> Result<bool, ArrowError> {
        let Some(last) = self.pending.last() else {
            return Ok(false);
        };
        let row = last.num_rows() - 1;
        for (held, next) in series_key(last).iter().zip(series_key(batch)) {
            let held = ScalarValue::try_from_array(held, row)?;
            let next = ScalarValue::try_from_array(&next, 0)?;
            if held != next {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn take(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let pending = std::mem::take(&mut self.pending);
        match pending.first() {
            None => Ok(None),
            Some(first) => concat_batches(&first.schema(), &pending).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Date32Array, Float64Array, Int64Array, StringViewArray};

    use super::*;

    fn rows(symbols: &[&str], closes: &[f64]) -> RecordBatch {
        let frame = Frame::new(&[], Some(&BTreeSet::from(["close".to_string()])));
        let schema = Arc::new(Schema::new(frame.schema.fields()[..KEY.len() + 1].to_vec()));
        let n = symbols.len();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from(symbols.to_vec())),
                Arc::new(StringViewArray::from(vec!["1d"; n])),
                Arc::new(Date32Array::from_iter_values(0..n as i32)),
                Arc::new(Float64Array::from(closes.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn pieces_of_a_series_join_in_date_order_unless_they_share_a_date() {
        // A's history and B, then A's newest bar stored apart (dates 0..3).
        let history = rows(&["A", "A", "A", "B"], &[1.0, 2.0, 3.0, 9.0]);
        let newest = rows(&["A"], &[4.0]);
        let mut columns = newest.columns().to_vec();
        columns[2] = Arc::new(Date32Array::from(vec![3]));
        let newest = RecordBatch::try_new(newest.schema(), columns).unwrap();
        let groups = joined_series(&[newest, history.clone()], 1)
            .unwrap()
            .unwrap();
        let closes: Vec<Vec<f64>> = groups
            .iter()
            .map(|slices| {
                let joined = concat_batches(&slices[0].schema(), slices).unwrap();
                let close = joined.column_by_name("close").unwrap();
                close.as_primitive::<Float64Type>().values().to_vec()
            })
            .collect();
        assert_eq!(closes, [vec![1.0, 2.0, 3.0, 4.0], vec![9.0]]);
        // A bar of date 0 again: the pieces overlap.
        assert!(
            joined_series(&[rows(&["A"], &[5.0]), history], 1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn previous_rows_stop_at_each_series() {
        let frame = Frame::new(&[], Some(&BTreeSet::from(["close".to_string()])));
        let out = frame
            .extend(&rows(
                &["A", "A", "B", "B", "B"],
                &[1.0, 2.0, 3.0, 4.0, 5.0],
            ))
            .unwrap();
        let prev = out.batch.column_by_name("prev_close").unwrap();
        let prev: Vec<Option<f64>> = prev.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(prev, [None, Some(1.0), None, Some(3.0), Some(4.0)]);
    }

    #[test]
    fn only_lagged_columns_get_a_previous_row_column() {
        let used = BTreeSet::from(["close".to_string(), "sma_20".to_string()]);
        let frame = Frame::new(&[], Some(&used)).lagging_only(&BTreeSet::from(["sma_20".into()]));
        let names: Vec<&str> = frame
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "symbol",
                "interval",
                "date",
                "close",
                "sma_20",
                "prev_sma_20"
            ]
        );
        let unlagged = Frame::new(&[], Some(&used)).lagging_only(&BTreeSet::new());
        assert_eq!(unlagged.schema.fields().len(), 5);
    }

    #[test]
    fn computed_series_restart_with_each_series() {
        let sma = ComputedSeries {
            name: "sma_2".into(),
            function: "sma",
            params: vec![2],
        };
        let used = BTreeSet::from(["close".to_string(), "sma_2".to_string()]);
        let frame = Frame::new(std::slice::from_ref(&sma), Some(&used));
        let out = frame
            .extend(&rows(&["A", "A", "B", "B"], &[1.0, 3.0, 10.0, 20.0]))
            .unwrap();
        let values: Vec<Option<f64>> = out
            .batch
            .column_by_name("sma_2")
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        assert_eq!(values, [None, Some(2.0), None, Some(15.0)]);
    }

    #[test]
    fn batches_are_cut_between_series() {
        let mut cut = WholeSeries::default();
        let mut out = Vec::new();
        for batch in [
            rows(&["A", "A"], &[1.0, 2.0]),
            rows(&["A", "B", "C", "D"], &[3.0, 4.0, 5.0, 6.0]),
            rows(&["D"], &[7.0]),
            rows(&["E", "F"], &[8.0, 9.0]),
        ] {
            out.extend(cut.push(batch).unwrap());
        }
        out.extend(cut.finish().unwrap());
        let symbols: Vec<Vec<String>> = out
            .iter()
            .map(|b| {
                b.column(0)
                    .as_string_view()
                    .iter()
                    .map(|s| s.unwrap().to_string())
                    .collect()
            })
            .collect();
        // B and C lie wholly inside the second batch: handed on as they are,
        // apart from A, whose parts were joined.
        assert_eq!(
            symbols,
            [
                vec!["A", "A", "A"],
                vec!["B", "C"],
                vec!["D", "D"],
                vec!["E"],
                vec!["F"]
            ]
        );
    }

    #[test]
    fn unsorted_rows_are_ordered_by_series_and_date() {
        let frame = Frame::new(&[], Some(&BTreeSet::from(["close".to_string()])));
        let sorted = rows(&["A", "A", "B"], &[1.0, 2.0, 3.0]);
        let shuffled = take_record_batch(&sorted, &Int64Array::from(vec![2, 1, 0])).unwrap();
        let out = frame.sort_and_extend(&[shuffled]).unwrap().unwrap();
        let prev: Vec<Option<f64>> = out
            .batch
            .column_by_name("prev_close")
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        assert_eq!(prev, [None, Some(1.0), None]);
    }
}

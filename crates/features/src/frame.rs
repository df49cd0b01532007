//! From `ohlcv` rows to `features` rows: group by symbol, order by date, adjust
//! prices, run every kernel, and assemble Arrow batches in the table's schema.
//! Symbols are independent, so they run in parallel on all cores.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bf_core::tables::{self, col};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    StringViewArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use rayon::prelude::*;

use bf_indicators::nullable;

use crate::FeaturesError;
use crate::feature_set::{Prices, compute_all};

/// The `ohlcv` columns a features build reads.
pub const INPUT_COLUMNS: [&str; 9] = [
    col::SYMBOL,
    col::INTERVAL,
    col::DATE,
    col::OPEN,
    col::HIGH,
    col::LOW,
    col::CLOSE,
    col::ADJ_CLOSE,
    col::VOLUME,
];

/// Provenance stamped on every computed row.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub ohlcv_version: i64,
    /// Microseconds since the Unix epoch, UTC.
    pub computed_at: i64,
}

/// Features of every (symbol, interval) in `input` (batches of rows in any
/// order, with at least `INPUT_COLUMNS`), one batch per symbol and interval,
/// sorted by symbol. The batches are read where they lie: a scan's batches
/// are not concatenated first, which copied every input row once more.
pub fn compute_features(
    input: &[RecordBatch],
    stamp: Stamp,
) -> Result<Vec<RecordBatch>, FeaturesError> {
    let inputs = input
        .iter()
        .map(Input::try_new)
        .collect::<Result<Vec<_>, _>>()?;
    // A table scan yields each series in a few long runs of rows, so grouping
    // compares neighbours and hashes once per run rather than once per row.
    let mut groups: HashMap<SeriesKey, Vec<Piece>> = HashMap::new();
    for (batch, input) in inputs.iter().enumerate() {
        let mut start = 0;
        while start < input.len {
            let key = (input.symbol.value(start), input.interval.value(start));
            let mut end = start + 1;
            while end < input.len
                && input.symbol.same(start, end)
                && input.interval.same(start, end)
            {
                end += 1;
            }
            groups.entry(key).or_default().push((batch, start..end));
            start = end;
        }
    }
    let mut groups: Vec<(SeriesKey, Vec<Piece>)> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    groups
        .into_par_iter()
        .map(|((symbol, interval), pieces)| {
            let pieces = if in_date_order(&inputs, &pieces) {
                pieces
            } else {
                date_ordered(&inputs, &pieces)
            };
            symbol_features(&inputs, symbol, interval, &pieces, stamp)
        })
        .collect()
}

/// Rows `range` of input batch number `.0`.
type Piece = (usize, Range<usize>);

/// Whether the rows of `pieces`, one after the other, are in date order.
fn in_date_order(inputs: &[Input], pieces: &[Piece]) -> bool {
    let mut last = i32::MIN;
    pieces.iter().all(|(batch, rows)| {
        let dates = &inputs[*batch].date[rows.clone()];
        let sorted = dates.first().is_none_or(|&first| first >= last) && dates.is_sorted();
        last = dates.last().copied().unwrap_or(last);
        sorted
    })
}

/// The rows of `pieces` in date order, as pieces of consecutive rows.
fn date_ordered(inputs: &[Input], pieces: &[Piece]) -> Vec<Piece> {
    let mut rows: Vec<(usize, usize)> = pieces
        .iter()
        .flat_map(|(batch, rows)| rows.clone().map(move |row| (*batch, row)))
        .collect();
    rows.sort_by_key(|&(batch, row)| inputs[batch].date[row]);
    let mut ordered: Vec<Piece> = Vec::new();
    for (batch, row) in rows {
        match ordered.last_mut() {
            Some((last, range)) if *last == batch && range.end == row => range.end += 1,
            _ => ordered.push((batch, row..row + 1)),
        }
    }
    ordered
}

/// (symbol, interval) borrowed from the input.
type SeriesKey<'a> = (&'a str, &'a str);

/// A text column as stored (DataFusion reads Delta strings as views) or plain.
enum Text<'a> {
    Plain(&'a StringArray),
    View(&'a StringViewArray),
}

impl<'a> Text<'a> {
    fn value(&self, row: usize) -> &'a str {
        match self {
            Self::Plain(array) => array.value(row),
            Self::View(array) => array.value(row),
        }
    }

    /// Whether two rows hold the same text. Identical views are the same string
    /// (short strings are stored inside the view), which settles most rows
    /// without touching the string bytes.
    fn same(&self, a: usize, b: usize) -> bool {
        match self {
            Self::View(array) if array.views()[a] == array.views()[b] => true,
            _ => self.value(a) == self.value(b),
        }
    }
}

/// Typed views of the input columns.
struct Input<'a> {
    len: usize,
    symbol: Text<'a>,
    interval: Text<'a>,
    // ohlcv columns are non-null, so the value buffers are the data.
    date: &'a [i32],
    open: &'a [f64],
    high: &'a [f64],
    low: &'a [f64],
    close: &'a [f64],
    adj_close: &'a [f64],
    volume: &'a [i64],
}

impl<'a> Input<'a> {
    fn try_new(batch: &'a RecordBatch) -> Result<Self, FeaturesError> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| FeaturesError::Input(format!("no {name} column")))
        };
        let text = |name: &str| -> Result<Text<'a>, FeaturesError> {
            let array = column(name)?;
            match array.data_type() {
                DataType::Utf8 => Ok(Text::Plain(array.as_string::<i32>())),
                DataType::Utf8View => Ok(Text::View(array.as_string_view())),
                other => Err(FeaturesError::Input(format!("{name} is {other}, not text"))),
            }
        };
        let floats = |name: &str| -> Result<&'a [f64], FeaturesError> {
            let array = column(name)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| FeaturesError::Input(format!("{name} is not Float64")))?;
            non_null(name, array)?;
            Ok(array.values())
        };
        Ok(Self {
            len: batch.num_rows(),
            symbol: text(col::SYMBOL)?,
            interval: text(col::INTERVAL)?,
            date: column(col::DATE)?
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(|| FeaturesError::Input("date is not Date32".into()))?
                .values(),
            open: floats(col::OPEN)?,
            high: floats(col::HIGH)?,
            low: floats(col::LOW)?,
            close: floats(col::CLOSE)?,
            adj_close: floats(col::ADJ_CLOSE)?,
            volume: column(col::VOLUME)?
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| FeaturesError::Input("volume is not Int64".into()))?
                .values(),
        })
    }
}

/// The features of one series, its rows in date order in `pieces`.
fn symbol_features(
    inputs: &[Input],
    symbol: &str,
    interval: &str,
    pieces: &[Piece],
    stamp: Stamp,
) -> Result<RecordBatch, FeaturesError> {
    let n = pieces.iter().map(|(_, rows)| rows.len()).sum();
    let (mut open, mut high, mut low, mut close, mut volume) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut dates, mut volumes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (batch, rows) in pieces {
        let input = &inputs[*batch];
        for row in rows.clone() {
            let adj_close = input.adj_close[row];
            let factor = adj_close / input.close[row];
            open.push(input.open[row] * factor);
            high.push(input.high[row] * factor);
            low.push(input.low[row] * factor);
            close.push(adj_close);
            volume.push(input.volume[row] as f64);
        }
        dates.extend_from_slice(&input.date[rows.clone()]);
        volumes.extend_from_slice(&input.volume[rows.clone()]);
    }
    let features = compute_all(&Prices {
        open: &open,
        high: &high,
        low: &low,
        close: &close,
        volume: &volume,
    });

    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            symbol, n,
        ))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            interval, n,
        ))),
        Arc::new(Date32Array::from(dates)),
        Arc::new(Float64Array::from(open)),
        Arc::new(Float64Array::from(high)),
        Arc::new(Float64Array::from(low)),
        Arc::new(Float64Array::from(close)),
        Arc::new(Int64Array::from(volumes)),
    ];
    columns.extend(
        features
            .into_iter()
            .map(|values| Arc::new(nullable(values)) as ArrayRef),
    );
    columns.push(Arc::new(Int64Array::from(vec![stamp.ohlcv_version; n])));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![stamp.computed_at; n]).with_timezone("UTC"),
    ));
    RecordBatch::try_new(tables::FEATURES.schema(), columns)
        .map_err(|e| FeaturesError::Input(format!("{symbol}: {e}")))
}

fn non_null(name: &str, array: &dyn Array) -> Result<(), FeaturesError> {
    if array.null_count() > 0 {
        return Err(FeaturesError::Input(format!("{name} has nulls")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bf_core::Symbol;
    use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
    use bf_sources::{ActionsBuilder, BarsBuilder};
    use chrono::NaiveDate;
    use datafusion::arrow::compute::concat_batches;

    use super::*;

    /// `ohlcv` rows of three symbols over a year, sorted by symbol and date.
    fn bars() -> RecordBatch {
        let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
        for symbol in ["AAA", "BBB", "CCC"] {
            Synthetic::new(3).generate(
                &Symbol::parse(symbol).unwrap(),
                NaiveDate::from_ymd_opt(2022, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(2022, 12, 31).unwrap(),
                &mut bars,
                &mut ActionsBuilder::new(SOURCE_NAME, 1),
            );
        }
        bars.finish()
    }

    #[test]
    fn series_spread_over_batches_in_any_order_compute_as_one_sorted_batch() {
        let stamp = Stamp {
            ohlcv_version: 1,
            computed_at: 2,
        };
        let whole = bars();
        let per_symbol = whole.num_rows() / 3;
        let expected = compute_features(std::slice::from_ref(&whole), stamp).unwrap();
        assert_eq!(expected.len(), 3);
        // AAA in two batches in date order; BBB's later rows in a batch
        // before its earlier ones; CCC's rows with BBB's later ones.
        let piece = |from: usize, rows: usize| whole.slice(from, rows);
        let batches = [
            piece(per_symbol + 100, per_symbol - 100 + 40),
            piece(0, 90),
            piece(90, per_symbol - 90),
            piece(per_symbol, 100),
            piece(2 * per_symbol + 40, whole.num_rows() - 2 * per_symbol - 40),
            piece(0, 0),
        ];
        let got = compute_features(&batches, stamp).unwrap();
        assert_eq!(got, expected);
        let all = concat_batches(&whole.schema(), &batches).unwrap();
        assert_eq!(all.num_rows(), whole.num_rows(), "every row once");
    }
}

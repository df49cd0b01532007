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

/// Features of every (symbol, interval) in `input` (rows in any order, with at
/// least `INPUT_COLUMNS`), one batch per symbol and interval, sorted by symbol.
pub fn compute_features(
    input: &RecordBatch,
    stamp: Stamp,
) -> Result<Vec<RecordBatch>, FeaturesError> {
    let input = Input::try_new(input)?;
    // A table scan yields each series in a few long runs of rows, so grouping
    // compares neighbours and hashes once per run rather than once per row.
    let mut groups: HashMap<SeriesKey, Vec<Range<usize>>> = HashMap::new();
    let mut start = 0;
    while start < input.len {
        let key = (input.symbol.value(start), input.interval.value(start));
        let mut end = start + 1;
        while end < input.len && input.symbol.same(start, end) && input.interval.same(start, end) {
            end += 1;
        }
        groups.entry(key).or_default().push(start..end);
        start = end;
    }
    let mut groups: Vec<(SeriesKey, Vec<Range<usize>>)> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    groups
        .into_par_iter()
        .map(|((symbol, interval), runs)| {
            let mut rows = Vec::with_capacity(runs.iter().map(ExactSizeIterator::len).sum());
            for run in runs {
                rows.extend(run);
            }
            if !rows.is_sorted_by_key(|&r| input.date[r]) {
                rows.sort_unstable_by_key(|&r| input.date[r]);
            }
            input.symbol_features(symbol, interval, &rows, stamp)
        })
        .collect()
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

    fn symbol_features(
        &self,
        symbol: &str,
        interval: &str,
        rows: &[usize],
        stamp: Stamp,
    ) -> Result<RecordBatch, FeaturesError> {
        let n = rows.len();
        let (mut open, mut high, mut low, mut close, mut volume) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for &row in rows {
            let adj_close = self.adj_close[row];
            let factor = adj_close / self.close[row];
            open.push(self.open[row] * factor);
            high.push(self.high[row] * factor);
            low.push(self.low[row] * factor);
            close.push(adj_close);
            volume.push(self.volume[row] as f64);
        }
        let features = compute_all(&Prices {
            open: &open,
            high: &high,
            low: &low,
            close: &close,
            volume: &volume,
        });

        let dates: Date32Array = rows
            .iter()
            .map(|&r| self.date[r])
            .collect::<Vec<_>>()
            .into();
        let volumes: Int64Array = rows
            .iter()
            .map(|&r| self.volume[r])
            .collect::<Vec<_>>()
            .into();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                symbol, n,
            ))),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                interval, n,
            ))),
            Arc::new(dates),
            Arc::new(Float64Array::from(open)),
            Arc::new(Float64Array::from(high)),
            Arc::new(Float64Array::from(low)),
            Arc::new(Float64Array::from(close)),
            Arc::new(volumes),
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
}

fn non_null(name: &str, array: &dyn Array) -> Result<(), FeaturesError> {
    if array.null_count() > 0 {
        return Err(FeaturesError::Input(format!("{name} has nulls")));
    }
    Ok(())
}

//! Builders for the lake's `ohlcv` and `corporate_actions` batches, shared by
//! every source so that a column is filled the same way whatever the origin.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Date32Builder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use bf_core::dates::{MICROS_PER_DAY, date_from_days, days_since_epoch};
use bf_core::tables::{CORPORATE_ACTIONS, OHLCV};
use bf_core::{Interval, Symbol};
use chrono::NaiveDate;

/// One bar as a source produced it, before it becomes a row of `ohlcv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Days since 1970-01-01, as Arrow's Date32.
    pub date: i32,
    /// Bar start, microseconds since the epoch, UTC. Only intraday bars keep
    /// it: a daily (weekly, monthly) bar is stored with its date at 00:00 UTC.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub adj_close: f64,
    pub volume: i64,
}

/// A bar's values as a source read them; `None` is a missing value.
/// `adj_close` is `None` when the source has no adjusted close (it then equals
/// `close`) and `Some(None)` when it has one but this bar's is missing.
#[derive(Debug, Clone, Copy)]
pub struct RawPrices {
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    pub adj_close: Option<Option<f64>>,
    pub volume: Option<f64>,
}

/// Bars dated outside these years are vendor placeholders (0000-01-01,
/// 9999-12-31) or a column read as a date by mistake.
const FIRST_PLAUSIBLE_YEAR: i32 = 1800;
const LAST_PLAUSIBLE_YEAR: i32 = 2199;

impl Bar {
    /// The one validation of a bar, whatever its source: a date in plausible
    /// years, prices present, finite and positive, high ≥ low, open and close
    /// within [low, high], a whole non-negative volume. The error is the reason
    /// in words; the source adds the symbol, file or line.
    pub fn checked(date: i32, ts: i64, raw: RawPrices) -> Result<Bar, String> {
        check_date(date)?;
        let open = present("open", raw.open)?;
        let high = present("high", raw.high)?;
        let low = present("low", raw.low)?;
        let close = present("close", raw.close)?;
        let adj_close = match raw.adj_close {
            None => close,
            Some(value) => present("adj_close", value)?,
        };
        let volume = match raw.volume {
            None => return Err("missing volume".into()),
            Some(v) if !v.is_finite() => return Err("volume is not a finite number".into()),
            Some(v) if v < 0.0 => return Err(format!("negative volume {v}")),
            Some(v) if v.fract() != 0.0 || v > i64::MAX as f64 => {
                return Err(format!("volume {v} is not a whole number"));
            }
            Some(v) => v as i64,
        };
        if high < low {
            return Err(format!("high {high} < low {low}"));
        }
        for (name, value) in [("open", open), ("close", close)] {
            if value < low || value > high {
                return Err(format!("{name} {value} outside [low {low}, high {high}]"));
            }
        }
        Ok(Bar {
            date,
            ts,
            open,
            high,
            low,
            close,
            adj_close,
            volume,
        })
    }
}

fn check_date(date: i32) -> Result<(), String> {
    let day = |year, month, day| {
        days_since_epoch(NaiveDate::from_ymd_opt(year, month, day).expect("valid date"))
    };
    let plausible = day(FIRST_PLAUSIBLE_YEAR, 1, 1)..=day(LAST_PLAUSIBLE_YEAR, 12, 31);
    if plausible.contains(&date) {
        return Ok(());
    }
    Err(format!(
        "date {} is outside the years {FIRST_PLAUSIBLE_YEAR}–{LAST_PLAUSIBLE_YEAR} (a placeholder or a misread column)",
        date_from_days(date)
    ))
}

fn present(name: &str, value: Option<f64>) -> Result<f64, String> {
    match value {
        None => Err(format!("missing {name}")),
        Some(v) if !v.is_finite() => Err(format!("{name} is not a finite number")),
        Some(v) if v <= 0.0 => Err(format!("non-positive {name} {v}")),
        Some(v) => Ok(v),
    }
}

impl AsRef<Bar> for Bar {
    fn as_ref(&self) -> &Bar {
        self
    }
}

/// Bars of several symbols (in symbol order, each in date order) as `ohlcv`
/// batches of whole symbols and about `group_rows` rows, each with its last
/// symbol. Each batch is built when the iterator reaches it, so bars held
/// compactly become rows a group at a time.
pub fn batches_of_symbols<'a, B: AsRef<Bar>>(
    series: &'a [(Symbol, Vec<B>)],
    source: &'a str,
    interval: Interval,
    ingested_at: i64,
    group_rows: usize,
) -> impl Iterator<Item = (RecordBatch, &'a str)> + 'a {
    let sized = series
        .iter()
        .filter(|(_, bars)| !bars.is_empty())
        .map(|series| (series, series.1.len()));
    bf_core::row_groups(sized, group_rows)
        .into_iter()
        .map(move |group| {
            let capacity = group.iter().map(|(_, bars)| bars.len()).sum();
            let mut builder = BarsBuilder::new(source, ingested_at, capacity);
            for (symbol, bars) in &group {
                for bar in bars {
                    builder.push(symbol.as_str(), interval, bar.as_ref());
                }
            }
            let (last, _) = group.last().expect("a group holds a symbol");
            (builder.finish(), last.as_str())
        })
}

/// Accumulates bars of any number of symbols into one `ohlcv` batch.
#[derive(Debug)]
pub struct BarsBuilder {
    source: String,
    ingested_at: i64,
    symbol: StringBuilder,
    interval: StringBuilder,
    date: Date32Builder,
    ts: TimestampMicrosecondBuilder,
    open: Float64Builder,
    high: Float64Builder,
    low: Float64Builder,
    close: Float64Builder,
    adj_close: Float64Builder,
    volume: Int64Builder,
}

impl BarsBuilder {
    pub fn new(source: &str, ingested_at: i64, capacity: usize) -> Self {
        Self {
            source: source.to_string(),
            ingested_at,
            symbol: StringBuilder::with_capacity(capacity, capacity * 6),
            interval: StringBuilder::with_capacity(capacity, capacity * 2),
            date: Date32Builder::with_capacity(capacity),
            ts: TimestampMicrosecondBuilder::with_capacity(capacity),
            open: Float64Builder::with_capacity(capacity),
            high: Float64Builder::with_capacity(capacity),
            low: Float64Builder::with_capacity(capacity),
            close: Float64Builder::with_capacity(capacity),
            adj_close: Float64Builder::with_capacity(capacity),
            volume: Int64Builder::with_capacity(capacity),
        }
    }

    /// Adds one bar. Daily and longer bars get `ts` = their date at 00:00 UTC:
    /// sources disagree on a daily bar's time of day (and Yahoo's moves while
    /// the day is open), and `ts` is part of the key, so one trading date must
    /// always map to one `ts`.
    pub fn push(&mut self, symbol: &str, interval: Interval, bar: &Bar) {
        self.symbol.append_value(symbol);
        self.interval.append_value(interval.as_str());
        self.date.append_value(bar.date);
        self.ts.append_value(if interval.is_intraday() {
            bar.ts
        } else {
            i64::from(bar.date) * MICROS_PER_DAY
        });
        self.open.append_value(bar.open);
        self.high.append_value(bar.high);
        self.low.append_value(bar.low);
        self.close.append_value(bar.close);
        self.adj_close.append_value(bar.adj_close);
        self.volume.append_value(bar.volume);
    }

    pub fn len(&self) -> usize {
        self.date.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(mut self) -> RecordBatch {
        let rows = self.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.symbol.finish()),
            Arc::new(self.interval.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.open.finish()),
            Arc::new(self.high.finish()),
            Arc::new(self.low.finish()),
            Arc::new(self.close.finish()),
            Arc::new(self.adj_close.finish()),
            Arc::new(self.volume.finish()),
            constant_string(&self.source, rows),
            constant_timestamp(self.ingested_at, rows),
        ];
        RecordBatch::try_new(OHLCV.schema(), columns).expect("columns match the ohlcv schema")
    }
}

/// Accumulates dividends and splits into one `corporate_actions` batch.
#[derive(Debug)]
pub struct ActionsBuilder {
    source: String,
    ingested_at: i64,
    symbol: StringBuilder,
    date: Date32Builder,
    kind: StringBuilder,
    value: Float64Builder,
}

impl ActionsBuilder {
    pub fn new(source: &str, ingested_at: i64) -> Self {
        Self {
            source: source.to_string(),
            ingested_at,
            symbol: StringBuilder::new(),
            date: Date32Builder::new(),
            kind: StringBuilder::new(),
            value: Float64Builder::new(),
        }
    }

    pub fn push(&mut self, symbol: &str, date: i32, kind: &str, value: f64) {
        self.symbol.append_value(symbol);
        self.date.append_value(date);
        self.kind.append_value(kind);
        self.value.append_value(value);
    }

    pub fn len(&self) -> usize {
        self.date.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(mut self) -> RecordBatch {
        let rows = self.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.symbol.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.value.finish()),
            constant_string(&self.source, rows),
            constant_timestamp(self.ingested_at, rows),
        ];
        RecordBatch::try_new(CORPORATE_ACTIONS.schema(), columns)
            .expect("columns match the corporate_actions schema")
    }
}

fn constant_string(value: &str, rows: usize) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(rows, rows * value.len());
    for _ in 0..rows {
        builder.append_value(value);
    }
    Arc::new(builder.finish())
}

fn constant_timestamp(micros: i64, rows: usize) -> ArrayRef {
    let mut builder = TimestampMicrosecondBuilder::with_capacity(rows);
    builder.append_value_n(micros, rows);
    Arc::new(builder.finish().with_timezone("UTC"))
}

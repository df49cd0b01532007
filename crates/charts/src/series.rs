//! What a chart shows, read from the lake: one symbol's adjusted bars with the
//! overlay and pane indicators, and the signals that fired on them.

use bf_core::tables::{FEATURES, SIGNALS, col};
use bf_lake::sql_literal;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type};
use datafusion::prelude::SessionContext;

use crate::ChartError;

/// Bars shown when no start date is given: about one year of trading days,
/// where candles are still readable.
pub const DEFAULT_BARS: usize = 252;

/// One bar and the indicators drawn on it; indicators are `None` inside their
/// lookback.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartBar {
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub sma_50: Option<f64>,
    pub sma_200: Option<f64>,
    pub bb_upper: Option<f64>,
    pub bb_lower: Option<f64>,
    pub rsi_14: Option<f64>,
    pub macd: Option<f64>,
    pub macd_signal: Option<f64>,
    pub macd_hist: Option<f64>,
}

/// A signal on the chart: the index of its bar, its strategy and side.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub bar: usize,
    pub strategy: String,
    pub buy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    pub symbol: String,
    pub interval: String,
    pub bars: Vec<ChartBar>,
    pub markers: Vec<Marker>,
}

const BAR_COLUMNS: [&str; 13] = [
    col::DATE,
    col::ADJ_OPEN,
    col::ADJ_HIGH,
    col::ADJ_LOW,
    col::ADJ_CLOSE,
    "sma_50",
    "sma_200",
    "bb_upper",
    "bb_lower",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
];

impl ChartSeries {
    /// Reads, through a lake session, `symbol`'s bars at `interval` from `since` (or its last
    /// `DEFAULT_BARS` bars) and the signals on them.
    pub async fn load(
        ctx: &SessionContext,
        symbol: &str,
        interval: &str,
        since: Option<NaiveDate>,
    ) -> Result<Self, ChartError> {
        if !ctx.table_exist(FEATURES.name)? {
            return Err(ChartError::NoFeatures);
        }
        let key = format!(
            "{} = {} AND \"{}\" = {}",
            col::SYMBOL,
            sql_literal(symbol),
            col::INTERVAL,
            sql_literal(interval)
        );
        let since_filter = since.map_or_else(String::new, |d| {
            format!(" AND {} >= DATE {}", col::DATE, sql_literal(&d.to_string()))
        });
        let bars_query = format!(
            "SELECT {} FROM {} WHERE {key}{since_filter} ORDER BY {}",
            BAR_COLUMNS.join(", "),
            FEATURES.name,
            col::DATE
        );
        let batches = ctx.sql(&bars_query).await?.collect().await?;
        let mut bars = Vec::new();
        for batch in &batches {
            read_bars(batch, &mut bars);
        }
        if since.is_none() && bars.len() > DEFAULT_BARS {
            bars.drain(..bars.len() - DEFAULT_BARS);
        }
        if bars.is_empty() {
            return Err(ChartError::NoBars {
                symbol: symbol.to_string(),
                interval: interval.to_string(),
                since,
            });
        }
        let markers = if ctx.table_exist(SIGNALS.name)? {
            let first = bars[0].date;
            let signals_query = format!(
                "SELECT {}, {}, {} FROM {} WHERE {key} AND {} >= DATE {} ORDER BY {}, {}",
                col::DATE,
                col::STRATEGY,
                col::SIDE,
                SIGNALS.name,
                col::DATE,
                sql_literal(&first.to_string()),
                col::DATE,
                col::STRATEGY
            );
            let batches = ctx.sql(&signals_query).await?.collect().await?;
            read_markers(&batches, &bars)?
        } else {
            Vec::new()
        };
        Ok(Self {
            symbol: symbol.to_string(),
            interval: interval.to_string(),
            bars,
            markers,
        })
    }

    /// The strategies with a marker on the chart, in first-seen order.
    pub fn strategies(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for marker in &self.markers {
            if !names.contains(&marker.strategy.as_str()) {
                names.push(&marker.strategy);
            }
        }
        names.sort_unstable();
        names
    }
}

fn read_bars(batch: &RecordBatch, bars: &mut Vec<ChartBar>) {
    let dates = batch.column(0).as_primitive::<Date32Type>();
    let floats: Vec<_> = (1..BAR_COLUMNS.len())
        .map(|i| batch.column(i).as_primitive::<Float64Type>())
        .collect();
    for row in 0..batch.num_rows() {
        let value = |i: usize| {
            let array = floats[i - 1];
            (!array.is_null(row)).then(|| array.value(row))
        };
        let (Some(date), Some(open), Some(high), Some(low), Some(close)) = (
            dates.value_as_date(row),
            value(1),
            value(2),
            value(3),
            value(4),
        ) else {
            continue;
        };
        bars.push(ChartBar {
            date,
            open,
            high,
            low,
            close,
            sma_50: value(5),
            sma_200: value(6),
            bb_upper: value(7),
            bb_lower: value(8),
            rsi_14: value(9),
            macd: value(10),
            macd_signal: value(11),
            macd_hist: value(12),
        });
    }
}

fn read_markers(batches: &[RecordBatch], bars: &[ChartBar]) -> Result<Vec<Marker>, ChartError> {
    let mut markers = Vec::new();
    for batch in batches {
        let dates = batch.column(0).as_primitive::<Date32Type>();
        let strategies = cast(batch.column(1), &DataType::Utf8)?;
        let sides = cast(batch.column(2), &DataType::Utf8)?;
        let (strategies, sides) = (strategies.as_string::<i32>(), sides.as_string::<i32>());
        for row in 0..batch.num_rows() {
            let Some(date) = dates.value_as_date(row) else {
                continue;
            };
            // Signals are keyed like features, so each lands on a charted bar.
            if let Ok(bar) = bars.binary_search_by_key(&date, |b| b.date) {
                markers.push(Marker {
                    bar,
                    strategy: strategies.value(row).to_string(),
                    buy: sides.value(row) == bf_core::tables::side::BUY,
                });
            }
        }
    }
    Ok(markers)
}

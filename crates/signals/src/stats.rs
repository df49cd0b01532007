//! `signals stats`: per strategy and side, how many signals and how the price
//! moved after them. Forward return over h rows = adj_close h rows later /
//! adj_close on the signal's bar − 1, within the symbol's own series. A BUY hits
//! when it is > 0, a SELL when it is < 0. Signals too recent to have a bar h rows
//! later count in `signals` but not in that horizon's hit rate or mean.

use std::collections::HashMap;
use std::ops::Range;

use bf_core::tables::{FEATURES, SIGNALS, col, side};
use bf_lake::{Lake, sql_literal};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::SignalsError;
use crate::error::arrow_error;
use crate::frame::{joined_series, series_ranges};

/// Horizons, in rows, of the forward returns.
pub const HORIZONS: [usize; 2] = [5, 20];

/// One strategy and side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideStats {
    pub strategy: String,
    pub side: String,
    pub signals: i64,
    /// Per horizon in `HORIZONS`: (hit rate, mean forward return); `None`
    /// where no signal has a bar that far ahead yet.
    pub horizons: Vec<HorizonStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HorizonStats {
    pub rows: usize,
    pub hit_rate: Option<f64>,
    pub mean_return: Option<f64>,
}

/// Stats over the signals of `symbols` (all symbols when `None`).
pub async fn side_stats(
    lake: &Lake,
    symbols: Option<&[String]>,
) -> Result<Vec<SideStats>, SignalsError> {
    side_stats_in_groups(lake, symbols, GROUP_ROWS).await
}

/// [`side_stats`], reading about `group_rows` features rows per query.
async fn side_stats_in_groups(
    lake: &Lake,
    symbols: Option<&[String]>,
    group_rows: usize,
) -> Result<Vec<SideStats>, SignalsError> {
    let ctx = lake.session().await?;
    if !ctx.table_exist(SIGNALS.name).map_err(SignalsError::Query)? {
        return Ok(Vec::new());
    }
    if !ctx
        .table_exist(FEATURES.name)
        .map_err(SignalsError::Query)?
    {
        return Err(SignalsError::NoFeatures);
    }
    let mut sorted = symbols.map(<[String]>::to_vec);
    if let Some(sorted) = &mut sorted {
        sorted.sort_unstable();
    }
    let files = lake.table_files(&FEATURES).await?;
    // Whole symbol ranges of the features files, a bounded number of rows
    // at a time: the forward returns sort the rows they cover, and the join
    // holds them. Without file statistics, one query over everything.
    let ranges: Vec<Option<(String, String)>> =
        match files.as_ref().and_then(bf_lake::TableFiles::symbol_ranges) {
            Some(ranges) => {
                let wanted = ranges
                    .into_iter()
                    .filter(|range| sorted.as_deref().is_none_or(|s| range.holds_any(s)))
                    .map(|range| {
                        let rows = range.rows as usize;
                        (range, rows)
                    });
                bf_core::row_groups(wanted, group_rows)
                    .into_iter()
                    .map(|group| Some((group[0].low.clone(), group[group.len() - 1].high.clone())))
                    .collect()
            }
            None => vec![None],
        };
    let mut sums = SideSums::default();
    for range in ranges {
        let filter = bf_lake::symbol_filter(symbols);
        let filter = match &range {
            Some((low, high)) => within(&filter, low, high),
            None => filter,
        };
        let closes = Closes::read(&ctx, &filter).await?;
        let signals = query(
            &ctx,
            &format!(
                "SELECT {}, \"{}\", {}, {}, {} FROM {} {filter}",
                col::SYMBOL,
                col::INTERVAL,
                col::DATE,
                col::STRATEGY,
                col::SIDE,
                SIGNALS.name
            ),
        )
        .await?;
        for batch in &signals {
            sums.add(batch, &closes)?;
        }
    }
    let mut sums = sums.0;
    sums.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(sums
        .into_iter()
        .map(|((strategy, side), sum)| SideStats {
            strategy,
            side,
            signals: sum.signals,
            horizons: HORIZONS
                .iter()
                .zip(sum.horizons)
                .map(|(&rows, horizon)| {
                    let with_return = horizon.with_return;
                    HorizonStats {
                        rows,
                        hit_rate: (with_return > 0.0).then(|| horizon.hits / with_return),
                        mean_return: (with_return > 0.0).then(|| horizon.returns / with_return),
                    }
                })
                .collect(),
        })
        .collect())
}

/// Features rows per stats query: about 0.5 GB of memory.
const GROUP_ROWS: usize = 2_500_000;

/// One strategy and side's sums over the ranges read so far.
#[derive(Debug, Default)]
struct Sums {
    signals: i64,
    horizons: [HorizonSums; HORIZONS.len()],
}

#[derive(Debug, Default, Clone, Copy)]
struct HorizonSums {
    hits: f64,
    /// Signals with a bar that far ahead.
    with_return: f64,
    returns: f64,
}

/// Sums per (strategy, side), in order of appearance: a handful, so found
/// by comparing text rather than hashing it for every signal.
#[derive(Default)]
struct SideSums(Vec<((String, String), Sums)>);

impl SideSums {
    /// Adds signals (symbol, interval, date, strategy, side), looking up
    /// their bars in `closes`.
    fn add(&mut self, batch: &RecordBatch, closes: &Closes) -> Result<(), SignalsError> {
        let text = |i: usize| cast(batch.column(i), &DataType::Utf8).map_err(arrow_error);
        let (symbols, intervals, strategies, sides) = (text(0)?, text(1)?, text(3)?, text(4)?);
        let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
        let (strategies, sides) = (strategies.as_string::<i32>(), sides.as_string::<i32>());
        let dates = cast(batch.column(2), &DataType::Date32).map_err(arrow_error)?;
        let dates = dates.as_primitive::<Date32Type>().values();
        for row in 0..batch.num_rows() {
            let (strategy, side_value) = (strategies.value(row), sides.value(row));
            let at = match self
                .0
                .iter()
                .position(|((s, d), _)| s == strategy && d == side_value)
            {
                Some(at) => at,
                None => {
                    let key = (strategy.to_string(), side_value.to_string());
                    self.0.push((key, Sums::default()));
                    self.0.len() - 1
                }
            };
            let sum = &mut self.0[at].1;
            sum.signals += 1;
            let bar = closes.bar(symbols.value(row), intervals.value(row), dates[row]);
            let Some((series, index)) = bar else {
                continue;
            };
            for (horizon, &h) in sum.horizons.iter_mut().zip(&HORIZONS) {
                if index + h >= series.end {
                    continue;
                }
                let forward = closes.close[index + h] / closes.close[index] - 1.0;
                let hit = if side_value == side::BUY {
                    forward > 0.0
                } else {
                    side_value == side::SELL && forward < 0.0
                };
                horizon.hits += f64::from(u8::from(hit));
                horizon.with_return += 1.0;
                horizon.returns += forward;
            }
        }
        Ok(())
    }
}

/// The adjusted closes of some symbols' series, each series' rows together
/// in date order.
struct Closes {
    /// Each series' rows, by symbol then interval: looked up by text,
    /// without a copy per signal.
    series: HashMap<String, HashMap<String, Range<usize>>>,
    dates: Vec<i32>,
    close: Vec<f64>,
}

impl Closes {
    /// The closes of the `features` rows matching `filter`. A series written
    /// by several commits lies in pieces, which are joined in date order, so
    /// the rows are never sorted.
    async fn read(ctx: &SessionContext, filter: &str) -> Result<Self, SignalsError> {
        let sql = format!(
            "SELECT {}, \"{}\", {}, {} FROM {} {filter}",
            col::SYMBOL,
            col::INTERVAL,
            col::DATE,
            col::ADJ_CLOSE,
            FEATURES.name
        );
        let rows = query(ctx, &sql).await?;
        let joined = match joined_series(&rows, usize::MAX).map_err(arrow_error)? {
            Some(groups) => groups.into_iter().flatten().collect(),
            None => {
                let key = format!("{}, \"{}\", {}", col::SYMBOL, col::INTERVAL, col::DATE);
                query(ctx, &format!("{sql} ORDER BY {key}")).await?
            }
        };
        let mut closes = Self {
            series: HashMap::new(),
            dates: Vec::new(),
            close: Vec::new(),
        };
        let mut last: Option<(String, String)> = None;
        for batch in &joined {
            let text = |i: usize| cast(batch.column(i), &DataType::Utf8).map_err(arrow_error);
            let (symbols, intervals) = (text(0)?, text(1)?);
            let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
            let dates = cast(batch.column(2), &DataType::Date32).map_err(arrow_error)?;
            let close = cast(batch.column(3), &DataType::Float64).map_err(arrow_error)?;
            closes
                .dates
                .extend_from_slice(dates.as_primitive::<Date32Type>().values());
            closes
                .close
                .extend_from_slice(close.as_primitive::<Float64Type>().values());
            let offset = closes.close.len() - batch.num_rows();
            for range in series_ranges(batch).map_err(arrow_error)? {
                let (symbol, interval) = (symbols.value(range.start), intervals.value(range.start));
                let rows = offset + range.start..offset + range.end;
                let of_symbol = closes.series.entry(symbol.to_string()).or_default();
                let continued = last
                    .as_ref()
                    .is_some_and(|(s, i)| s == symbol && i == interval);
                match of_symbol.get_mut(interval) {
                    // A series continued from the previous batch.
                    Some(stored) if continued => stored.end = rows.end,
                    _ => {
                        of_symbol.insert(interval.to_string(), rows);
                        last = Some((symbol.to_string(), interval.to_string()));
                    }
                }
            }
        }
        Ok(closes)
    }

    /// The series and row of a bar, if stored.
    fn bar(&self, symbol: &str, interval: &str, date: i32) -> Option<(Range<usize>, usize)> {
        let series = self.series.get(symbol)?.get(interval)?;
        let dates = &self.dates[series.clone()];
        let index = dates.binary_search(&date).ok()?;
        Some((series.clone(), series.start + index))
    }
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, SignalsError> {
    ctx.sql(sql)
        .await
        .map_err(SignalsError::Query)?
        .collect()
        .await
        .map_err(SignalsError::Query)
}

/// `filter` (empty or a `WHERE`) narrowed to symbols from `low` to `high`.
fn within(filter: &str, low: &str, high: &str) -> String {
    let between = format!(
        "{} BETWEEN {} AND {}",
        col::SYMBOL,
        sql_literal(low),
        sql_literal(high)
    );
    if filter.is_empty() {
        format!("WHERE {between}")
    } else {
        format!("{filter} AND {between}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bf_core::tables::TableSpec;
    use datafusion::arrow::array::{
        ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };

    use super::*;

    #[test]
    fn a_filter_is_narrowed_to_a_symbol_range() {
        assert_eq!(
            within("WHERE symbol IN ('H', 'B')", "A", "C"),
            "WHERE symbol IN ('H', 'B') AND symbol BETWEEN 'A' AND 'C'"
        );
    }

    /// Rows of `spec` for one symbol: named columns as given, other floats
    /// null (or equal to `fill` when non-nullable), other numbers 0.
    fn batch(
        spec: &TableSpec,
        dates: &[i32],
        given: &[(&str, ArrayRef)],
        fill: &[f64],
    ) -> RecordBatch {
        let n = dates.len();
        let columns = spec
            .schema()
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                if let Some((_, array)) = given.iter().find(|(name, _)| name == field.name()) {
                    return Arc::clone(array);
                }
                match (field.name().as_str(), field.data_type()) {
                    (col::SYMBOL, _) => Arc::new(StringArray::from(vec!["HAND"; n])),
                    (col::INTERVAL, _) => Arc::new(StringArray::from(vec!["1d"; n])),
                    (col::DATE, _) => Arc::new(Date32Array::from(dates.to_vec())),
                    (_, DataType::Float64) if field.is_nullable() => {
                        Arc::new(Float64Array::from(vec![None; n]))
                    }
                    (_, DataType::Float64) => Arc::new(Float64Array::from(fill.to_vec())),
                    (_, DataType::Int64) => Arc::new(Int64Array::from(vec![0; n])),
                    (_, DataType::Utf8) => Arc::new(StringArray::from(vec!["x"; n])),
                    _ => Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
                }
            })
            .collect();
        RecordBatch::try_new(spec.schema(), columns).unwrap()
    }

    #[tokio::test]
    async fn hit_rates_and_forward_returns_match_a_hand_computed_series() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let close = [
            100.0, 102.0, 101.0, 103.0, 105.0, 104.0, 106.0, 108.0, 107.0, 109.0, 110.0, 108.0,
            107.0, 105.0, 104.0, 106.0, 108.0, 110.0, 112.0, 111.0, 113.0, 115.0, 114.0, 116.0,
            118.0, 117.0, 119.0, 121.0, 120.0, 122.0,
        ];
        let dates: Vec<i32> = (0..30).map(|d| 19_000 + d).collect();
        lake.append(&FEATURES, vec![batch(&FEATURES, &dates, &[], &close)], None)
            .await
            .unwrap();
        // BUY on rows 0 and 10, SELL on rows 7 and 27.
        let rows = [0usize, 10, 7, 27];
        let sides: ArrayRef = Arc::new(StringArray::from(vec!["BUY", "BUY", "SELL", "SELL"]));
        let strategy: ArrayRef = Arc::new(StringArray::from(vec!["hand"; 4]));
        let signal_dates: Vec<i32> = rows.iter().map(|&r| dates[r]).collect();
        let signals = batch(
            &SIGNALS,
            &signal_dates,
            &[(col::SIDE, sides), (col::STRATEGY, strategy)],
            &[1.0; 4],
        );
        lake.append(&SIGNALS, vec![signals.clone()], None)
            .await
            .unwrap();

        // The same series and signals for a second symbol, in files of its own.
        let twin = |batch: RecordBatch| {
            let mut columns = batch.columns().to_vec();
            columns[batch.schema().index_of(col::SYMBOL).unwrap()] =
                Arc::new(StringArray::from(vec!["TWIN"; batch.num_rows()]));
            RecordBatch::try_new(batch.schema(), columns).unwrap()
        };
        lake.upsert(&FEATURES, vec![twin(batch(&FEATURES, &dates, &[], &close))])
            .await
            .unwrap();
        lake.upsert(&SIGNALS, vec![twin(signals)]).await.unwrap();

        // One query over both symbols, and one per symbol summed: the same.
        let stats = side_stats(&lake, None).await.unwrap();
        assert_eq!(side_stats_in_groups(&lake, None, 1).await.unwrap(), stats);
        let other = side_stats(&lake, Some(&["OTHER".to_string()])).await;
        assert!(
            other.unwrap().is_empty(),
            "another symbol's signals are not counted"
        );
        assert_eq!(stats.len(), 2);
        let (buy, sell) = (&stats[0], &stats[1]);
        assert_eq!((buy.side.as_str(), buy.signals), ("BUY", 4));
        assert_eq!((sell.side.as_str(), sell.signals), ("SELL", 4));
        let close_to = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        // BUY row 0: +5 rows 104/100 − 1 = 0.04, +20 rows 113/100 − 1 = 0.13.
        // BUY row 10: +5 rows 106/110 − 1 = −0.036363…, no row 30.
        assert!(close_to(buy.horizons[0].hit_rate, 0.5));
        assert!(close_to(
            buy.horizons[0].mean_return,
            (0.04 + (106.0 / 110.0 - 1.0)) / 2.0
        ));
        assert!(close_to(buy.horizons[1].hit_rate, 1.0));
        assert!(close_to(buy.horizons[1].mean_return, 0.13));
        // SELL row 7: +5 rows 107/108 − 1 < 0 (a hit), +20 rows 121/108 − 1 > 0 (a miss).
        // SELL row 27: too recent for either horizon.
        assert!(close_to(sell.horizons[0].hit_rate, 1.0));
        assert!(close_to(sell.horizons[0].mean_return, 107.0 / 108.0 - 1.0));
        assert!(close_to(sell.horizons[1].hit_rate, 0.0));
        assert!(close_to(sell.horizons[1].mean_return, 121.0 / 108.0 - 1.0));
    }
}

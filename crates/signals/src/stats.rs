//! `signals stats`: per strategy and side, how many signals and how the price
//! moved after them. Forward return over h rows = adj_close h rows later /
//! adj_close on the signal's bar − 1, within the symbol's own series. A BUY hits
//! when it is > 0, a SELL when it is < 0. Signals too recent to have a bar h rows
//! later count in `signals` but not in that horizon's hit rate or mean.

use bf_core::tables::{FEATURES, SIGNALS, col, side};
use bf_lake::Lake;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use serde::Serialize;

use crate::SignalsError;

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
    let forward: Vec<String> = HORIZONS
        .iter()
        .map(|h| {
            format!(
                "lead({c}, {h}) OVER w / {c} - 1.0 AS fwd_{h}",
                c = col::ADJ_CLOSE
            )
        })
        .collect();
    let aggregates: Vec<String> = HORIZONS
        .iter()
        .map(|h| {
            format!(
                "avg(CASE WHEN f.fwd_{h} IS NULL THEN NULL \
                 WHEN (s.side = '{buy}' AND f.fwd_{h} > 0) OR (s.side = '{sell}' AND f.fwd_{h} < 0) THEN 1.0 \
                 ELSE 0.0 END) AS hit_rate_{h}, avg(f.fwd_{h}) AS mean_return_{h}",
                buy = side::BUY,
                sell = side::SELL
            )
        })
        .collect();
    let query = format!(
        "WITH fwd AS (SELECT symbol, \"interval\", date, {forward} FROM {features} \
         WINDOW w AS (PARTITION BY symbol, \"interval\" ORDER BY date)) \
         SELECT s.strategy, s.side, count(*) AS signals, {aggregates} \
         FROM (SELECT * FROM {signals} {filter}) s LEFT JOIN fwd f \
         ON s.symbol = f.symbol AND s.\"interval\" = f.\"interval\" AND s.date = f.date \
         GROUP BY s.strategy, s.side ORDER BY s.strategy, s.side",
        forward = forward.join(", "),
        features = FEATURES.name,
        aggregates = aggregates.join(", "),
        signals = SIGNALS.name,
        filter = bf_lake::symbol_filter(symbols),
    );
    let batches = ctx
        .sql(&query)
        .await
        .map_err(SignalsError::Query)?
        .collect()
        .await
        .map_err(SignalsError::Query)?;
    let horizon_rows = HORIZONS.to_vec();
    let mut out = Vec::new();
    for batch in batches {
        let text = |i: usize| {
            cast(batch.column(i), &DataType::Utf8).map_err(|e| SignalsError::Query(e.into()))
        };
        let (strategies, sides) = (text(0)?, text(1)?);
        let counts = batch.column(2).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let value = |i: usize| {
                let array = batch.column(i).as_primitive::<Float64Type>();
                (!array.is_null(row)).then(|| array.value(row))
            };
            out.push(SideStats {
                strategy: strategies.as_string::<i32>().value(row).to_string(),
                side: sides.as_string::<i32>().value(row).to_string(),
                signals: counts.value(row),
                horizons: horizon_rows
                    .iter()
                    .enumerate()
                    .map(|(k, &rows)| HorizonStats {
                        rows,
                        hit_rate: value(3 + 2 * k),
                        mean_return: value(4 + 2 * k),
                    })
                    .collect(),
            });
        }
    }
    Ok(out)
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
        lake.append(&SIGNALS, vec![signals], None).await.unwrap();

        let stats = side_stats(&lake, None).await.unwrap();
        let other = side_stats(&lake, Some(&["OTHER".to_string()])).await;
        assert!(
            other.unwrap().is_empty(),
            "another symbol's signals are not counted"
        );
        assert_eq!(stats.len(), 2);
        let (buy, sell) = (&stats[0], &stats[1]);
        assert_eq!((buy.side.as_str(), buy.signals), ("BUY", 2));
        assert_eq!((sell.side.as_str(), sell.signals), ("SELL", 2));
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

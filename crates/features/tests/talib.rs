//! Every feature column against reference values computed by TA-Lib itself
//! (tests/fixtures/make_reference.py, ta-lib 0.6.8 = TA-Lib C 0.6.4).

use std::collections::HashMap;
use std::sync::Arc;

use bf_core::tables::FEATURE_COLUMNS;
use bf_features::frame::{Stamp, compute_features};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema};
use datafusion::prelude::SessionContext;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(format!("{FIXTURES}/{name}")).expect("fixture");
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn day_number(date: &str) -> i32 {
    bf_core::dates::days_since_epoch(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
}

/// input.csv as an ohlcv-shaped batch, rows shuffled so the build must order them.
fn input_batch() -> RecordBatch {
    let (_, mut rows) = read_csv("input.csv");
    rows.reverse();
    let third = rows.len() / 3;
    rows.rotate_left(third);
    let text = |i: usize| {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r[i].clone()),
        )) as ArrayRef
    };
    let float = |i: usize| {
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r[i].parse::<f64>().unwrap()),
        )) as ArrayRef
    };
    let columns = vec![
        text(0),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "1d"))) as ArrayRef,
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| day_number(&r[1])),
        )),
        float(2),
        float(3),
        float(4),
        float(5),
        float(6),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r[7].parse::<i64>().unwrap()),
        )),
    ];
    let schema = Schema::new(
        [
            "symbol",
            "interval",
            "date",
            "open",
            "high",
            "low",
            "close",
            "adj_close",
            "volume",
        ]
        .iter()
        .zip(columns.iter())
        .map(|(name, c)| Field::new(*name, c.data_type().clone(), false))
        .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

/// Relative error against the larger of |expected| and the column's scale:
/// the price level for lines that cross zero, 1 for everything unitless.
fn scale_for(column: &str, bb_middle: Option<f64>) -> f64 {
    match column {
        "macd" | "macd_signal" | "macd_hist" => bb_middle.unwrap_or(1.0),
        _ => 1.0,
    }
}

fn expected_values() -> HashMap<(String, i32), HashMap<String, Option<f64>>> {
    let (header, expected_rows) = read_csv("expected.csv");
    let mut expected = HashMap::new();
    for row in &expected_rows {
        let values = header[2..]
            .iter()
            .zip(&row[2..])
            .map(|(name, v)| {
                (
                    name.clone(),
                    (!v.is_empty()).then(|| v.parse::<f64>().unwrap()),
                )
            })
            .collect();
        expected.insert((row[0].clone(), day_number(&row[1])), values);
    }
    expected
}

/// Checks `columns` of `batches` (keyed by symbol and date) against TA-Lib.
fn assert_matches_talib(batches: &[RecordBatch], columns: &[&str]) {
    let expected = expected_values();
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        expected.len()
    );
    let (mut checked, mut failures) = (0, Vec::new());
    for batch in batches {
        let symbols = datafusion::arrow::compute::cast(
            batch.column_by_name("symbol").unwrap(),
            &DataType::Utf8,
        )
        .unwrap();
        let symbols = symbols.as_string::<i32>();
        let dates = batch
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>();
        for row in 0..batch.num_rows() {
            let want = &expected[&(symbols.value(row).to_string(), dates.value(row))];
            let bb_middle = want["bb_middle"];
            for name in columns {
                let column = batch
                    .column_by_name(name)
                    .unwrap_or_else(|| panic!("no column {name}"));
                assert_eq!(column.data_type(), &DataType::Float64);
                let column = column.as_primitive::<Float64Type>();
                let got = (!column.is_null(row)).then(|| column.value(row));
                let ok = match (got, want[*name]) {
                    (None, None) => true,
                    (Some(g), Some(w)) => {
                        assert!(g.is_finite(), "{name} leaks {g}");
                        (g - w).abs() <= 1e-9 * w.abs().max(scale_for(name, bb_middle))
                    }
                    _ => false,
                };
                checked += 1;
                if !ok {
                    failures.push(format!(
                        "{} {} {name}: bf {got:?}, TA-Lib {:?}",
                        symbols.value(row),
                        dates.value(row),
                        want[*name]
                    ));
                }
            }
        }
    }
    assert!(checked >= expected.len() * columns.len());
    assert!(
        failures.is_empty(),
        "{} mismatches, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(15)]
    );
}

#[test]
fn every_feature_equals_talib() {
    let batches = compute_features(
        &[input_batch()],
        Stamp {
            ohlcv_version: 0,
            computed_at: 0,
        },
    )
    .unwrap();
    let columns: Vec<&str> = ["adj_open", "adj_high", "adj_low", "adj_close"]
        .into_iter()
        .chain(FEATURE_COLUMNS)
        .collect();
    assert_matches_talib(&batches, &columns);
}

/// The same kernels through SQL window functions, on the same bars.
#[tokio::test]
async fn window_functions_equal_talib() {
    let ctx = SessionContext::new();
    bf_indicators::register(&ctx);
    ctx.register_batch("ohlcv", input_batch()).unwrap();
    let over = "OVER (PARTITION BY symbol ORDER BY date)";
    let calls = [
        ("ret_1", "ret(c)"),
        ("log_ret_1", "log_ret(c)"),
        ("sma_20", "sma(c, 20)"),
        ("sma_50", "sma(c, 50)"),
        ("sma_200", "sma(c, 200)"),
        ("ema_12", "ema(c, 12)"),
        ("ema_26", "ema(c, 26)"),
        ("macd", "macd(c, 12, 26, 9)"),
        ("macd_signal", "macd_signal(c, 12, 26, 9)"),
        ("macd_hist", "macd_hist(c, 12, 26, 9)"),
        ("rsi_14", "rsi(c, 14)"),
        ("bb_upper", "bb_upper(c, 20, 2)"),
        ("bb_middle", "bb_middle(c, 20)"),
        ("bb_lower", "bb_lower(c, 20, 2)"),
        ("atr_14", "atr(h, l, c, 14)"),
        ("adx_14", "adx(h, l, c, 14)"),
        ("stoch_k", "stoch_k(h, l, c, 14, 3, 3)"),
        ("stoch_d", "stoch_d(h, l, c, 14, 3, 3)"),
        ("obv", "obv(c, volume)"),
        ("vol_20", "volatility(c, 20)"),
        ("volume_z_20", "volume_z(volume, 20)"),
    ];
    let select: Vec<String> = calls
        .iter()
        .map(|(name, call)| format!("{call} {over} AS {name}"))
        .collect();
    let query = format!(
        "SELECT symbol, date, {} FROM (SELECT symbol, date, adj_close AS c, \
         high * (adj_close / close) AS h, low * (adj_close / close) AS l, volume FROM ohlcv)",
        select.join(", ")
    );
    let batches = ctx.sql(&query).await.unwrap().collect().await.unwrap();
    let columns: Vec<&str> = calls.iter().map(|(name, _)| *name).collect();
    assert_eq!(columns, FEATURE_COLUMNS, "every feature has its function");
    assert_matches_talib(&batches, &columns);
}

async fn query_error(ctx: &SessionContext, query: &str) -> String {
    match ctx.sql(query).await {
        Err(e) => e.to_string(),
        Ok(frame) => frame.collect().await.unwrap_err().to_string(),
    }
}

#[tokio::test]
async fn window_functions_reject_bad_arguments() {
    let ctx = SessionContext::new();
    bf_indicators::register(&ctx);
    ctx.register_batch("ohlcv", input_batch()).unwrap();
    let over = "OVER (PARTITION BY symbol ORDER BY date)";
    let wrong_count = query_error(&ctx, &format!("SELECT rsi(close) {over} FROM ohlcv")).await;
    assert!(wrong_count.contains("rsi(value, period)"), "{wrong_count}");
    let zero = query_error(&ctx, &format!("SELECT sma(close, 0) {over} FROM ohlcv")).await;
    assert!(
        zero.contains("period must be a constant positive integer"),
        "{zero}"
    );
    let text = query_error(&ctx, &format!("SELECT sma(symbol, 5) {over} FROM ohlcv")).await;
    assert!(text.contains("value must be numeric"), "{text}");
}

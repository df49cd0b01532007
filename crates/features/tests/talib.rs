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

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(format!("{FIXTURES}/{name}")).expect("fixture");
    let header = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn day_number(date: &str) -> i32 {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// input.csv as an ohlcv-shaped batch, rows shuffled so the build must order them.
fn input_batch() -> RecordBatch {
    let (_, mut rows) = read_csv("input.csv");
    rows.reverse();
    let third = rows.len() / 3;
    rows.rotate_left(third);
    let text = |i: usize| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i].clone()))) as ArrayRef;
    let float = |i: usize| Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r[i].parse::<f64>().unwrap()))) as ArrayRef;
    let columns = vec![
        text(0),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "1d"))) as ArrayRef,
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| day_number(&r[1])))),
        float(2),
        float(3),
        float(4),
        float(5),
        float(6),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r[7].parse::<i64>().unwrap()))),
    ];
    let schema = Schema::new(
        ["symbol", "interval", "date", "open", "high", "low", "close", "adj_close", "volume"]
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

#[test]
fn every_feature_equals_talib() {
    let batches = compute_features(&input_batch(), Stamp { ohlcv_version: 0, computed_at: 0 }).unwrap();
    let (header, expected_rows) = read_csv("expected.csv");
    let mut expected: HashMap<(String, i32), HashMap<&str, Option<f64>>> = HashMap::new();
    for row in &expected_rows {
        let values = header[2..]
            .iter()
            .zip(&row[2..])
            .map(|(name, v)| (name.as_str(), (!v.is_empty()).then(|| v.parse::<f64>().unwrap())))
            .collect();
        expected.insert((row[0].clone(), day_number(&row[1])), values);
    }
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), expected.len());

    let compared: Vec<&str> = ["adj_open", "adj_high", "adj_low", "adj_close"]
        .into_iter()
        .chain(FEATURE_COLUMNS)
        .collect();
    assert!(compared.iter().all(|c| header.iter().any(|h| h == c)), "fixture covers every column");
    let (mut checked, mut failures) = (0, Vec::new());
    for batch in &batches {
        let symbols = batch.column_by_name("symbol").unwrap().as_string::<i32>();
        let dates = batch.column_by_name("date").unwrap().as_primitive::<Date32Type>();
        for row in 0..batch.num_rows() {
            let want = &expected[&(symbols.value(row).to_string(), dates.value(row))];
            let bb_middle = want["bb_middle"];
            for name in &compared {
                let column = batch.column_by_name(name).unwrap();
                assert_eq!(column.data_type(), &DataType::Float64);
                let column = column.as_primitive::<Float64Type>();
                let got = (!column.is_null(row)).then(|| column.value(row));
                let ok = match (got, want[name]) {
                    (None, None) => true,
                    (Some(g), Some(w)) => {
                        assert!(g.is_finite(), "{name} leaks {g}");
                        (g - w).abs() <= 1e-9 * w.abs().max(scale_for(name, bb_middle))
                    }
                    _ => false,
                };
                checked += 1;
                if !ok {
                    failures.push(format!("{} {} {name}: bf {got:?}, TA-Lib {:?}", symbols.value(row), dates.value(row), want[name]));
                }
            }
        }
    }
    assert!(checked > 20_000);
    assert!(failures.is_empty(), "{} mismatches, first: {:#?}", failures.len(), &failures[..failures.len().min(15)]);
}

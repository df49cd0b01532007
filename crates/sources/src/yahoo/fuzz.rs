//! Property tests of the Yahoo decoder: any response, well-formed or not,
//! decodes to an error naming the symbol or to valid bars and actions; it never
//! panics. Failing inputs are kept in `proptest-regressions/`.

use bf_core::Interval;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::convert::convert;
use super::wire::ChartResponse;

const ZONES: &[&str] = &[
    "America/New_York",
    "Australia/Sydney",
    "UTC",
    "Mars/Olympus",
    "",
];

fn price() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (1.0f64..1000.0).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(0)),
        Just(json!(-1.5)),
    ]
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 1_600_000_000i64..1_600_900_000,
        1 => any::<i64>(),
        1 => Just(0)
    ]
}

fn events() -> impl Strategy<Value = Value> {
    let amount = prop_oneof![
        (0.01f64..5.0).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(-0.5))
    ];
    (
        prop::collection::vec((timestamp(), amount), 0..3),
        prop::collection::vec((timestamp(), any::<f64>(), any::<f64>()), 0..3),
    )
        .prop_map(|(dividends, splits)| {
            let dividends: serde_json::Map<String, Value> = dividends
                .into_iter()
                .map(|(date, amount)| (date.to_string(), json!({"amount": amount, "date": date})))
                .collect();
            let splits: serde_json::Map<String, Value> = splits
                .into_iter()
                .map(|(date, n, d)| {
                    (
                        date.to_string(),
                        json!({"date": date, "numerator": n, "denominator": d}),
                    )
                })
                .collect();
            json!({"dividends": dividends, "splits": splits})
        })
}

fn volume() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (0i64..10_000_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from)
    ]
}

/// One bar's values: timestamp, open, high, low, close, volume, adjclose.
fn row() -> impl Strategy<Value = (i64, [Value; 4], Value, Value)> {
    (
        timestamp(),
        [price(), price(), price(), price()],
        volume(),
        price(),
    )
}

fn response() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(ZONES),
        prop::collection::vec(row(), 0..8),
        // Usually every array has one value per timestamp; sometimes one is short.
        prop::option::weighted(0.2, 0usize..6),
        events(),
    )
        .prop_map(|(zone, rows, short, events)| {
            let mut columns: Vec<Vec<Value>> = vec![Vec::new(); 7];
            for (ts, [open, high, low, close], volume, adjclose) in rows {
                for (column, value) in columns
                    .iter_mut()
                    .zip([Value::from(ts), open, high, low, close, volume, adjclose])
                {
                    column.push(value);
                }
            }
            if let Some(index) = short {
                columns[index + 1].pop();
            }
            let [ts, open, high, low, close, volume, adjclose] =
                columns.try_into().expect("seven columns");
            json!({"chart": {"result": [{
                "meta": {"symbol": "X", "exchangeTimezoneName": zone},
                "timestamp": ts,
                "events": events,
                "indicators": {
                    "quote": [{"open": open, "high": high, "low": low, "close": close, "volume": volume}],
                    "adjclose": [{"adjclose": adjclose}]
                }
            }], "error": null}})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_response_decodes_to_valid_bars_or_an_error(
        body in response(),
        intraday in any::<bool>(),
    ) {
        let interval = if intraday { Interval::M5 } else { Interval::D1 };
        let Ok(parsed) = serde_json::from_value::<ChartResponse>(body) else {
            return Ok(());
        };
        let Some(result) = parsed.chart.result.and_then(|mut r| r.pop()) else {
            return Ok(());
        };
        match convert("X", &result, interval) {
            Err(err) => prop_assert!(err.to_string().contains('X'), "{err}"),
            Ok(converted) => {
                for bar in &converted.bars {
                    for price in [bar.open, bar.high, bar.low, bar.close, bar.adj_close] {
                        prop_assert!(price.is_finite() && price > 0.0, "{bar:?}");
                    }
                    prop_assert!(bar.low <= bar.high && bar.volume >= 0, "{bar:?}");
                }
                for action in &converted.actions {
                    prop_assert!(action.value.is_finite() && action.value > 0.0, "{action:?}");
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = serde_json::from_slice::<ChartResponse>(&body);
    }
}

//! `bf features build | show` and the indicator functions of `bf sql`.

use super::Workspace;

const DEMO_SMALL: [&str; 2] = ["--symbol-list", "demo_small"];

/// Stored features that differ from the SQL window function over `ohlcv`.
fn mismatches(ws: &Workspace, column: &str, call: &str) -> i64 {
    ws.scalar(&format!(
        "SELECT count(*) FROM features f JOIN (SELECT symbol, date, {call} \
         OVER (PARTITION BY symbol ORDER BY date) AS v FROM ohlcv) o \
         ON f.symbol = o.symbol AND f.date = o.date WHERE f.{column} IS DISTINCT FROM o.v"
    ))
}

#[test]
fn build_is_incremental_and_a_no_op_when_nothing_changed() {
    let ws = Workspace::new();
    ws.fetch_synthetic(&DEMO_SMALL, "2018-01-01", "2023-12-29");
    let first = ws.json(&["features", "build", "--symbol-list", "demo_small"]);
    assert_eq!(first["series_built"], 5);
    assert_eq!(first["inserted"].as_i64(), Some(ws.rows()));
    assert_eq!(ws.scalar("SELECT count(*) FROM features"), ws.rows());

    let again = ws.run(&["features", "build", "--symbol-list", "demo_small"]);
    assert!(again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("up to date") && said.contains("nothing to build"),
        "{said}"
    );
    let versions = ws.scalar("SELECT count(DISTINCT ohlcv_version) FROM features");
    assert_eq!(versions, 1, "the no-op wrote nothing");

    // Five more days for one symbol: only that symbol is recomputed, and only
    // its new rows are written (the old ones come out identical).
    ws.fetch_synthetic(&["--symbols", "MSFT"], "2018-01-01", "2024-01-05");
    let third = ws.json(&["features", "build", "--symbol-list", "demo_small"]);
    assert_eq!(third["series_built"], 1);
    assert_eq!(third["series_up_to_date"], 4);
    assert_eq!(third["inserted"], 5);
    assert_eq!(third["updated"], 0);
    assert_eq!(ws.scalar("SELECT count(*) FROM features"), ws.rows());
    assert_eq!(
        ws.scalar("SELECT count(*) FROM features WHERE symbol = 'MSFT' AND date > '2023-12-29'"),
        5
    );
}

#[test]
fn stored_features_equal_the_sql_window_functions() {
    let ws = Workspace::new();
    ws.fetch_synthetic(&DEMO_SMALL, "2018-01-01", "2023-12-29");
    ws.ok(&["features", "build", "--symbol-list", "demo_small"]);
    assert_eq!(mismatches(&ws, "rsi_14", "rsi(adj_close, 14)"), 0);
    assert_eq!(
        mismatches(&ws, "macd_signal", "macd_signal(adj_close, 12, 26, 9)"),
        0
    );
    assert_eq!(mismatches(&ws, "obv", "obv(adj_close, volume)"), 0);
    assert_eq!(mismatches(&ws, "sma_200", "sma(adj_close, 200)"), 0);
    // The check can fail: a different period differs.
    assert!(mismatches(&ws, "rsi_14", "rsi(adj_close, 13)") > 0);
    // Lookback rows are null, never NaN.
    assert_eq!(
        ws.scalar("SELECT count(*) FROM features WHERE sma_200 IS NULL"),
        5 * 199
    );
    assert_eq!(
        ws.scalar("SELECT count(*) FROM features WHERE isnan(sma_200) OR isnan(rsi_14)"),
        0
    );
}

#[test]
fn show_prints_one_row_per_feature_and_names_a_missing_symbol() {
    let ws = Workspace::new();
    ws.fetch_synthetic(&DEMO_SMALL, "2018-01-01", "2023-12-29");
    ws.ok(&["features", "build", "--symbols", "AAPL"]);
    let table = ws.ok(&["features", "show", "AAPL", "--last", "3"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("2023-12-29") && lines[0].contains("2023-12-27"),
        "{table}"
    );
    assert!(lines.iter().any(|l| l.trim_start().starts_with("rsi_14")));
    assert_eq!(
        lines.len(),
        2 + 5 + 21,
        "header, rule, prices and volume, features"
    );

    let missing = ws.run(&["features", "show", "MSFT"]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "an error, not a partial result"
    );
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("no features for MSFT"), "{said}");

    let unknown = ws.run(&["features", "build", "--symbols", "AAPL,NOPE"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("NOPE: no bars"));
}

#[test]
fn building_before_any_fetch_says_what_to_do() {
    let ws = Workspace::new();
    let output = ws.run(&["features", "build", "--symbols", "AAPL"]);
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("no ohlcv table") && said.contains("hint: fetch"),
        "{said}"
    );
}

#[test]
fn sql_lists_the_indicator_functions() {
    let ws = Workspace::new();
    let list = ws.ok(&["sql", "--functions"]);
    for usage in [
        "rsi(value, period)",
        "macd(value, fast, slow, signal)",
        "atr(high, low, close, period)",
    ] {
        assert!(list.contains(usage), "{usage} missing from\n{list}");
    }
}

/// Every stored feature except provenance, in key order.
fn features_content(ws: &Workspace) -> String {
    let columns = ws.ok(&["sql", "SELECT * FROM features LIMIT 0", "--format", "csv"]);
    let compared: Vec<String> = columns
        .trim()
        .split(',')
        .filter(|c| !["ohlcv_version", "computed_at"].contains(c))
        .map(|c| format!("\"{c}\""))
        .collect();
    ws.ok(&[
        "sql",
        &format!(
            "SELECT {} FROM features ORDER BY symbol, \"interval\", date",
            compared.join(", ")
        ),
        "--format",
        "csv",
    ])
}

#[test]
fn incremental_builds_equal_a_full_build_across_a_readjustment() {
    let incremental = Workspace::new();
    let fetch = |ws: &Workspace, end: &str| {
        ws.fetch_synthetic(&DEMO_SMALL, "2018-01-01", end);
    };
    fetch(&incremental, "2023-06-30");
    incremental.ok(&["features", "build", "--symbol-list", "demo_small"]);
    // Dividends in the next half year re-adjust the whole history of their symbols.
    fetch(&incremental, "2023-12-29");
    let second = incremental.json(&["features", "build", "--symbol-list", "demo_small"]);
    assert!(second["updated"].as_i64().unwrap() > 1000, "{second}");

    let full = Workspace::new();
    fetch(&full, "2023-12-29");
    full.ok(&["features", "build", "--symbol-list", "demo_small"]);
    assert_eq!(features_content(&incremental), features_content(&full));
}

//! `bf data fetch` from Yahoo, against a local server that speaks Yahoo's chart
//! API (real JSON, null rows, events, 404 body) and injects faults.

use std::collections::HashSet;
use std::time::Duration;

use bf_testkit::yahoo_server::{Server, ServerConfig};
use chrono::NaiveDate;

use super::Workspace;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn fetch_args<'a>(server_url: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "data",
        "fetch",
        "--yahoo-url",
        server_url,
        "--rate-limit",
        "0",
    ];
    args.extend_from_slice(rest);
    args
}

/// Stored bars as (symbol, date, open, high, low, close, adj_close, volume).
type Row = (String, String, f64, f64, f64, f64, f64, i64);

fn stored_rows(ws: &Workspace, symbol_filter: &str) -> Vec<Row> {
    let csv = ws.ok(&[
        "sql",
        &format!(
            "SELECT symbol, CAST(date AS VARCHAR) AS d, open, high, low, close, adj_close, volume \
             FROM ohlcv {symbol_filter} ORDER BY symbol, date"
        ),
        "--format",
        "csv",
    ]);
    csv.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
                f[6].parse().unwrap(),
                f[7].parse().unwrap(),
            )
        })
        .collect()
}

fn served_rows(server: &Server, symbol: &str, start: NaiveDate, end: NaiveDate) -> Vec<Row> {
    server
        .served_daily(symbol, start)
        .into_iter()
        .filter(|b| b.date <= end)
        .map(|b| {
            (
                symbol.to_string(),
                b.date.to_string(),
                b.open,
                b.high,
                b.low,
                b.close,
                b.adj_close,
                b.volume,
            )
        })
        .collect()
}

#[test]
fn demo_large_survives_throttling_errors_and_cut_bodies_storing_exactly_what_was_served() {
    let ws = Workspace::new();
    let mut config = ServerConfig::new(date(2024, 12, 31));
    config.unknown = HashSet::from(["IWM".to_string()]);
    config.null_every = Some(97);
    config.throttle_every = Some(5);
    config.retry_after_seconds = 1;
    config.error_rate = 0.05;
    config.truncate_every = Some(13);
    let server = Server::spawn(config, 0).unwrap();
    let url = server.url();
    let output = ws.run(&fetch_args(
        &url,
        &[
            "--symbol-list",
            "demo_large",
            "--start",
            "2020-01-01",
            "--end",
            "2024-12-31",
            "--retries",
            "8",
        ],
    ));
    let said = String::from_utf8_lossy(&output.stderr);
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "one symbol failed:\n{said}");
    assert!(
        said.contains("IWM: unknown or delisted symbol"),
        "the unknown symbol is named:\n{said}"
    );
    assert!(table.contains("FAILED"), "{table}");

    let requests = server.requests();
    let statuses = |code: u16| requests.iter().filter(|r| r.status == code).count();
    assert!(statuses(429) >= 20, "429s: {}", statuses(429));
    assert!(statuses(500) >= 1, "500s: {}", statuses(500));
    assert_eq!(statuses(404), 1, "a 404 is final, not retried");
    assert!(
        requests
            .iter()
            .all(|r| r.user_agent.starts_with("Mozilla/5.0"))
    );
    assert!(requests.iter().all(|r| r.interval == "1d"));

    let symbols: Vec<String> = ws
        .ok(&["symbols", "show", "demo_large"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '.' || c == '-')
        })
        .collect();
    assert!(symbols.len() > 100, "{symbols:?}");
    let mut expected = Vec::new();
    let mut symbols_sorted = symbols.clone();
    symbols_sorted.sort();
    for symbol in symbols_sorted.iter().filter(|s| *s != "IWM") {
        expected.extend(served_rows(
            &server,
            symbol,
            date(2020, 1, 1),
            date(2024, 12, 31),
        ));
    }
    let stored = stored_rows(&ws, "");
    assert_eq!(stored.len(), expected.len(), "row count");
    assert!(
        stored == expected,
        "stored bars equal the served bars, row for row"
    );
    // Null rows were served, and none was stored as zeros.
    assert!(said.contains("fetched 105 of 106 symbols"), "{said}");
    assert_eq!(
        ws.scalar("SELECT count(*) FROM ohlcv WHERE open <= 0 OR close <= 0"),
        0
    );
    let skipped: i64 = table
        .lines()
        .filter(|l| l.contains("AAPL"))
        .map(|l| {
            l.split_whitespace()
                .nth(2)
                .unwrap()
                .replace(',', "")
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert!(skipped > 0, "AAPL's null rows are counted:\n{table}");
}

#[test]
fn incremental_fetch_asks_only_from_the_last_bar_and_keeps_adjusted_close_consistent() {
    let (d1, d2) = (date(2024, 3, 28), date(2024, 7, 31));
    let symbols = "AAPL,MSFT,KO,PG,XOM,JNJ";
    let server = Server::spawn(ServerConfig::new(d1), 0).unwrap();
    let url = server.url();
    let ws = Workspace::new();
    let range = |end: NaiveDate| {
        vec![
            "--symbols".to_string(),
            symbols.to_string(),
            "--start".to_string(),
            "2023-01-01".to_string(),
            "--end".to_string(),
            end.to_string(),
        ]
    };
    let run = |ws: &Workspace, end: NaiveDate| {
        let rest = range(end);
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        ws.json(&fetch_args(&url, &rest))
    };
    run(&ws, d1);

    // A few months later, with dividends paid in between.
    server.set_as_of(d2);
    server.clear_requests();
    let second = run(&ws, d2);
    let readjusted: Vec<&str> = second["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["readjusted"] == true)
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert!(
        !readjusted.is_empty(),
        "some symbol paid a dividend: {second}"
    );
    let day_before_d1 = d1
        .pred_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let requests = server.requests();
    for symbol in symbols.split(',') {
        let asked: Vec<i64> = requests
            .iter()
            .filter(|r| r.symbol == symbol)
            .map(|r| r.period1)
            .collect();
        assert_eq!(
            asked[0], day_before_d1,
            "{symbol} asks from its last stored bar"
        );
        if readjusted.contains(&symbol) {
            assert_eq!(asked.len(), 2, "{symbol} then fetches its whole history");
            assert!(asked[1] < day_before_d1);
        } else {
            assert_eq!(asked.len(), 1, "{symbol}: {asked:?}");
        }
    }

    // Every stored row equals what one full fetch at d2 stores.
    let fresh = Workspace::new();
    run(&fresh, d2);
    assert_eq!(stored_rows(&ws, ""), stored_rows(&fresh, ""));
    assert_eq!(
        ws.scalar("SELECT count(*) FROM corporate_actions"),
        fresh.scalar("SELECT count(*) FROM corporate_actions")
    );
    assert!(ws.scalar("SELECT count(*) FROM corporate_actions WHERE kind = 'dividend'") > 0);

    // Up to date: one request per symbol, for the overlapping bar only.
    server.clear_requests();
    let third = run(&ws, d2);
    assert_eq!(third["ohlcv"]["committed"], false, "{third}");
    let requests = server.requests();
    assert_eq!(requests.len(), 6, "{requests:?}");
    let day_before_d2 = d2
        .pred_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    assert!(requests.iter().all(|r| r.period1 == day_before_d2));
}

#[test]
fn daily_bars_carry_the_exchange_local_date() {
    // A Sydney session opens at 10:00 local: 23:00 UTC the day before.
    let server = Server::spawn(ServerConfig::new(date(2024, 1, 31)), 0).unwrap();
    let url = server.url();
    let ws = Workspace::new();
    ws.ok(&fetch_args(
        &url,
        &[
            "--symbols",
            "BHP.AX",
            "--start",
            "2024-01-08",
            "--end",
            "2024-01-12",
        ],
    ));
    let dates = ws.ok(&[
        "sql",
        "SELECT CAST(date AS VARCHAR) AS d FROM ohlcv ORDER BY date",
        "--format",
        "csv",
    ]);
    assert_eq!(
        dates.lines().skip(1).collect::<Vec<_>>(),
        vec![
            "2024-01-08",
            "2024-01-09",
            "2024-01-10",
            "2024-01-11",
            "2024-01-12"
        ]
    );
    let served = server.requests()[0].clone();
    assert_eq!(served.symbol, "BHP.AX");
}

#[test]
fn slow_answers_time_out_and_are_retried() {
    let mut config = ServerConfig::new(date(2024, 6, 28));
    config.slow_every = Some(2);
    config.slow_delay = Duration::from_secs(3);
    let server = Server::spawn(config, 0).unwrap();
    let url = server.url();
    let ws = Workspace::new();
    let report = ws.json(&fetch_args(
        &url,
        &[
            "--symbols",
            "AAPL,MSFT,KO",
            "--start",
            "2024-01-01",
            "--end",
            "2024-06-28",
            "--timeout",
            "1",
        ],
    ));
    assert!(report["retries"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["error"].is_null())
    );
    assert_eq!(
        stored_rows(&ws, "WHERE symbol = 'KO'"),
        served_rows(&server, "KO", date(2024, 1, 1), date(2024, 6, 28))
    );
}

#[test]
fn intraday_requests_are_split_and_too_old_a_start_is_refused() {
    let today = chrono::Utc::now().date_naive();
    let server = Server::spawn(ServerConfig::new(today), 0).unwrap();
    let url = server.url();
    let ws = Workspace::new();
    let start = (today - chrono::TimeDelta::days(20)).to_string();
    let end = (today - chrono::TimeDelta::days(1)).to_string();
    ws.ok(&fetch_args(
        &url,
        &[
            "--symbols",
            "AAPL",
            "--interval",
            "1m",
            "--start",
            &start,
            "--end",
            &end,
        ],
    ));
    let requests = server.requests();
    assert!(
        requests.len() >= 3,
        "20 days of 1m bars take 7-day requests: {requests:?}"
    );
    assert!(requests.iter().all(|r| r.period2 - r.period1 <= 7 * 86_400));
    let rows = ws.scalar("SELECT count(*) FROM ohlcv WHERE \"interval\" = '1m'");
    let distinct = ws.scalar("SELECT count(DISTINCT ts) FROM ohlcv");
    assert!(rows > 390 * 10, "{rows}");
    assert_eq!(rows, distinct, "one row per bar start");
    assert_eq!(
        ws.scalar("SELECT count(*) FROM ohlcv WHERE date <> CAST(ts AS DATE)"),
        0,
        "a New York session falls on one UTC date, its local date"
    );

    let old = (today - chrono::TimeDelta::days(45)).to_string();
    let output = ws.run(&fetch_args(
        &url,
        &["--symbols", "AAPL", "--interval", "1m", "--start", &old],
    ));
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("1m bars for the last 30 days only"), "{said}");
}

//! `bf signals generate | show`.

use super::Workspace;

fn prepared() -> Workspace {
    let ws = Workspace::new();
    ws.fetch_synthetic(&["--symbol-list", "demo_small"], "2016-01-01", "2023-12-29");
    ws.ok(&["features", "build", "--symbol-list", "demo_small"]);
    ws
}

#[test]
fn generating_twice_adds_nothing_the_second_time() {
    let ws = prepared();
    let first = ws.json(&["signals", "generate", "--symbol-list", "demo_small"]);
    let fired: i64 = first["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["buy"].as_i64().unwrap() + s["sell"].as_i64().unwrap())
        .sum();
    assert!(fired > 100, "{first}");
    assert_eq!(first["signals"]["inserted"].as_i64(), Some(fired));
    assert_eq!(ws.scalar("SELECT count(*) FROM signals"), fired);

    let again = ws.run(&["signals", "generate", "--symbol-list", "demo_small"]);
    assert!(again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("no new or changed signals"), "{said}");
    assert_eq!(ws.scalar("SELECT count(DISTINCT run_id) FROM signals"), 1);

    // Crossings as SPEC defines them: previous row at or below, this row above.
    assert_eq!(
        ws.scalar(
            "SELECT count(*) FROM signals s JOIN (SELECT symbol, date, sma_20, sma_50, \
             lag(sma_20) OVER (PARTITION BY symbol ORDER BY date) AS p20, \
             lag(sma_50) OVER (PARTITION BY symbol ORDER BY date) AS p50 FROM features) f \
             ON s.symbol = f.symbol AND s.date = f.date \
             WHERE s.strategy = 'sma_cross' AND s.side = 'BUY' AND NOT (f.p20 <= f.p50 AND f.sma_20 > f.sma_50)"
        ),
        0
    );
    let shown = ws.ok(&[
        "signals",
        "show",
        "--strategy",
        "golden_cross",
        "--limit",
        "3",
    ]);
    assert_eq!(shown.lines().count(), 2 + 3, "{shown}");
    assert!(shown.lines().skip(2).all(|l| l.contains("golden_cross")));
}

#[test]
fn a_user_strategy_fires_exactly_where_its_condition_holds() {
    let ws = prepared();
    let file = ws.path().join("mine.toml");
    std::fs::write(
        &file,
        "[[strategy]]\nname = \"mine\"\nrule = \"sql\"\n\
         buy = \"rsi_14 < 35 AND close > sma_200\"\n\
         sell = \"prev_macd > prev_macd_signal AND macd <= macd_signal\"\n",
    )
    .unwrap();
    ws.ok(&[
        "signals",
        "generate",
        "--symbol-list",
        "demo_small",
        "--strategies",
        file.to_str().unwrap(),
    ]);
    let conditions = "(SELECT symbol, date, (rsi_14 < 35 AND adj_close > sma_200) IS TRUE AS b, \
         (lag(macd) OVER w > lag(macd_signal) OVER w AND macd <= macd_signal) IS TRUE AS s \
         FROM features WINDOW w AS (PARTITION BY symbol ORDER BY date))";
    let expected_buys = ws.scalar(&format!(
        "SELECT count(*) FROM {conditions} WHERE b AND NOT s"
    ));
    let expected_sells = ws.scalar(&format!(
        "SELECT count(*) FROM {conditions} WHERE s AND NOT b"
    ));
    assert!(
        expected_buys > 10 && expected_sells > 10,
        "{expected_buys} {expected_sells}"
    );
    let stored = |side: &str| {
        ws.scalar(&format!(
            "SELECT count(*) FROM signals WHERE strategy = 'mine' AND side = '{side}'"
        ))
    };
    assert_eq!(stored("BUY"), expected_buys);
    assert_eq!(stored("SELL"), expected_sells);
    // …and on no other row.
    assert_eq!(
        ws.scalar(&format!(
            "SELECT count(*) FROM signals x JOIN {conditions} c ON x.symbol = c.symbol AND x.date = c.date \
             WHERE x.strategy = 'mine' AND ((x.side = 'BUY' AND NOT c.b) OR (x.side = 'SELL' AND NOT c.s))"
        )),
        0
    );
    assert_eq!(ws.scalar("SELECT count(DISTINCT strategy) FROM signals"), 1);
}

#[test]
fn a_bad_strategy_fails_before_any_work() {
    let ws = prepared();
    let file = ws.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[strategy]]\nname = \"typo\"\nrule = \"sql\"\nbuy = \"rsi_41 < 30\"\nsell = \"rsi_14 > 70\"\n",
    )
    .unwrap();
    let output = ws.run(&[
        "signals",
        "generate",
        "--symbol-list",
        "demo_small",
        "--strategies",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("bad.toml") && said.contains("strategy \"typo\"") && said.contains("rsi_41"),
        "{said}"
    );
    let tables = ws.ok(&["data", "status"]);
    assert!(
        !ws.path().join("lake/signals").exists(),
        "nothing written\n{tables}"
    );
}

#[test]
fn run_does_every_stage_and_a_second_run_adds_nothing() {
    let ws = Workspace::new();
    let args = [
        "run",
        "--source",
        "synthetic",
        "--symbol-list",
        "demo_small",
        "--start",
        "2018-01-01",
        "--end",
        "2023-12-29",
    ];
    let first = ws.run(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("hit 5") && stdout.contains("macd_cross"),
        "stats table:\n{stdout}"
    );
    let signals = ws.scalar("SELECT count(*) FROM signals");
    assert!(signals > 100);
    assert_eq!(ws.scalar("SELECT count(*) FROM features"), ws.rows());

    let second = ws.run(&args);
    assert!(second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains(
            "0 new bars, 0 feature rows written, 0 new signals — nothing new, nothing written"
        ),
        "{said}"
    );
    assert_eq!(ws.scalar("SELECT count(*) FROM signals"), signals);
}

#[test]
fn run_signals_from_features_in_memory_equal_those_read_back() {
    let ws = Workspace::new();
    let run = |symbols: &str| {
        ws.ok(&[
            "run",
            "--source",
            "synthetic",
            "--start",
            "2018-01-01",
            "--end",
            "2023-12-29",
            "--symbols",
            symbols,
        ]);
    };
    // The second run builds two series (handed over in memory) and reads
    // the two built by the first.
    run("AAPL,MSFT");
    run("AAPL,MSFT,NVDA,AMZN");
    let stored = ws.scalar("SELECT count(*) FROM signals");
    assert!(stored > 100);
    assert_eq!(
        ws.scalar("SELECT count(DISTINCT symbol) FROM signals WHERE symbol IN ('NVDA', 'AMZN')"),
        2
    );
    let again = ws.run(&["signals", "generate", "--symbols", "AAPL,MSFT,NVDA,AMZN"]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && said.contains("no new or changed signals"),
        "{said}"
    );
    assert_eq!(ws.scalar("SELECT count(*) FROM signals"), stored);
}

#[test]
fn changing_a_strategy_removes_the_signals_it_no_longer_fires() {
    let ws = prepared();
    ws.ok(&["signals", "generate", "--symbol-list", "demo_small"]);
    let builtin = ws.scalar("SELECT count(*) FROM signals");
    let file = ws.path().join("mine.toml");
    let generate_with = |threshold: u32, selection: &[&str]| {
        std::fs::write(
            &file,
            format!("[[strategy]]\nname = \"mine\"\nrule = \"sql\"\nbuy = \"rsi_14 < {threshold}\"\nsell = \"false\"\n"),
        )
        .unwrap();
        let mut args = vec![
            "signals",
            "generate",
            "--strategies",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(selection);
        let output = ws.run(&args);
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let mine = |symbol: &str| {
        ws.scalar(&format!(
            "SELECT count(*) FROM signals WHERE strategy = 'mine' AND symbol = '{symbol}'"
        ))
    };
    let holds = |symbol: &str, threshold: u32| {
        ws.scalar(&format!(
            "SELECT count(*) FROM features WHERE symbol = '{symbol}' AND rsi_14 < {threshold}"
        ))
    };

    generate_with(35, &["--symbol-list", "demo_small"]);
    assert_eq!(mine("AAPL"), holds("AAPL", 35));
    let said = generate_with(30, &["--symbol-list", "demo_small"]);
    assert!(said.contains("no longer firing (removed)"), "{said}");
    for symbol in ["AAPL", "MSFT"] {
        assert!(holds(symbol, 30) < holds(symbol, 35));
        assert_eq!(
            mine(symbol),
            holds(symbol, 30),
            "{symbol}: old signals removed"
        );
    }
    // Only the named symbols are replaced; other strategies are untouched.
    generate_with(25, &["--symbols", "AAPL"]);
    assert_eq!(mine("AAPL"), holds("AAPL", 25));
    assert_eq!(mine("MSFT"), holds("MSFT", 30));
    assert_eq!(
        ws.scalar("SELECT count(*) FROM signals WHERE strategy <> 'mine'"),
        builtin
    );
}

//! What a user sees: the `bf` binary run in a temporary folder against a real
//! Delta lake on disk.

mod charts;
mod cluster;
mod elasticsearch;
mod features;
mod hostile;
mod infra;
mod kibana;
mod reliability;
mod s3;
mod signals;
mod stream;
mod watch;
mod yahoo;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bf"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("BF_LAKE", self.path().join("lake"));
        command
    }

    /// `bf` on another lake (an `s3://` one gets the `AWS_*` settings).
    fn command_on(&self, lake: &str, args: &[&str]) -> Command {
        let mut command = self.command(args);
        command.env("BF_LAKE", lake);
        for (key, value) in std::env::vars().filter(|(key, _)| key.starts_with("AWS_")) {
            command.env(key, value);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and expects exit 0, returning stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "bf {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// `bf data fetch --source synthetic` of `selection` (`--symbols A,B` or
    /// `--symbol-list NAME`) from `start` to `end`.
    fn fetch_synthetic(&self, selection: &[&str], start: &str, end: &str) -> String {
        let mut args = vec!["data", "fetch", "--source", "synthetic"];
        args.extend_from_slice(selection);
        args.extend_from_slice(&["--start", start, "--end", end]);
        self.ok(&args)
    }

    /// One number from `bf sql`.
    fn scalar(&self, query: &str) -> i64 {
        let out = self.ok(&["sql", query, "--format", "csv"]);
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    fn rows(&self) -> i64 {
        self.scalar("SELECT count(*) FROM ohlcv")
    }

    fn duplicate_keys(&self) -> i64 {
        self.scalar(
            "SELECT count(*) FROM (SELECT symbol, \"interval\", date FROM ohlcv \
             GROUP BY symbol, \"interval\", date HAVING count(*) > 1)",
        )
    }

    /// Every stored value except ingestion time, in key order.
    fn content(&self) -> String {
        self.ok(&["sql", CONTENT_QUERY, "--format", "csv"])
    }
}

/// Every stored bar except its ingestion time, in key order.
const CONTENT_QUERY: &str = "SELECT symbol, \"interval\", date, ts, open, high, low, close, \
     adj_close, volume, source FROM ohlcv ORDER BY symbol, \"interval\", date";

const FETCH_AAA_BBB: &[&str] = &[
    "data",
    "fetch",
    "--source",
    "synthetic",
    "--symbols",
    "AAA,BBB",
    "--start",
    "2000-01-01",
    "--end",
    "2020-12-31",
];

#[test]
fn fetching_twice_leaves_the_table_unchanged() {
    let ws = Workspace::new();
    let first = ws.json(FETCH_AAA_BBB);
    let rows = ws.rows();
    assert_eq!(first["ohlcv"]["inserted"].as_i64().unwrap(), rows);
    assert!(rows > 10_000, "{rows}");
    let content = ws.content();

    let second = ws.json(FETCH_AAA_BBB);
    assert_eq!(second["ohlcv"]["inserted"], 0);
    assert_eq!(second["ohlcv"]["committed"], false);
    assert_eq!(ws.rows(), rows);
    assert_eq!(ws.duplicate_keys(), 0);
    assert_eq!(ws.content(), content);
}

#[test]
fn a_second_fetch_appends_only_the_new_days() {
    let ws = Workspace::new();
    let base = [
        "data",
        "fetch",
        "--source",
        "synthetic",
        "--symbols",
        "AAA",
        "--start",
        "2020-01-01",
    ];
    ws.ok(&[&base[..], &["--end", "2020-06-30"]].concat());
    let before = ws.rows();
    let second = ws.json(&[&base[..], &["--end", "2020-12-31"]].concat());
    let after = ws.rows();
    // A fetch of the whole range into an empty lake gives the same rows.
    let fresh = Workspace::new();
    fresh.ok(&[&base[..], &["--end", "2020-12-31"]].concat());
    assert_eq!(after, fresh.rows());
    assert_eq!(
        ws.content(),
        fresh.content(),
        "incremental equals full, adj_close included"
    );
    let inserted = second["ohlcv"]["inserted"].as_i64().unwrap();
    assert_eq!(inserted, after - before);
    if second["symbols"][0]["readjusted"] == false {
        // Only the overlap bar plus the new days were produced.
        assert_eq!(second["symbols"][0]["bars"].as_i64().unwrap(), inserted + 1);
    }
    assert_eq!(ws.duplicate_keys(), 0);
}

fn write_vendor_files(dir: &Path, symbols: usize, days: usize) -> PathBuf {
    let folder = dir.join("vendor");
    std::fs::create_dir_all(&folder).unwrap();
    for s in 0..symbols {
        let mut text = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
        let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
        for d in 0..days {
            let date = start + chrono::Duration::days(d as i64);
            let close = 100.0 + (d % 17) as f64 + s as f64;
            text.push_str(&format!(
                "{date},{:.2},{:.2},{:.2},{close:.2},{:.4},{}\n",
                close - 0.5,
                close + 1.0,
                close - 1.0,
                close * 0.9,
                1000 + d
            ));
        }
        std::fs::write(folder.join(format!("SYM{s}.csv")), text).unwrap();
    }
    folder
}

#[test]
fn importing_twice_leaves_the_table_unchanged() {
    let ws = Workspace::new();
    let folder = write_vendor_files(ws.path(), 3, 300);
    let folder = folder.to_str().unwrap();
    let first = ws.json(&["data", "import", folder]);
    assert_eq!(first["ohlcv"]["inserted"], 900);
    let content = ws.content();

    let second = ws.json(&["data", "import", folder]);
    assert_eq!(second["ohlcv"]["inserted"], 0);
    assert_eq!(second["ohlcv"]["updated"], 0);
    assert_eq!(second["ohlcv"]["files_added"], 0);
    assert_eq!(second["ohlcv"]["committed"], false);
    assert_eq!(ws.content(), content);
    assert_eq!(ws.duplicate_keys(), 0);
    assert_eq!(ws.scalar("SELECT count(DISTINCT symbol) FROM ohlcv"), 3);
}

#[test]
fn bad_rows_are_reported_and_strict_writes_nothing() {
    let ws = Workspace::new();
    let file = ws.path().join("MIX.csv");
    std::fs::write(
        &file,
        "date,open,high,low,close,volume\n2024-01-02,1,2,1,1.5,10\n2024-01-03,1,0.5,1,1,10\n2024-01-04,1,2,1,1.5,-1\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let strict = ws.run(&["data", "import", "--strict", file]);
    assert_eq!(strict.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("MIX.csv:3: high 0.5 < low 1"), "{stderr}");
    assert!(stderr.contains("MIX.csv:4: negative volume -1"), "{stderr}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert!(
        !ws.path().join("lake/ohlcv").exists(),
        "strict import created a table"
    );

    let lenient = ws.run(&["data", "import", file]);
    assert_eq!(
        lenient.status.code(),
        Some(1),
        "rejections make the exit code 1"
    );
    assert_eq!(ws.rows(), 1, "the good row is stored");
}

#[test]
fn a_killed_import_leaves_the_last_version_complete() {
    let ws = Workspace::new();
    let small = write_vendor_files(&ws.path().join("small"), 2, 50);
    ws.ok(&["data", "import", small.to_str().unwrap()]);
    let base_content = ws.content();
    let big = write_vendor_files(&ws.path().join("big"), 60, 2000);
    let big = big.to_str().unwrap();
    // The small files' bars are the first days of the big files' first two symbols.
    let total = 60 * 2000;

    for delay_ms in [30, 150, 400, 900] {
        let mut child = ws.command(&["data", "import", big]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        // Whenever the kill landed, the table is one of its committed versions, whole.
        let rows = ws.rows();
        assert!(
            rows == 100 || rows == total,
            "after kill at {delay_ms} ms: {rows} rows"
        );
        if rows == 100 {
            assert_eq!(ws.content(), base_content);
        }
        assert_eq!(ws.duplicate_keys(), 0);
    }
    // Running it again completes the import.
    ws.ok(&["data", "import", big]);
    assert_eq!(ws.rows(), total);
    assert_eq!(ws.duplicate_keys(), 0);
}

#[test]
fn sql_formats_and_errors() {
    let ws = Workspace::new();
    ws.ok(FETCH_AAA_BBB);
    let json: serde_json::Value = serde_json::from_str(&ws.ok(&[
        "sql",
        "SELECT symbol, count(*) AS n FROM ohlcv GROUP BY symbol ORDER BY symbol",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json[0]["symbol"], "AAA");
    assert_eq!(
        json[0]["n"].as_i64().unwrap() + json[1]["n"].as_i64().unwrap(),
        ws.rows()
    );
    let table = ws.ok(&["sql", "SELECT count(*) AS n FROM corporate_actions"]);
    assert!(table.contains(" n"), "{table}");

    let bad = ws.run(&["sql", "SELECT nope FROM ohlcv"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("nope"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn status_lists_every_symbol_with_a_total() {
    let ws = Workspace::new();
    let empty = ws.run(&["data", "status"]);
    assert!(empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("holds no bars yet"));
    ws.ok(FETCH_AAA_BBB);
    let out = ws.ok(&["data", "status"]);
    assert!(
        out.contains("AAA") && out.contains("BBB") && out.contains("total (2)"),
        "{out}"
    );
    let json = ws.json(&["data", "status"]);
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["source"], "synthetic");
}

#[test]
fn symbol_lists_are_shown_and_bad_ones_named_by_line() {
    let ws = Workspace::new();
    let out = ws.ok(&["symbols", "show", "demo_small"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA"]
    );
    let lists = ws.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(lists.join("mine.txt"), "ibm\nBAD SYMBOL\n").unwrap();
    let bad = ws
        .command(&["symbols", "show", "mine"])
        .env("BF_SYMBOL_LISTS", &lists)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("mine.txt:2") && stderr.contains("BAD SYMBOL"),
        "{stderr}"
    );
    let unknown = ws.run(&["data", "fetch", "--symbol-list", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("hint: `bf symbols list`"));
}

#[test]
fn config_shows_origins_and_masks_secrets() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join(".env"),
        "BF_SEED=9\nAWS_SECRET_ACCESS_KEY=supersecret\n",
    )
    .unwrap();
    let json = ws.json(&["config"]);
    let find = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|s| s["variable"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    assert_eq!(find("BF_SEED")["origin"], ".env");
    assert_eq!(find("BF_SEED")["value"], "9");
    assert_eq!(find("BF_LAKE")["origin"], "environment");
    assert_eq!(find("BF_START")["origin"], "default");
    assert_eq!(find("AWS_SECRET_ACCESS_KEY")["value"], "****");
    assert!(!ws.ok(&["config"]).contains("supersecret"));
}

#[test]
fn four_processes_fetching_overlapping_symbols_at_once_store_each_bar_once() {
    let alone = Workspace::new();
    alone.fetch_synthetic(&["--symbol-list", "demo_small"], "2015-01-01", "2020-12-31");
    let ws = Workspace::new();
    let local = ws.path().join("lake").to_str().unwrap().to_string();
    for lake in [local, s3::s3_lake_url()] {
        let sets = [
            "AAPL,MSFT,NVDA",
            "MSFT,NVDA,AMZN",
            "NVDA,AMZN,GOOGL",
            "GOOGL,AAPL,MSFT",
        ];
        let children: Vec<_> = sets
            .iter()
            .map(|symbols| {
                ws.command_on(
                    &lake,
                    &[
                        "data",
                        "fetch",
                        "--source",
                        "synthetic",
                        "--symbols",
                        symbols,
                        "--start",
                        "2015-01-01",
                        "--end",
                        "2020-12-31",
                    ],
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        let mut said = String::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            said.push_str(&String::from_utf8_lossy(&output.stderr));
            assert!(output.status.success(), "{lake}: {said}");
        }
        let content = ws
            .command_on(&lake, &["sql", CONTENT_QUERY, "--format", "csv"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&content.stdout),
            alone.content(),
            "{lake}: the union of the four fetches, every bar once\n{said}"
        );
    }
}

#[test]
fn lake_optimize_and_vacuum_keep_the_content() {
    let ws = Workspace::new();
    for (start, end) in [("2020-01-01", "2020-06-30"), ("2020-07-01", "2020-12-31")] {
        ws.fetch_synthetic(&["--symbols", "AAPL,MSFT"], start, end);
    }
    let before = ws.content();
    let optimized = ws.json(&["lake", "optimize", "--zorder"]);
    let ohlcv = optimized
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "ohlcv")
        .unwrap();
    assert!(ohlcv["files_removed"].as_u64().unwrap() >= 2, "{optimized}");
    assert_eq!(ohlcv["files_added"], 1);
    let vacuumed = ws.json(&["lake", "vacuum", "--retain-hours", "0"]);
    let deleted: u64 = vacuumed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["files_deleted"].as_u64().unwrap())
        .sum();
    assert!(deleted >= 2, "{vacuumed}");
    assert_eq!(ws.content(), before);
}

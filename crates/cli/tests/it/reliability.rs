//! What bf guarantees when used the wrong way: a read-only `bf sql`, writers
//! racing on a fresh lake, damaged logs, bad settings, full and read-only
//! disks. Each test failed before its fix.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::s3::s3_lake_url;
use crate::{CONTENT_QUERY, Workspace};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every statement that is not a query is refused in one line, on local disk
/// and on S3, and the lake is left exactly as it was (no commit, no file).
#[test]
fn bf_sql_refuses_everything_but_queries_and_the_lake_is_unchanged() {
    let ws = Workspace::new();
    let s3 = s3_lake_url();
    let outside = ws.path().join("copied.csv");
    let statements = [
        "INSERT INTO ohlcv SELECT * FROM ohlcv".to_string(),
        "INSERT INTO ohlcv (symbol, close) VALUES ('X', -1)".to_string(),
        format!("COPY (SELECT * FROM ohlcv) TO '{}'", outside.display()),
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "DROP TABLE ohlcv".to_string(),
        "DELETE FROM ohlcv".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "EXPLAIN ANALYZE INSERT INTO ohlcv SELECT * FROM ohlcv".to_string(),
        "SELECT 1; DROP TABLE ohlcv".to_string(),
    ];
    for lake in [ws.path().join("lake").to_str().unwrap().to_string(), s3] {
        let bf = |args: &[&str]| ws.command_on(&lake, args).output().unwrap();
        let fetch = bf(&[
            "data",
            "fetch",
            "--source",
            "synthetic",
            "--symbols",
            "AAA",
            "--start",
            "2021-01-01",
            "--end",
            "2021-03-31",
            "-q",
        ]);
        assert!(fetch.status.success(), "{}", stderr(&fetch));
        let content = bf(&["sql", CONTENT_QUERY, "--format", "csv"]).stdout;
        for statement in &statements {
            let output = bf(&["sql", statement]);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{lake}: {statement}: {err}");
            assert!(
                err.starts_with("error: bf sql runs queries only"),
                "{lake}: {statement}: {err}"
            );
        }
        assert!(!outside.exists(), "COPY wrote a file");
        assert_eq!(
            bf(&["sql", CONTENT_QUERY, "--format", "csv"]).stdout,
            content
        );
        let status = bf(&["data", "status", "--json"]);
        assert!(status.status.success(), "{}", stderr(&status));
    }
    let log = ws.path().join("lake/ohlcv/_delta_log");
    assert_eq!(
        std::fs::read_dir(log).unwrap().count(),
        2,
        "versions 0 and 1 only"
    );
}

#[test]
fn bf_sql_streams_every_row_as_csv_and_caps_the_table() {
    let ws = Workspace::new();
    let csv = ws.ok(&[
        "sql",
        "SELECT value FROM generate_series(1, 1000000)",
        "--format",
        "csv",
    ]);
    assert_eq!(csv.lines().count(), 1_000_001);
    assert_eq!(csv.lines().last(), Some("1000000"));
    let json: serde_json::Value = serde_json::from_str(&ws.ok(&[
        "sql",
        "SELECT value FROM generate_series(1, 3000)",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3000);
    assert_eq!(json[2999]["value"], 3000);

    let output = ws.run(&[
        "sql",
        "SELECT value FROM generate_series(1, 100000)",
        "--max-rows",
        "5",
    ]);
    assert!(output.status.success());
    assert!(stderr(&output).contains("only the first 5 rows are shown"));
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(table.lines().count(), 2 + 5, "{table}");
}

#[test]
fn bf_sql_refuses_an_expression_too_large_to_plan() {
    let ws = Workspace::new();
    let terms: Vec<String> = (0..5_000).map(|i| format!("x = {i}")).collect();
    let sql = format!(
        "SELECT count(*) FROM (VALUES (1)) t(x) WHERE {}",
        terms.join(" OR ")
    );
    let output = ws.run(&["sql", &sql]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("the expression has 10000 operators"), "{err}");
    assert!(err.contains("hint: replace long OR chains"), "{err}");
    // The same condition as an IN list is fine.
    let values: Vec<String> = (0..5_000).map(|i| i.to_string()).collect();
    let sql = format!(
        "SELECT count(*) FROM (VALUES (1)) t(x) WHERE x IN ({})",
        values.join(", ")
    );
    assert_eq!(ws.scalar(&sql), 1);
}

/// Four `bf features build` with overlapping symbols on a lake without a
/// features table, several times over: every one succeeds and each key is
/// stored once.
#[test]
fn concurrent_first_feature_builds_store_each_key_once() {
    let selections = ["AAA,BBB", "BBB,CCC", "CCC,AAA", "AAA,BBB,CCC"];
    for repetition in 0..5 {
        let ws = Workspace::new();
        ws.fetch_synthetic(&["--symbols", "AAA,BBB,CCC"], "2019-01-01", "2021-12-31");
        let builds: Vec<Child> = selections
            .iter()
            .map(|symbols| {
                ws.command(&["features", "build", "--symbols", symbols, "-q"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for build in builds {
            let output = build.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "repetition {repetition}: {}",
                stderr(&output)
            );
        }
        assert_eq!(
            ws.scalar("SELECT count(*) FROM features"),
            ws.rows(),
            "repetition {repetition}"
        );
        assert_eq!(
            ws.scalar(
                "SELECT count(*) FROM (SELECT symbol, \"interval\", date FROM features \
                 GROUP BY 1, 2, 3 HAVING count(*) > 1)"
            ),
            0,
            "repetition {repetition}"
        );
    }
}

/// An empty, truncated or garbled log entry is named with its table and file,
/// nothing is read past it or written on top of it, and the hint's recovery
/// (moving the entry aside) returns the table to its last good version.
#[test]
fn a_damaged_log_entry_is_named_and_never_read_or_written_over() {
    for damage in ["empty", "truncated", "garbage"] {
        let ws = Workspace::new();
        ws.fetch_synthetic(&["--symbols", "AAA"], "2021-01-01", "2021-03-31");
        let good = ws.content();
        ws.fetch_synthetic(&["--symbols", "BBB"], "2021-01-01", "2021-03-31");
        let log = ws.path().join("lake/ohlcv/_delta_log");
        let entry = log.join("00000000000000000002.json");
        let text = std::fs::read(&entry).unwrap();
        let damaged: Vec<u8> = match damage {
            "empty" => Vec::new(),
            "truncated" => text[..text.len() / 2].to_vec(),
            _ => b"\x00\x01 not json".to_vec(),
        };
        std::fs::write(&entry, &damaged).unwrap();

        for args in [
            vec!["sql", "SELECT count(*) FROM ohlcv"],
            vec![
                "data",
                "fetch",
                "--source",
                "synthetic",
                "--symbols",
                "CCC",
                "--start",
                "2021-01-01",
                "--end",
                "2021-03-31",
            ],
            vec!["features", "build", "--symbols", "AAA"],
        ] {
            let output = ws.run(&args);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{damage}: {args:?}: {err}");
            assert!(
                err.contains("table ohlcv: log entry file://")
                    && err.contains("_delta_log/00000000000000000002.json (version 2)"),
                "{damage}: {err}"
            );
            assert!(err.contains("hint: to return to version 1"), "{err}");
        }
        assert_eq!(
            std::fs::read_dir(&log).unwrap().count(),
            3,
            "nothing written"
        );
        assert_eq!(std::fs::read(&entry).unwrap(), damaged);

        let aside = ws.path().join("damaged");
        std::fs::create_dir(&aside).unwrap();
        std::fs::rename(&entry, aside.join("00000000000000000002.json")).unwrap();
        assert_eq!(ws.content(), good, "{damage}: back at version 1");
        ws.fetch_synthetic(&["--symbols", "BBB"], "2021-01-01", "2021-03-31");
        assert_eq!(ws.scalar("SELECT count(DISTINCT symbol) FROM ohlcv"), 2);
    }
}

/// A bad line in `.env` is named and skipped; the lines after it still count.
#[test]
fn a_bad_dotenv_line_is_named_and_later_lines_still_apply() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join(".env"),
        "BF_QUIET=false\nthis is not a setting\nBF_LAKE=elsewhere\n",
    )
    .unwrap();
    let output = ws
        .command(&[
            "data",
            "fetch",
            "--source",
            "synthetic",
            "--symbols",
            "AAA",
            "--end",
            "2021-01-31",
        ])
        .env_remove("BF_LAKE")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("warning: .env:2: cannot parse \"this is not a setting\""),
        "{err}"
    );
    assert!(ws.path().join("elsewhere/ohlcv/_delta_log").exists());
    assert!(!ws.path().join("lake").exists());
}

#[test]
fn boolean_variables_take_the_usual_spellings_and_bad_values_name_the_variable() {
    let ws = Workspace::new();
    for value in ["1", "true", "yes", "on"] {
        let output = ws
            .command(&["config"])
            .env("BF_JSON", value)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "BF_JSON={value}: {}",
            stderr(&output)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap();
    }
    for (variable, value, args) in [
        ("BF_JSON", "maybe", vec!["config"]),
        (
            "BF_RATE_LIMIT",
            "NaN",
            vec!["data", "fetch", "--symbols", "A"],
        ),
        (
            "BF_RATE_LIMIT",
            "1e-300",
            vec!["data", "fetch", "--symbols", "A"],
        ),
        ("BF_TIMEOUT", "inf", vec!["data", "fetch", "--symbols", "A"]),
        (
            "BF_RETRIES",
            "1000",
            vec!["data", "fetch", "--symbols", "A"],
        ),
    ] {
        let output = ws.command(&args).env(variable, value).output().unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {err}");
        assert!(
            err.contains(&format!("the value came from {variable}")),
            "{variable}={value}: {err}"
        );
    }
}

#[test]
fn a_strategy_failing_on_the_data_is_named_with_its_file() {
    let ws = Workspace::new();
    ws.fetch_synthetic(&["--symbols", "AAA"], "2020-01-01", "2021-12-31");
    ws.ok(&["features", "build", "--symbols", "AAA"]);
    let file = ws.path().join("mine.toml");
    std::fs::write(
        &file,
        "[[strategy]]\nname = \"fine\"\nrule = \"sql\"\nbuy = \"rsi_14 < 30\"\nsell = \"rsi_14 > 70\"\n\n\
         [[strategy]]\nname = \"divides\"\nrule = \"sql\"\nbuy = \"rsi_14 < 30\"\n\
         sell = \"rsi_14 > 70\"\nstrength = \"1 / 0\"\n",
    )
    .unwrap();
    let output = ws.run(&[
        "signals",
        "generate",
        "--symbols",
        "AAA",
        "--strategies",
        file.to_str().unwrap(),
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "strategies file {}: strategy \"divides\": fails on the lake's data",
            file.display()
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("divide by zero"), "{err}");
}

#[test]
fn the_synthetic_source_refuses_an_end_past_its_last_day() {
    let ws = Workspace::new();
    let output = ws.run(&[
        "data",
        "fetch",
        "--source",
        "synthetic",
        "--symbols",
        "AAA",
        "--end",
        "2300-01-01",
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("end 2300-01-01 is after 2099-12-31"), "{err}");
    assert!(!ws.path().join("lake/ohlcv").exists());
}

#[test]
fn a_malformed_s3_endpoint_is_one_line_naming_the_variable() {
    let ws = Workspace::new();
    for endpoint in ["", "not a url", "http://", "ftp://host", "http://[::1"] {
        let output = ws
            .command(&["sql", "SELECT 1"])
            .env("BF_LAKE", "s3://bucket/lake")
            .env("AWS_ENDPOINT_URL", endpoint)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{endpoint:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "error: cannot use lake location \"s3://bucket/lake\": AWS_ENDPOINT_URL {endpoint:?} is not"
            )),
            "{endpoint:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// Runs `script` as root of a user and mount namespace of its own, with a
/// 300 KiB tmpfs at `dir` (`unshare -Urm`, no privileges needed), so a test
/// can fill a disk or make it read-only.
fn in_small_filesystem(dir: &Path, script: &str) -> Output {
    let bf = env!("CARGO_BIN_EXE_bf");
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "set -e; mount -t tmpfs -o size=300k tmpfs '{dir}'; cd '{dir}'; \
             export BF=\"{bf}\" SMALL='{dir}'; {script}",
            dir = dir.display()
        ))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BF_LAKE", dir.join("lake"))
        .output()
        .expect("unshare (util-linux) runs this test's small file system");
    assert!(
        !stderr(&output).contains("mount: "),
        "this test needs unprivileged user namespaces (unshare -Urm): {}",
        stderr(&output)
    );
    output
}

/// A disk that fills up, or is read-only, mid-write: one line saying so,
/// exit 2, no panic, and the last commit still reads.
#[test]
fn a_full_or_read_only_disk_is_one_line_and_the_last_commit_stands() {
    let ws = Workspace::new();
    let small = ws.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let output = in_small_filesystem(
        &small,
        "$BF data fetch --source synthetic --symbols AAA --start 2021-01-01 --end 2021-01-31 -q >/dev/null; \
         echo first-fetch-done >&2; \
         if $BF data fetch --source synthetic --symbol-list demo_large --start 2010-01-01 -q; then exit 10; else echo \"full:$?\" >&2; fi; \
         $BF sql 'SELECT count(*) AS n FROM ohlcv' --format csv; \
         mount -o remount,ro \"$SMALL\"; \
         if $BF data fetch --source synthetic --symbols BBB --start 2021-01-01 --end 2021-01-31 -q; then exit 11; else echo \"read-only:$?\" >&2; fi",
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("first-fetch-done"), "{err}");
    assert!(
        err.contains("cannot write to file://")
            && err.contains("no space left on device; nothing was committed"),
        "{err}"
    );
    assert!(err.contains("full:2"), "{err}");
    assert!(
        err.contains("the file system is read-only; nothing was committed"),
        "{err}"
    );
    assert!(err.contains("read-only:2"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "n\n21\n");
}

/// Every session of the lake knows every bf function, `prev` included (it
/// was missing from `bf sql`), and `--functions` lists it.
#[test]
fn bf_sql_knows_prev_and_lists_it() {
    let ws = Workspace::new();
    let out = ws.ok(&[
        "sql",
        "SELECT x, prev(x) OVER (ORDER BY x) AS p FROM (VALUES (1), (2), (3)) t(x) ORDER BY x",
        "--format",
        "csv",
    ]);
    assert_eq!(out, "x,p\n1,\n2,1\n3,2\n");
    let listed = ws.json(&["sql", "--functions"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == "prev(value)"),
        "{listed}"
    );
}

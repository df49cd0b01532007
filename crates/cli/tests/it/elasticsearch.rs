//! `bf` with Elasticsearch: `bf run` and `bf signals generate` mirror their
//! tables, `bf es sync` catches up after an outage; against both test servers
//! that `scripts/test` starts.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Workspace;

fn servers() -> Vec<(&'static str, String)> {
    bf_testkit::elasticsearch_servers()
}

fn prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `bf` with Elasticsearch settings.
fn bf_es(ws: &Workspace, url: &str, prefix: &str, args: &[&str]) -> std::process::Output {
    ws.command(args)
        .env("BF_ES_URL", url)
        .env("BF_ES_INDEX_PREFIX", prefix)
        .output()
        .unwrap()
}

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Every document id of an index.
fn document_ids(url: &str, index: &str) -> BTreeSet<String> {
    let client = reqwest::blocking::Client::new();
    client
        .post(format!("{url}/{index}/_refresh"))
        .send()
        .unwrap();
    let answer: serde_json::Value = client
        .post(format!("{url}/{index}/_search"))
        .json(&serde_json::json!({"size": 10000, "_source": false, "query": {"match_all": {}}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["_id"].as_str().unwrap().to_string())
        .collect()
}

/// The signals table's keys as document ids.
fn signal_keys(ws: &Workspace) -> BTreeSet<String> {
    let csv = ws.ok(&[
        "sql",
        "SELECT symbol || '|' || \"interval\" || '|' || CAST(date AS VARCHAR) || '|' || strategy FROM signals",
        "--format",
        "csv",
        "--max-rows",
        "100000",
    ]);
    csv.lines().skip(1).map(str::to_string).collect()
}

const RUN: &[&str] = &[
    "run",
    "--source",
    "synthetic",
    "--symbols",
    "AAA,BBB",
    "--start",
    "2024-01-01",
    "--end",
    "2024-12-31",
];

#[test]
fn run_mirrors_signals_and_features_and_a_second_run_sends_nothing() {
    for (server, url) in servers() {
        let ws = Workspace::new();
        let prefix = prefix();
        let said = ok(bf_es(&ws, &url, &prefix, RUN));
        assert!(said.contains("every item acknowledged"), "{server}: {said}");
        let signals = signal_keys(&ws);
        assert!(!signals.is_empty());
        assert_eq!(
            document_ids(&url, &format!("{prefix}-signals")),
            signals,
            "{server}"
        );
        let features = ws.scalar("SELECT count(*) FROM features") as usize;
        assert_eq!(
            document_ids(&url, &format!("{prefix}-features")).len(),
            features,
            "{server}"
        );

        let again = ok(bf_es(&ws, &url, &prefix, RUN));
        assert!(
            again.contains("0 documents indexed, 0 deleted"),
            "{server}: {again}"
        );

        // A stricter user strategy: the signals it no longer fires go from the index too.
        let file = ws.path().join("mine.toml");
        for threshold in [60, 40] {
            std::fs::write(
                &file,
                format!("[[strategy]]\nname = \"mine\"\nrule = \"sql\"\nbuy = \"rsi_14 < {threshold}\"\nsell = \"false\"\n"),
            )
            .unwrap();
            ok(bf_es(
                &ws,
                &url,
                &prefix,
                &[
                    "signals",
                    "generate",
                    "--symbols",
                    "AAA,BBB",
                    "--strategies",
                    file.to_str().unwrap(),
                ],
            ));
            assert_eq!(
                document_ids(&url, &format!("{prefix}-signals")),
                signal_keys(&ws),
                "{server} {threshold}"
            );
        }
        let status: serde_json::Value = serde_json::from_str(
            &String::from_utf8(bf_es(&ws, &url, &prefix, &["es", "status", "--json"]).stdout)
                .unwrap(),
        )
        .unwrap();
        for table in status
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["table"] != "ohlcv")
        {
            assert_eq!(table["rows"], table["documents"], "{server}: {table}");
            assert_eq!(
                table["lake_version"], table["synced_version"],
                "{server}: {table}"
            );
        }
    }
}

#[test]
fn elasticsearch_down_keeps_the_lake_commit_and_the_next_sync_catches_up() {
    let (_, url) = servers().remove(1);
    let ws = Workspace::new();
    let prefix = prefix();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let output = bf_es(&ws, &down, &prefix, RUN);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&down) && stderr.contains("lake is committed"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let signals = signal_keys(&ws);
    assert!(!signals.is_empty(), "the lake commit stands");

    ok(bf_es(
        &ws,
        &url,
        &prefix,
        &["es", "sync", "--tables", "signals,features"],
    ));
    assert_eq!(document_ids(&url, &format!("{prefix}-signals")), signals);
}

#[test]
fn es_commands_without_a_url_say_what_to_set() {
    let ws = Workspace::new();
    let output = ws.run(&["es", "status"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("BF_ES_URL"));
    let output = ws
        .command(&["es", "setup"])
        .env("BF_ES_URL", "localhost:9200")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("localhost:9200") && stderr.contains("node URL"),
        "{stderr}"
    );
}

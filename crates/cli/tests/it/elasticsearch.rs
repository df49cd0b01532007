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
        // osmem-server indexes a few hundred documents a second, slower
        // still while the whole suite runs: a 5 MiB bulk can take minutes.
        .env("BF_ES_TIMEOUT", "600")
        .output()
        .unwrap()
}

/// Asserts exit 0, showing both streams otherwise; returns stderr.
fn ok(output: std::process::Output) -> String {
    assert_succeeded(&output);
    String::from_utf8_lossy(&output.stderr).to_string()
}

pub fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts that the documents of `index` are exactly `ids`: as many, and each
/// one found (searched by id in pages, so any number can be compared).
pub fn assert_documents_are(url: &str, index: &str, ids: &BTreeSet<String>, context: &str) {
    assert_eq!(
        document_count(url, index),
        ids.len() as u64,
        "{context}: count"
    );
    let client = reqwest::blocking::Client::new();
    let ids: Vec<&String> = ids.iter().collect();
    for page in ids.chunks(2000) {
        let answer: serde_json::Value = client
            .post(format!("{url}/{index}/_search"))
            .json(&serde_json::json!({
                "size": page.len(), "_source": false,
                "query": {"ids": {"values": page}},
            }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let found: BTreeSet<&str> = answer["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["_id"].as_str().unwrap())
            .collect();
        let missing: Vec<&&String> = page
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{context}: no document for {} rows, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    }
}

/// How many documents an index holds.
pub fn document_count(url: &str, index: &str) -> u64 {
    documents_matching(url, index, serde_json::json!({"match_all": {}}))
        .expect("a count of the index")
}

/// How many documents of an index match `query`, after a refresh; `None`
/// when the server gives no count (an index not created yet).
pub fn documents_matching(url: &str, index: &str, query: serde_json::Value) -> Option<u64> {
    let client = reqwest::blocking::Client::new();
    client
        .post(format!("{url}/{index}/_refresh"))
        .send()
        .unwrap();
    let answer: serde_json::Value = client
        .post(format!("{url}/{index}/_count"))
        .json(&serde_json::json!({ "query": query }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["count"].as_u64()
}

/// The signals table's keys as document ids.
pub fn signal_keys(ws: &Workspace) -> BTreeSet<String> {
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

/// SPEC's main job on the large demo list (half a year, to keep the strict
/// test server's few hundred documents a second affordable).
const RUN_LARGE: &[&str] = &[
    "run",
    "--source",
    "synthetic",
    "--symbol-list",
    "demo_large",
    "--start",
    "2024-07-01",
    "--end",
    "2024-12-31",
];

#[test]
fn run_mirrors_signals_and_features_and_a_second_run_sends_nothing() {
    for (server, url) in servers() {
        let ws = Workspace::new();
        let prefix = prefix();
        let said = ok(bf_es(&ws, &url, &prefix, RUN_LARGE));
        assert!(said.contains("every item acknowledged"), "{server}: {said}");
        let signals = signal_keys(&ws);
        assert!(signals.len() > 1000, "{}", signals.len());
        assert_documents_are(&url, &format!("{prefix}-signals"), &signals, server);
        let features = ws.scalar("SELECT count(*) FROM features") as u64;
        assert!(features > 10_000, "{features}");
        assert_eq!(
            document_count(&url, &format!("{prefix}-features")),
            features,
            "{server}"
        );

        let again = ok(bf_es(&ws, &url, &prefix, RUN_LARGE));
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
            let output = bf_es(
                &ws,
                &url,
                &prefix,
                &[
                    "signals",
                    "generate",
                    "--json",
                    "--symbol-list",
                    "demo_large",
                    "--strategies",
                    file.to_str().unwrap(),
                ],
            );
            let context = format!("{server}, threshold {threshold}");
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let synced = &report["elasticsearch"]["tables"][0];
            assert_eq!(
                synced["index"],
                format!("{prefix}-signals"),
                "{context}: {report}"
            );
            assert_eq!(synced["complete"], true, "{context}: {report}");
            let changed = synced["indexed"].as_u64().unwrap() + synced["deleted"].as_u64().unwrap();
            assert!(changed > 0, "{context}: {report}");
            assert_documents_are(
                &url,
                &format!("{prefix}-signals"),
                &signal_keys(&ws),
                &context,
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
    assert_documents_are(
        &url,
        &format!("{prefix}-signals"),
        &signals,
        "after the outage",
    );
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

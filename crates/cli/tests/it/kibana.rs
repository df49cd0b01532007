//! `bf kibana import` against the Kibana stand-in of bf-testkit, which
//! enforces the saved-objects import API (no Kibana runs here).

use bf_testkit::kibana_stub::{KibanaStub, KibanaStubOptions};

use super::Workspace;

fn import(ws: &Workspace, stub: &KibanaStub, extra: &[&str]) -> std::process::Output {
    let url = stub.url();
    let mut args = vec!["kibana", "import", "--url", url.as_str()];
    args.extend_from_slice(extra);
    ws.run(&args)
}

fn titles_of_data_views(stub: &KibanaStub) -> Vec<String> {
    stub.objects()
        .into_iter()
        .filter(|((kind, _), _)| kind == "index-pattern")
        .map(|(_, object)| object["attributes"]["title"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_dashboard_imports_with_every_object_and_again_harmlessly() {
    let ws = Workspace::new();
    // A Kibana still starting answers 503 at first.
    let stub = KibanaStub::spawn(KibanaStubOptions {
        not_ready_answers: 2,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..2 {
        let output = import(&ws, &stub, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}{stderr}");
        assert!(
            stderr.contains("imported 8 saved objects")
                && stderr.contains("/app/dashboards#/view/bf-signals-dashboard"),
            "{stderr}"
        );
    }
    let kinds: Vec<String> = stub.objects().into_keys().map(|(kind, _)| kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "visualization").count(), 3);
    assert!(kinds.contains(&"dashboard".to_string()) && kinds.contains(&"search".to_string()));
    assert_eq!(
        titles_of_data_views(&stub),
        ["bf-features", "bf-ohlcv", "bf-signals"]
    );
}

#[test]
fn data_views_follow_the_index_prefix_and_credentials_are_sent() {
    let ws = Workspace::new();
    let stub = KibanaStub::spawn(KibanaStubOptions {
        basic_auth: Some(("elastic".into(), "s3cret".into())),
        ..Default::default()
    })
    .unwrap();
    let refused = import(&ws, &stub, &[]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("HTTP 401") && stderr.contains(&stub.url()),
        "{stderr}"
    );

    let output = ws
        .command(&["kibana", "import", "--url", &stub.url()])
        .env("BF_ES_USERNAME", "elastic")
        .env("BF_ES_PASSWORD", "s3cret")
        .env("BF_ES_INDEX_PREFIX", "desk2")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        titles_of_data_views(&stub),
        ["desk2-features", "desk2-ohlcv", "desk2-signals"]
    );
}

#[test]
fn refused_objects_are_listed_and_the_exit_code_says_so() {
    let ws = Workspace::new();
    let stub = KibanaStub::spawn(KibanaStubOptions::default()).unwrap();
    let file = ws.path().join("mine.ndjson");
    std::fs::write(
        &file,
        concat!(
            r#"{"type":"index-pattern","id":"mine","attributes":{"title":"mine-*"},"references":[]}"#,
            "\n",
            r#"{"type":"visualization","id":"orphan","attributes":{"title":"Orphan"},"references":[{"name":"x","type":"index-pattern","id":"gone"}]}"#,
            "\n",
            r#"{"type":"canvas-workpad","id":"pad","attributes":{"title":"Pad"},"references":[]}"#,
            "\n",
        ),
    )
    .unwrap();
    let output = import(&ws, &stub, &["--file", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("visualization orphan (Orphan): missing_references (index-pattern gone)")
            && stderr.contains("canvas-workpad pad (Pad): unsupported_type")
            && stderr.contains("imported 1 of 3 saved objects"),
        "{stderr}"
    );

    let json = ws
        .command(&[
            "kibana",
            "import",
            "--json",
            "--url",
            &stub.url(),
            "--file",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["success"], false);
    assert_eq!(report["successCount"], 1);
    assert_eq!(report["errors"].as_array().unwrap().len(), 2);

    std::fs::write(&file, "{\"type\":\"dashboard\",\"id\":\"a\"}\nnot json\n").unwrap();
    let output = import(&ws, &stub, &["--file", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mine.ndjson:2"), "{stderr}");
}

#[test]
fn kibana_down_is_one_line_naming_the_url() {
    let ws = Workspace::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let output = ws
        .command(&["kibana", "import", "--url", &url])
        .env("BF_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

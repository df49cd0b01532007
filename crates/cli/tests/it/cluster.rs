//! The distributed engine: a scheduler and two executors as separate `bf`
//! processes on loopback, with the lake on the S3 test server.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Workspace;
use crate::s3::s3_lake_url;

/// `bf cluster scheduler` and executors, killed when dropped.
pub(crate) struct TestCluster {
    pub(crate) port: u16,
    pub(crate) address: String,
    scheduler: Child,
    executors: Vec<Child>,
}

impl TestCluster {
    pub(crate) fn start(executors: usize) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("df://127.0.0.1:{port}");
        let scheduler = bf_process(&[
            "cluster",
            "scheduler",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--executor-timeout",
            "5",
        ]);
        let mut cluster = Self {
            port,
            address,
            scheduler,
            executors: Vec::new(),
        };
        for _ in 0..executors {
            let executor = bf_process(&[
                "cluster",
                "executor",
                "--scheduler",
                &cluster.address,
                "--slots",
                "2",
                "--heartbeat",
                "1",
            ]);
            cluster.executors.push(executor);
        }
        cluster.wait_for_executors(executors);
        cluster
    }

    pub(crate) fn status(&self) -> serde_json::Value {
        let output = Workspace::new()
            .command(&["cluster", "status", "--cluster", &self.address, "--json"])
            .output()
            .unwrap();
        if !output.status.success() {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Until `count` executors are registered and serving: an executor
    /// listens on its flight port last, just before it also listens for
    /// SIGTERM (a signal before that ends it without deregistering).
    fn wait_for_executors(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status();
            let serving = |e: &serde_json::Value| {
                let port = e["port"].as_u64().unwrap_or_default() as u16;
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            };
            if status["executors"]
                .as_array()
                .is_some_and(|e| e.len() == count && e.iter().all(serving))
            {
                // Past the flight port's bind, the executor is in its main loop.
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{count} executors did not register: {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `bf` process with the S3 settings of the test server, output discarded.
fn bf_process(args: &[&str]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bf"));
    command
        .args(args)
        .env_clear()
        .envs(std::env::vars().filter(|(key, _)| key.starts_with("AWS_")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().unwrap()
}

/// `bf` on an S3 lake, expecting success; stdout.
fn on(ws: &Workspace, lake: &str, args: &[&str]) -> String {
    let output = ws.command_on(lake, args).output().unwrap();
    assert!(
        output.status.success(),
        "bf {args:?} on {lake}: exit {:?}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every stored value of a table except when and by which run it was made.
fn content(ws: &Workspace, lake: &str, table: &str) -> String {
    let query = match table {
        "features" => {
            "SELECT * EXCEPT (computed_at, ohlcv_version) FROM features \
             ORDER BY symbol, \"interval\", date"
        }
        _ => {
            "SELECT * EXCEPT (generated_at, run_id) FROM signals \
             ORDER BY symbol, \"interval\", date, strategy"
        }
    };
    on(ws, lake, &["sql", query, "--format", "csv"])
}

/// Two lakes with the same bars: one for the embedded run, one for the cluster.
fn twin_lakes(ws: &Workspace, start: &str) -> (String, String) {
    let (embedded, clustered) = (s3_lake_url(), s3_lake_url() + "-cluster");
    for lake in [&embedded, &clustered] {
        on(
            ws,
            lake,
            &[
                "data",
                "fetch",
                "--source",
                "synthetic",
                "--symbol-list",
                "demo_large",
                "--start",
                start,
                "--end",
                "2023-12-29",
                "--quiet",
            ],
        );
    }
    (embedded, clustered)
}

#[test]
fn features_and_signals_on_the_cluster_equal_the_embedded_run() {
    let cluster = TestCluster::start(2);
    let ws = Workspace::new();
    let (embedded, clustered) = twin_lakes(&ws, "2019-01-01");
    let on_cluster = ["--cluster", cluster.address.as_str(), "--json"];
    let select = ["--symbol-list", "demo_large"];
    // A command embedded on one lake, and on the cluster on the other (its
    // JSON report).
    let both = |command: &[&str]| -> serde_json::Value {
        on(&ws, &embedded, &[command, &select[..]].concat());
        let report = on(
            &ws,
            &clustered,
            &[command, &select[..], &on_cluster[..]].concat(),
        );
        serde_json::from_str(&report).unwrap()
    };

    let built = both(&["features", "build"]);
    assert_eq!(built["build"]["series_built"], 106, "{built}");
    let writers = built["commit"]["by_executor"].as_object().unwrap();
    assert_eq!(writers.len(), 2, "both executors wrote features: {built}");
    let features = content(&ws, &embedded, "features");
    assert!(features.lines().count() > 100_000);
    assert!(
        features == content(&ws, &clustered, "features"),
        "features differ"
    );

    // Changed bars for two symbols: only their series are rebuilt, and the
    // files holding their old rows are replaced.
    let changed = ws.path().join("changed.csv");
    let csv = on(
        &ws,
        &embedded,
        &[
            "sql",
            "SELECT symbol, date, open * 1.01 AS open, high * 1.01 AS high, low * 1.01 AS low, \
             close * 1.01 AS close, adj_close * 1.01 AS adj_close, volume \
             FROM ohlcv WHERE symbol IN ('AAPL', 'XOM') AND date >= '2023-06-01'",
            "--format",
            "csv",
        ],
    );
    std::fs::write(&changed, csv).unwrap();
    for lake in [&embedded, &clustered] {
        on(&ws, lake, &["data", "import", changed.to_str().unwrap()]);
    }
    let rebuilt = both(&["features", "build"]);
    assert_eq!(rebuilt["build"]["series_built"], 2, "{rebuilt}");
    assert!(
        rebuilt["commit"]["files_removed"].as_u64().unwrap() >= 1,
        "{rebuilt}"
    );
    assert!(
        content(&ws, &embedded, "features") == content(&ws, &clustered, "features"),
        "features differ after the incremental build"
    );
    let unchanged: serde_json::Value = serde_json::from_str(&on(
        &ws,
        &clustered,
        &[&["features", "build"], &select[..], &on_cluster[..]].concat(),
    ))
    .unwrap();
    assert_eq!(unchanged["up_to_date"], true, "{unchanged}");

    let generated = both(&["signals", "generate"]);
    assert!(
        generated["commit"]["rows_written"].as_u64().unwrap() > 1_000,
        "{generated}"
    );
    let signals = content(&ws, &embedded, "signals");
    assert!(
        signals == content(&ws, &clustered, "signals"),
        "signals differ"
    );
    // A second run replaces its own signals instead of adding to them.
    on(
        &ws,
        &clustered,
        &[&["signals", "generate"], &select[..], &on_cluster[..]].concat(),
    );
    assert!(
        signals == content(&ws, &clustered, "signals"),
        "signals differ after a rerun"
    );

    // bf sql on the cluster: a join and a window query answer as embedded.
    for query in [
        "SELECT f.symbol, count(*) AS n, round(avg(s.strength), 9) AS strength, \
         round(sum(f.rsi_14), 6) AS rsi FROM features f JOIN signals s \
         ON f.symbol = s.symbol AND f.date = s.date GROUP BY f.symbol ORDER BY f.symbol",
        "SELECT symbol, date, sma(adj_close, 10) OVER (PARTITION BY symbol ORDER BY date) AS sma_10, \
         prev(adj_close) OVER (PARTITION BY symbol ORDER BY date) AS previous, \
         rank() OVER (PARTITION BY symbol ORDER BY volume DESC) AS volume_rank \
         FROM features ORDER BY symbol, date",
    ] {
        let sql = ["sql", query, "--format", "csv"];
        let here = on(&ws, &clustered, &sql);
        let there = on(&ws, &clustered, &[&sql[..], &on_cluster[..2]].concat());
        assert!(here.lines().count() > 100, "{query}");
        assert!(
            here == there,
            "{query}: embedded and cluster answers differ"
        );
    }

    let status = cluster.status();
    let jobs = status["jobs"].as_array().unwrap();
    assert!(jobs.len() >= 6, "{status}");
    assert!(
        jobs.iter()
            .all(|j| j["job_status"].as_str().unwrap().starts_with("Completed")),
        "{status}"
    );
}

#[test]
fn an_executor_killed_mid_job_loses_nothing_and_stores_nothing_twice() {
    let mut cluster = TestCluster::start(2);
    let ws = Workspace::new();
    let (embedded, clustered) = twin_lakes(&ws, "2000-01-01");
    on(
        &ws,
        &embedded,
        &["features", "build", "--symbol-list", "demo_large"],
    );
    let on_cluster = [
        "features",
        "build",
        "--symbol-list",
        "demo_large",
        "--cluster",
        &cluster.address,
    ];
    let mut build = ws
        .command_on(&clustered, &on_cluster)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill an executor once the job runs (on a machine fast enough to finish
    // the job before it is seen running, the kill comes after it; the table
    // must be right either way).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.status()["jobs"].as_array().is_some_and(|jobs| {
        jobs.iter().any(|j| {
            j["job_status"]
                .as_str()
                .unwrap_or("")
                .starts_with("Running")
        })
    }) && build.try_wait().unwrap().is_none()
    {
        assert!(Instant::now() < deadline, "the job never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut lost = cluster.executors.remove(0);
    lost.kill().unwrap();
    lost.wait().unwrap();

    let output = build.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        assert!(said.contains("built 106 of 106 series"), "{said}");
    } else {
        // Failed: one line saying so, and no commit: the table is empty.
        assert_eq!(said.trim().lines().count(), 1, "{said}");
        assert!(said.contains("nothing was committed"), "{said}");
        assert_eq!(
            on(
                &ws,
                &clustered,
                &["sql", "SELECT count(*) FROM features", "--format", "csv"]
            ),
            "count(*)\n0\n"
        );
        on(&ws, &clustered, &on_cluster);
    }
    assert!(
        content(&ws, &embedded, "features") == content(&ws, &clustered, "features"),
        "the cluster's features differ from the embedded run's ({said})"
    );
}

#[test]
fn an_unreachable_scheduler_is_one_line_naming_it_and_exit_2() {
    let ws = Workspace::new();
    for args in [
        &["sql", "SELECT 1", "--cluster", "df://127.0.0.1:9"][..],
        &[
            "features",
            "build",
            "--symbols",
            "AAPL",
            "--cluster",
            "df://127.0.0.1:9",
        ],
        &["cluster", "status", "--cluster", "df://127.0.0.1:9"],
    ] {
        let output = ws.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("cannot reach the scheduler at df://127.0.0.1:9"),
            "{args:?}: {said}"
        );
        assert_eq!(said.trim().lines().count(), 1, "{args:?}: {said}");
    }
    let output = ws.run(&["sql", "SELECT 1", "--cluster", "http://127.0.0.1:9"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("write df://HOST:PORT"));
}

#[test]
fn a_stopped_executor_leaves_the_cluster_at_once() {
    let mut cluster = TestCluster::start(2);
    let mut leaving = cluster.executors.remove(0);
    let stopped = Command::new("kill")
        .args(["-TERM", &leaving.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = leaving.wait().unwrap();
    assert!(exit.success(), "SIGTERM ends an executor cleanly: {exit:?}");
    // Well before the 5 s heartbeat timeout: the executor said it was leaving.
    let deadline = Instant::now() + Duration::from_secs(4);
    while cluster.status()["executors"].as_array().map(Vec::len) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the scheduler still lists the stopped executor: {}",
            cluster.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

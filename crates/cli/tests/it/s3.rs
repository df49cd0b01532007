//! The lake on S3: the server `scripts/test` starts for most tests, and a
//! durable one of a test's own that it stops and starts again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{CONTENT_QUERY, Workspace};

/// A fresh lake prefix in the S3-compatible server `scripts/test` starts.
pub(crate) fn s3_lake_url() -> String {
    let bucket = std::env::var("BF_TEST_S3_BUCKET").expect(
        "BF_TEST_S3_BUCKET and AWS_ENDPOINT_URL are not set: run scripts/test, which starts the S3 test server",
    );
    format!(
        "s3://{bucket}/cli-it-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    )
}

#[test]
fn the_main_job_on_s3_stores_what_it_stores_on_local_disk() {
    let args = [
        "run",
        "--source",
        "synthetic",
        "--symbol-list",
        "demo_large",
        "--start",
        "2021-01-01",
        "--end",
        "2023-12-29",
        "--quiet",
    ];
    let local = Workspace::new();
    local.ok(&args);
    let on_s3 = Workspace::new();
    let lake = s3_lake_url();
    let s3 = |args: &[&str]| {
        let output = on_s3.command_on(&lake, args).output().unwrap();
        assert!(
            output.status.success(),
            "bf {args:?} on {lake}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    s3(&args);
    for query in [
        "SELECT symbol, \"interval\", date, ts, open, high, low, close, adj_close, volume \
         FROM ohlcv ORDER BY symbol, date",
        "SELECT symbol, date, sma_50, rsi_14, macd, bb_upper, obv FROM features ORDER BY symbol, date",
        "SELECT symbol, date, strategy, side, strength FROM signals ORDER BY symbol, date, strategy",
    ] {
        let sql = ["sql", query, "--format", "csv"];
        let (here, there) = (local.ok(&sql), s3(&sql));
        assert!(here.lines().count() > 1000, "{query}");
        assert!(here == there, "{query}: local and S3 differ");
    }
    let again = on_s3
        .command_on(&lake, &args[..args.len() - 1])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing new, nothing written"));
}

#[test]
fn a_missing_bucket_or_unreachable_endpoint_is_one_line_naming_it() {
    let ws = Workspace::new();
    let output = ws
        .command_on("s3://no-such-bucket/lake", &["data", "status"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    assert!(
        said.contains("bucket no-such-bucket")
            && said.contains(&endpoint)
            && said.contains("the bucket does not exist"),
        "{said}"
    );
    assert_eq!(said.trim().lines().count(), 1, "{said}");

    let output = ws
        .command_on(&s3_lake_url(), &["data", "status"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("http://127.0.0.1:9") && said.contains("cannot reach the endpoint"),
        "{said}"
    );
}

#[test]
fn wrong_credentials_are_one_line_naming_the_endpoint_and_bucket() {
    let ws = Workspace::new();
    let lake = s3_lake_url();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let bucket = std::env::var("BF_TEST_S3_BUCKET").unwrap();
    for (key, secret) in [("bf-test", "not-the-secret"), ("nobody", "bf-test")] {
        let output = ws
            .command_on(&lake, &["data", "status"])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains(&format!("bucket {bucket}"))
                && said.contains(&endpoint)
                && said
                    .contains("access denied; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "{key}: {said}"
        );
        assert_eq!(said.trim().lines().count(), 1, "{key}: {said}");
    }
    // The same command with the right key works: the refusal was the key's.
    let output = ws.command_on(&lake, &["data", "status"]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A server of the test's own (scripts/s3-test-server.py, as `scripts/test`
/// starts it) keeping its objects in a folder, so that it can be killed and
/// started again with what it had acknowledged.
struct DurableS3Server {
    port: u16,
    dir: PathBuf,
    process: Option<Child>,
}

const DURABLE_BUCKET: &str = "bf-durable";

impl DurableS3Server {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            dir: dir.to_path_buf(),
            process: None,
        };
        server.restart();
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let python = std::env::var("BF_TEST_S3_PYTHON").expect(
            "BF_TEST_S3_PYTHON is not set: run scripts/test, which installs the S3 test server",
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/s3-test-server.py");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))
            .unwrap();
        let process = Command::new(python)
            .arg(script)
            .args(["--port", &self.port.to_string(), "--bucket", DURABLE_BUCKET])
            .args(["--credentials", "bf-test:bf-test", "--data-dir"])
            .arg(&self.dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the durable S3 server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: whatever was not acknowledged is lost, as in a crash.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }

    /// Parquet files the server holds under `table`.
    fn data_files(&self, table: &str) -> usize {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .map(|entry| entry.unwrap().path())
                    .map(|path| match path.extension() {
                        _ if path.is_dir() => count(&path),
                        Some(ext) if ext == "parquet" => 1,
                        _ => 0,
                    })
                    .sum()
            })
        }
        count(&self.dir.join(DURABLE_BUCKET).join(table))
    }
}

impl Drop for DurableS3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_store_killed_mid_write_keeps_the_last_commit_and_the_rerun_completes() {
    let fetch_small = ["--symbol-list", "demo_small"];
    let fetch_large = ["--symbol-list", "demo_large"];
    let (small_range, large_range) = (("2015-01-01", "2020-12-31"), ("2000-01-01", "2024-12-31"));
    let reference = Workspace::new();
    reference.fetch_synthetic(&fetch_small, small_range.0, small_range.1);
    reference.fetch_synthetic(&fetch_large, large_range.0, large_range.1);

    let ws = Workspace::new();
    let mut server = DurableS3Server::start(&ws.path().join("store"));
    let lake = format!("s3://{DURABLE_BUCKET}/lake");
    let bf = |endpoint: &str, selection: &[&str], (start, end): (&str, &str)| {
        let mut args = vec!["data", "fetch", "--source", "synthetic"];
        args.extend_from_slice(selection);
        args.extend_from_slice(&["--start", start, "--end", end]);
        let mut command = ws.command_on(&lake, &args);
        command.env("AWS_ENDPOINT_URL", endpoint);
        command
    };
    let content = |endpoint: &str| {
        let output = ws
            .command_on(&lake, &["sql", CONTENT_QUERY, "--format", "csv"])
            .env("AWS_ENDPOINT_URL", endpoint)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the lake after a restart: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let endpoint = server.endpoint();
    assert!(
        bf(&endpoint, &fetch_small, small_range)
            .status()
            .unwrap()
            .success()
    );
    let committed = content(&endpoint);

    // Kill the server as the bigger fetch's first new file lands, before its
    // commit; bf's machine goes down with it.
    let files_before = server.data_files("lake/ohlcv");
    let mut fetch = bf(&endpoint, &fetch_large, large_range)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while server.data_files("lake/ohlcv") == files_before {
        assert!(
            fetch.try_wait().unwrap().is_none(),
            "the fetch ended before writing a file"
        );
        assert!(Instant::now() < deadline, "no new data file in 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    fetch.kill().unwrap();
    fetch.wait().unwrap();

    server.restart();
    let after_restart = content(&endpoint);
    assert!(
        after_restart == committed || after_restart == reference.content(),
        "after the restart the lake is one of its committed versions"
    );

    if after_restart != committed {
        // The kill came after the commit after all; nothing is left to redo.
        return;
    }

    // Killed mid-write again, the server comes back while bf is still at
    // work: bf finishes across the restart or fails (an upload in progress is
    // gone); either way the lake stays whole and running it again completes it.
    let files_before = server.data_files("lake/ohlcv");
    let fetch = bf(&endpoint, &fetch_large, large_range)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while server.data_files("lake/ohlcv") == files_before {
        assert!(Instant::now() < deadline, "no new data file in 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    std::thread::sleep(Duration::from_secs(1));
    server.restart();
    if !fetch.wait_with_output().unwrap().status.success() {
        assert_eq!(
            content(&endpoint),
            committed,
            "a failed fetch commits nothing"
        );
        let rerun = bf(&endpoint, &fetch_large, large_range).output().unwrap();
        assert!(
            rerun.status.success(),
            "the rerun: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
    }
    assert_eq!(content(&endpoint), reference.content());
}

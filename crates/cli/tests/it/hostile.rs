//! The hostile-input harness: the real binary over a corpus of bad files,
//! strategies, SQL and settings (`tests/fixtures/hostile/`, see its README).
//! Every case must end with exit 0, 1 or 2 and no panic; all failures are
//! collected and reported together.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Workspace;

/// Longer than any case needs; a case that takes longer is a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile")
}

/// Runs one case; `None` when it behaved, else what went wrong.
fn check(name: &str, mut command: Command) -> Option<String> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            return Some(format!("{name}: still running after {CASE_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let bad_exit = !matches!(status.code(), Some(0..=2));
    let panicked = [
        "panicked",
        "internal error",
        "stack overflow",
        "RUST_BACKTRACE",
    ]
    .iter()
    .any(|m| stderr.contains(m));
    (bad_exit || panicked).then(|| format!("{name}: exit {:?}\n{stderr}", status.code()))
}

/// A lake with bars and features, every command's environment pointing
/// Yahoo at a closed port so that no case reaches the network.
fn prepared() -> Workspace {
    let ws = Workspace::new();
    ws.fetch_synthetic(&["--symbol-list", "demo_small"], "2022-01-01", "2023-12-29");
    ws.ok(&["features", "build", "--symbol-list", "demo_small"]);
    ws
}

fn bf(ws: &Workspace, args: &[&str]) -> Command {
    let mut command = ws.command(args);
    command.env("BF_YAHOO_URL", "http://127.0.0.1:1");
    command
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

fn assert_no_failures(failures: Vec<String>, cases: usize) {
    assert!(cases > 0, "no cases found under {}", corpus().display());
    assert!(
        failures.is_empty(),
        "{} of {cases} hostile cases failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_sql_never_panics() {
    let ws = prepared();
    let text = std::fs::read_to_string(corpus().join("sql.txt")).unwrap();
    let mut statements: Vec<String> = text.lines().map(str::to_string).collect();
    // Generated: too long for a file line to read well.
    statements.push(format!(
        "SELECT {}1{}",
        "(".repeat(5_000),
        ")".repeat(5_000)
    ));
    let chain: Vec<String> = (0..5_000).map(|i| format!("close > {i}")).collect();
    statements.push(format!(
        "SELECT count(*) FROM ohlcv WHERE {}",
        chain.join(" AND ")
    ));
    let mut failures = Vec::new();
    for statement in &statements {
        for format in ["table", "csv"] {
            let name = format!("bf sql {statement:.80?} --format {format}");
            failures.extend(check(
                &name,
                bf(&ws, &["sql", statement, "--format", format]),
            ));
        }
    }
    assert!(
        !Path::new("/tmp/bf-hostile-copy.parquet").exists(),
        "COPY wrote a file"
    );
    assert_no_failures(failures, statements.len());
}

#[test]
fn hostile_strategies_never_panic() {
    let ws = prepared();
    let files = sorted_files(&corpus().join("strategies"));
    let mut failures = Vec::new();
    for file in &files {
        let name = format!("bf signals generate --strategies {}", file.display());
        let args = [
            "signals",
            "generate",
            "--symbol-list",
            "demo_small",
            "--strategies",
            file.to_str().unwrap(),
        ];
        failures.extend(check(&name, bf(&ws, &args)));
    }
    assert_no_failures(failures, files.len());
}

#[test]
fn hostile_settings_never_panic() {
    let ws = prepared();
    let text = std::fs::read_to_string(corpus().join("settings.txt")).unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (setting, args) = line.split_once('\t').expect("VARIABLE=value<TAB>arguments");
        let (variable, value) = setting.split_once('=').expect("VARIABLE=value");
        let args: Vec<&str> = args.split(' ').collect();
        let mut command = bf(&ws, &args);
        command.env(variable, value);
        cases += 1;
        failures.extend(check(line, command));
    }
    assert_no_failures(failures, cases);
}

#[test]
fn hostile_files_never_panic() {
    let ws = Workspace::new();
    let mut files = sorted_files(&corpus().join("csv"));
    files.extend(hostile_parquet_files(ws.path()));
    let mut failures = Vec::new();
    for file in &files {
        for strict in [false, true] {
            let mut args = vec!["data", "import", file.to_str().unwrap()];
            if strict {
                args.push("--strict");
            }
            failures.extend(check(&args.join(" "), bf(&ws, &args)));
        }
    }
    // All of them at once, and a folder holding them.
    let mut all = vec!["data", "import"];
    all.extend(files.iter().map(|f| f.to_str().unwrap()));
    failures.extend(check("bf data import (every file)", bf(&ws, &all)));
    let folder = corpus().join("csv");
    failures.extend(check(
        "bf data import (the folder)",
        bf(&ws, &["data", "import", folder.to_str().unwrap()]),
    ));
    assert_no_failures(failures, files.len());
}

/// Parquet files a vendor or a broken download can produce: cut short, not
/// Parquet at all, empty, and columns of unexpected types.
fn hostile_parquet_files(dir: &Path) -> Vec<PathBuf> {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray,
    };
    use parquet::arrow::ArrowWriter;

    let write = |name: &str, columns: Vec<(&str, ArrayRef)>| {
        let path = dir.join(name);
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    };
    let text = |values: &[&str]| -> ArrayRef { Arc::new(StringArray::from(values.to_vec())) };
    let floats = |values: &[f64]| -> ArrayRef { Arc::new(Float64Array::from(values.to_vec())) };
    let good = write(
        "GOOD.parquet",
        vec![
            ("date", text(&["2024-01-02", "2024-01-03"])),
            ("open", floats(&[10.0, 10.0])),
            ("high", floats(&[11.0, 11.0])),
            ("low", floats(&[9.0, 9.0])),
            ("close", floats(&[10.0, 10.0])),
            ("volume", floats(&[1.0, 2.0])),
        ],
    );
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("TRUNCATED.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let not_parquet = dir.join("TEXT.parquet");
    std::fs::write(&not_parquet, "date,open\n2024-01-02,1\n").unwrap();
    let empty = dir.join("EMPTY.parquet");
    std::fs::write(&empty, "").unwrap();
    let odd_types = write(
        "TYPES.parquet",
        vec![
            (
                "date",
                Arc::new(Int32Array::from(vec![i32::MIN, i32::MAX])) as ArrayRef,
            ),
            ("open", text(&["x", "1e999"])),
            (
                "high",
                Arc::new(BooleanArray::from(vec![true, false])) as ArrayRef,
            ),
            ("low", floats(&[f64::NAN, f64::NEG_INFINITY])),
            ("close", floats(&[f64::MAX, f64::MIN_POSITIVE])),
            ("volume", floats(&[f64::INFINITY, -0.0])),
        ],
    );
    vec![good, truncated, not_parquet, empty, odd_types]
}

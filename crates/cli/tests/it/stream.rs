//! `bf stream publish | consume | status` against the Kafka broker and the
//! Elasticsearch-API servers that `scripts/test` starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::Workspace;
use super::elasticsearch::{
    assert_documents_are, assert_succeeded, document_count, documents_matching, signal_keys,
};

/// Topic and index prefixes of their own for each test.
fn prefixes() -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{n}", std::process::id());
    (format!("stream{id}"), format!("stream{id}"))
}

/// `bf` with Kafka and (for `consume`) Elasticsearch settings.
fn bf(
    ws: &Workspace,
    topics: &str,
    es: Option<(&str, &str)>,
    args: &[&str],
) -> std::process::Output {
    bf_on(&bf_testkit::kafka_brokers(), ws, topics, es, args)
}

/// [`bf`] with the Kafka broker at `brokers`.
fn bf_on(
    brokers: &str,
    ws: &Workspace,
    topics: &str,
    es: Option<(&str, &str)>,
    args: &[&str],
) -> std::process::Output {
    let mut command = ws.command(args);
    command
        .env("BF_KAFKA_BROKERS", brokers)
        .env("BF_KAFKA_TOPIC_PREFIX", topics)
        // A group of each test's own: groups span topics, and tests run at once.
        .env("BF_KAFKA_GROUP", topics)
        .env("BF_KAFKA_PARTITIONS", "3");
    if let Some((url, prefix)) = es {
        command
            .env("BF_ES_URL", url)
            .env("BF_ES_INDEX_PREFIX", prefix)
            .env("BF_ES_TIMEOUT", "600");
    }
    command.output().unwrap()
}

fn json(output: std::process::Output) -> serde_json::Value {
    assert_succeeded(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn run_synthetic(ws: &Workspace, end: &str) {
    ws.ok(&[
        "run",
        "--source",
        "synthetic",
        "--symbols",
        "AAA,BBB,CCC,DDD",
        "--start",
        "2024-01-01",
        "--end",
        end,
    ]);
}

/// A strategy "mine" buying below an RSI threshold: a higher one fires more.
fn mine(ws: &Workspace, threshold: u32) {
    let file = ws.path().join("mine.toml");
    std::fs::write(
        &file,
        format!("[[strategy]]\nname = \"mine\"\nrule = \"sql\"\nbuy = \"rsi_14 < {threshold}\"\nsell = \"false\"\n"),
    )
    .unwrap();
    ws.ok(&[
        "signals",
        "generate",
        "--symbols",
        "AAA,BBB,CCC,DDD",
        "--strategies",
        file.to_str().unwrap(),
    ]);
}

#[test]
fn the_lake_reaches_elasticsearch_through_kafka_and_only_changes_are_sent_again() {
    for (server, url) in bf_testkit::elasticsearch_servers() {
        let ws = Workspace::new();
        let (topics, indices) = prefixes();
        let es = Some((url.as_str(), indices.as_str()));
        run_synthetic(&ws, "2024-06-30");
        mine(&ws, 40);

        let published = json(bf(&ws, &topics, None, &["stream", "publish", "--json"]));
        let features = ws.scalar("SELECT count(*) FROM features") as u64;
        let signals = signal_keys(&ws);
        let by_table = |report: &serde_json::Value, table: &str| {
            report["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["table"] == table)
                .unwrap()
                .clone()
        };
        assert_eq!(
            by_table(&published, "features")["upserts"],
            features,
            "{published}"
        );
        assert_eq!(
            by_table(&published, "signals")["upserts"],
            signals.len(),
            "{published}"
        );

        let consumed = json(bf(&ws, &topics, es, &["stream", "consume", "--json"]));
        assert_eq!(consumed["dead_lettered"], 0, "{consumed}");
        assert_documents_are(&url, &format!("{indices}-signals"), &signals, server);
        assert_eq!(
            document_count(&url, &format!("{indices}-features")),
            features,
            "{server}"
        );

        // New bars, and a strategy that fires less: only the changes travel,
        // and signals that no longer fire are deleted from the index.
        run_synthetic(&ws, "2024-08-31");
        mine(&ws, 30);
        let again = json(bf(&ws, &topics, None, &["stream", "publish", "--json"]));
        let changed_features = by_table(&again, "features");
        assert_eq!(
            changed_features["from_version"],
            by_table(&published, "features")["to_version"]
        );
        let new_features = ws.scalar("SELECT count(*) FROM features") as u64 - features;
        // A new dividend restates every adjusted close before it: rows whose
        // values changed are sent again, never fewer than the new ones.
        assert!(
            changed_features["upserts"].as_u64().unwrap() >= new_features,
            "{again}"
        );
        assert!(
            by_table(&again, "signals")["deletes"].as_u64().unwrap() > 0,
            "{again}"
        );

        json(bf(&ws, &topics, es, &["stream", "consume", "--json"]));
        assert_documents_are(
            &url,
            &format!("{indices}-signals"),
            &signal_keys(&ws),
            server,
        );
        assert_eq!(
            document_count(&url, &format!("{indices}-features")),
            ws.scalar("SELECT count(*) FROM features") as u64,
            "{server}"
        );

        let nothing = json(bf(&ws, &topics, None, &["stream", "publish", "--json"]));
        for table in nothing["tables"].as_array().unwrap() {
            assert_eq!(table["upserts"], 0, "{nothing}");
            assert_eq!(table["deletes"], 0, "{nothing}");
        }
        let status = json(bf(&ws, &topics, None, &["stream", "status", "--json"]));
        for topic in status.as_array().unwrap() {
            assert_eq!(topic["lake_version"], topic["published_version"], "{topic}");
            for partition in topic["partitions"].as_array().unwrap() {
                assert_eq!(partition["lag"], 0, "{topic}");
            }
        }
    }
}

#[test]
fn a_poison_message_goes_to_the_dead_letter_topic_and_the_rest_is_indexed() {
    let (_, url) = bf_testkit::elasticsearch_servers().remove(1);
    let ws = Workspace::new();
    let (topics, indices) = prefixes();
    run_synthetic(&ws, "2024-03-31");
    json(bf(
        &ws,
        &topics,
        None,
        &["stream", "publish", "--json", "--tables", "signals"],
    ));
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bf_testkit::kafka_brokers())
        .create()
        .unwrap();
    let topic = format!("{topics}.signals");
    producer
        .send(
            BaseRecord::to(&topic)
                .partition(0)
                .key("AAA|1d|2024-01-02|x")
                .payload("not json"),
        )
        .unwrap();
    // JSON, but with a field the index's strict mapping refuses.
    producer
        .send(
            BaseRecord::to(&topic)
                .partition(0)
                .key("AAA|1d|2024-01-03|x")
                .payload(r#"{"op":"upsert","symbol":"AAA","no_such_field":1}"#),
        )
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    let output = bf(
        &ws,
        &topics,
        Some((&url, &indices)),
        &["stream", "consume", "--tables", "signals"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{topic} partition 0 offset"))
            && stderr.contains("not a JSON object")
            && stderr.contains(&format!("{topics}.dead-letter"))
            && stderr.contains("Elasticsearch refused it")
            && stderr.contains("2 dead-lettered"),
        "{stderr}"
    );
    assert_documents_are(
        &url,
        &format!("{indices}-signals"),
        &signal_keys(&ws),
        "poison",
    );

    // Committed past the poison message: a second consumer run has nothing to do.
    let again = json(bf(
        &ws,
        &topics,
        Some((&url, &indices)),
        &["stream", "consume", "--json", "--tables", "signals"],
    ));
    assert_eq!(again["messages"], 0, "{again}");
}

#[test]
fn kafka_down_is_one_line_naming_the_brokers() {
    let ws = Workspace::new();
    run_synthetic(&ws, "2024-01-31");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let brokers = listener.local_addr().unwrap().to_string();
    drop(listener);
    let output = ws
        .command(&["stream", "publish"])
        .env("BF_KAFKA_BROKERS", &brokers)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&brokers) && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// Waits (up to two minutes) until the test's group has no lag on any topic.
fn wait_for_no_lag(ws: &Workspace, topics: &str) {
    wait_for_no_lag_on(&bf_testkit::kafka_brokers(), ws, topics);
}

/// Waits until every lake version is published and consumed by the group.
fn wait_for_no_lag_on(brokers: &str, ws: &Workspace, topics: &str) {
    let mut status = serde_json::Value::Null;
    for _ in 0..120 {
        status = json(bf_on(
            brokers,
            ws,
            topics,
            None,
            &["stream", "status", "--json"],
        ));
        let unpublished = status.as_array().unwrap().iter().any(|t| {
            !t["published_version"].is_null() && t["lake_version"] != t["published_version"]
        });
        let lag: i64 = status
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["partitions"].as_array().unwrap())
            .map(|p| p["lag"].as_i64().unwrap())
            .sum();
        if lag == 0 && !unpublished {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("group {topics} still lags after two minutes: {status:#}");
}

/// A `bf` running in the background, killed if the test ends before it.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    /// Killed at once (SIGKILL), as a crash would.
    fn kill(mut self) {
        drop(self.0.take().map(|mut child| {
            let _ = child.kill();
            child.wait()
        }));
    }

    /// Ctrl-C, and its `--json` report.
    fn interrupt(mut self) -> serde_json::Value {
        let child = self.0.take().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        json(child.wait_with_output().unwrap())
    }
}

fn spawn(ws: &Workspace, topics: &str, es: (&str, &str), args: &[&str]) -> Running {
    spawn_on(&bf_testkit::kafka_brokers(), ws, topics, es, args)
}

fn spawn_on(
    brokers: &str,
    ws: &Workspace,
    topics: &str,
    es: (&str, &str),
    args: &[&str],
) -> Running {
    Running(Some(
        ws.command(args)
            .env("BF_KAFKA_BROKERS", brokers)
            .env("BF_KAFKA_TOPIC_PREFIX", topics)
            .env("BF_KAFKA_GROUP", topics)
            .env("BF_KAFKA_PARTITIONS", "3")
            .env("BF_ES_URL", es.0)
            .env("BF_ES_INDEX_PREFIX", es.1)
            .env("BF_ES_TIMEOUT", "600")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

/// A publisher and a consumer killed mid-work and restarted: the index ends
/// equal to the lake.
#[test]
fn killed_and_restarted_publisher_and_consumer_end_with_the_index_equal_to_the_lake() {
    let (_, url) = bf_testkit::elasticsearch_servers().remove(1);
    let ws = Workspace::new();
    let (topics, indices) = prefixes();
    let es = (url.as_str(), indices.as_str());
    large_run(&ws, "2024-06-30");
    let publisher = spawn(&ws, &topics, es, &PUBLISH);
    std::thread::sleep(Duration::from_millis(1500));
    publisher.kill();
    // A static member, killed while indexing and restarted under its name,
    // takes its partitions back at once.
    let static_member = [&CONSUME[..], &["--instance", "a"]].concat();
    let consumer = spawn(&ws, &topics, es, &static_member);
    json(bf(&ws, &topics, None, &PUBLISH));
    std::thread::sleep(Duration::from_secs(4));
    consumer.kill();
    let restarted = spawn(&ws, &topics, es, &static_member);
    wait_for_no_lag(&ws, &topics);
    restarted.interrupt();
    assert_lake_equals_index(&ws, &url, &indices);
}

/// The broker killed (SIGKILL) while a publisher and a consumer follow the
/// lake, the lake changing while it is down, then restarted on its data:
/// both carry on by themselves and the index ends equal to the lake.
#[test]
fn a_broker_killed_and_restarted_under_a_following_publisher_and_consumer_loses_nothing() {
    let mut broker = bf_testkit::kafka_broker::KafkaBroker::start().unwrap();
    let brokers = broker.brokers();
    let (_, url) = bf_testkit::elasticsearch_servers().remove(1);
    let ws = Workspace::new();
    let (topics, indices) = prefixes();
    let es = (url.as_str(), indices.as_str());
    large_run(&ws, "2024-03-31");
    let follow = [&PUBLISH[..], &["--follow", "--poll", "500ms"]].concat();
    let publisher = spawn_on(&brokers, &ws, &topics, es, &follow);
    let consumer = spawn_on(&brokers, &ws, &topics, es, &CONSUME);
    std::thread::sleep(Duration::from_secs(3));
    broker.kill();
    large_run(&ws, "2024-06-30");
    std::thread::sleep(Duration::from_secs(2));
    broker.restart().unwrap();
    wait_for_no_lag_on(&brokers, &ws, &topics);
    publisher.kill();
    consumer.interrupt();
    assert_lake_equals_index(&ws, &url, &indices);
}

/// Two consumers of one group share the partitions; when one leaves, the
/// other takes over all of them.
#[test]
fn two_consumers_share_the_partitions_and_one_takes_over() {
    let (_, url) = bf_testkit::elasticsearch_servers().remove(1);
    let ws = Workspace::new();
    let (topics, indices) = prefixes();
    let es = (url.as_str(), indices.as_str());
    large_run(&ws, "2024-03-31");
    let first = spawn(&ws, &topics, es, &CONSUME);
    let second = spawn(&ws, &topics, es, &CONSUME);
    json(bf(&ws, &topics, None, &PUBLISH));
    wait_for_no_lag(&ws, &topics);
    let second = second.interrupt();
    // New bars reach every partition, all consumed by the one left.
    large_run(&ws, "2024-04-30");
    json(bf(&ws, &topics, None, &PUBLISH));
    wait_for_no_lag(&ws, &topics);
    let first = first.interrupt();
    assert_lake_equals_index(&ws, &url, &indices);
    let partitions = |report: &serde_json::Value| report["partitions"].as_array().unwrap().len();
    assert!(
        partitions(&second) > 0,
        "the second consumer had partitions: {second}"
    );
    assert_eq!(
        partitions(&first),
        6,
        "the first took over all of them: {first}"
    );
}

const PUBLISH: [&str; 5] = [
    "stream",
    "publish",
    "--json",
    "--tables",
    "features,signals",
];
const CONSUME: [&str; 8] = [
    "stream",
    "consume",
    "--json",
    "--follow",
    "--batch",
    "500",
    "--tables",
    "features,signals",
];

fn large_run(ws: &Workspace, end: &str) {
    ws.ok(&[
        "run",
        "--source",
        "synthetic",
        "--symbol-list",
        "demo_large",
        "--start",
        "2024-01-01",
        "--end",
        end,
    ]);
}

fn assert_lake_equals_index(ws: &Workspace, url: &str, indices: &str) {
    assert_documents_are(
        url,
        &format!("{indices}-signals"),
        &signal_keys(ws),
        "signals",
    );
    assert_eq!(
        document_count(url, &format!("{indices}-features")),
        ws.scalar("SELECT count(*) FROM features") as u64
    );
}

/// Elasticsearch refusing every request for a while: the consumer waits,
/// commits nothing, and indexes everything once it is back.
#[test]
fn a_consumer_waits_out_an_elasticsearch_outage() {
    use bf_testkit::es_proxy::{EsFaultProxy, EsFaults};
    let (_, url) = bf_testkit::elasticsearch_servers().remove(1);
    let down = EsFaults {
        item_rejections: 0.0,
        request_failures: 1.0,
        dropped_answers: 0.0,
        seed: 7,
    };
    let proxy = EsFaultProxy::spawn(&url, down).unwrap();
    let ws = Workspace::new();
    let (topics, indices) = prefixes();
    large_run(&ws, "2024-02-29");
    json(bf(&ws, &topics, None, &PUBLISH));
    let proxy_url = proxy.url();
    let consumer = spawn(&ws, &topics, (&proxy_url, &indices), &CONSUME);
    std::thread::sleep(Duration::from_secs(6));
    let status = json(bf(&ws, &topics, None, &["stream", "status", "--json"]));
    let committed: i64 = status
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["partitions"].as_array().unwrap())
        .filter_map(|p| p["committed"].as_i64())
        .sum();
    assert_eq!(
        committed, 0,
        "nothing committed while Elasticsearch is down: {status}"
    );
    assert!(proxy.counts().requests_failed > 1, "{:?}", proxy.counts());
    proxy.set_faults(EsFaults {
        request_failures: 0.0,
        ..down
    });
    wait_for_no_lag(&ws, &topics);
    consumer.interrupt();
    assert_lake_equals_index(&ws, &url, &indices);
}

/// Yahoo → `bf data watch` → lake → `bf stream publish --follow` → Kafka →
/// `bf stream consume --follow` → Elasticsearch: each new bar is searchable
/// seconds after the watch committed it (real seconds, printed), and the
/// index ends equal to the lake.
#[test]
fn a_watched_bar_reaches_elasticsearch_within_seconds() {
    use super::watch::{SPEED, Watch, at, is, utc};
    use bf_testkit::yahoo_server::{Server, ServerConfig};
    use chrono::DurationRound as _;
    let (_, url) = bf_testkit::elasticsearch_servers().remove(1);
    let ws = Workspace::new();
    let (topics, indices) = prefixes();
    let es = (url.as_str(), indices.as_str());
    let mut config = ServerConfig::new(chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    let clock = bf_core::Clock::simulated(utc("2026-11-30T14:29:00Z"), SPEED);
    config.clock = Some(clock);
    let server = Server::spawn(config, 0).unwrap();
    let publisher = spawn(
        &ws,
        &topics,
        es,
        &[
            "stream", "publish", "--json", "--follow", "--poll", "200ms", "--tables", "ohlcv",
        ],
    );
    let consumer = spawn(
        &ws,
        &topics,
        es,
        &[
            "stream", "consume", "--json", "--follow", "--tables", "ohlcv",
        ],
    );
    let mut watch = Watch::start(&ws, &server, clock, "AAPL");
    let index = format!("{indices}-ohlcv");
    let mut latencies = Vec::new();
    while latencies.len() < 3 {
        // A loaded machine may poll late and bring two or three bars at once;
        // the newest of them is the one timed.
        let poll = watch.wait_for("poll with a new bar", |e| {
            is(e, "poll")
                && e["bars_inserted"].as_u64().is_some_and(|n| n >= 1)
                && at(e) > utc("2026-11-30T14:31:00Z")
        });
        let committed = std::time::Instant::now();
        let bar = at(&poll)
            .duration_trunc(chrono::TimeDelta::minutes(1))
            .unwrap()
            - chrono::TimeDelta::minutes(1);
        while documents_matching(
            &url,
            &index,
            serde_json::json!({"range": {"ts": {"gte": bar.to_rfc3339()}}}),
        )
        .unwrap_or(0)
            == 0
        {
            assert!(
                committed.elapsed() < Duration::from_secs(60),
                "the bar of {bar} never reached {index}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        latencies.push(committed.elapsed());
    }
    eprintln!("bar committed → searchable: {latencies:?}");
    let (code, _, stderr) = watch.stop("-INT");
    assert_eq!(code, Some(0), "{stderr}");
    json(bf(
        &ws,
        &topics,
        None,
        &["stream", "publish", "--json", "--tables", "ohlcv"],
    ));
    wait_for_no_lag(&ws, &topics);
    publisher.kill();
    consumer.interrupt();
    assert_eq!(
        document_count(&url, &index),
        ws.scalar("SELECT count(*) FROM ohlcv") as u64
    );
}

//! The Elasticsearch sink against real Elasticsearch-API servers that
//! `scripts/test` starts: osmem-server (OpenSearch 3 API, strict) and noida-db
//! (Elasticsearch 8 persona). Every test runs against both.

use std::sync::atomic::{AtomicUsize, Ordering};

use bf_core::Symbol;
use bf_core::tables::OHLCV;
use bf_lake::Lake;
use bf_sinks::elasticsearch::{EsClient, EsConfig, status, sync};
use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
use bf_sources::{ActionsBuilder, BarsBuilder};
use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use serde_json::Value;

fn servers() -> Vec<(&'static str, String)> {
    bf_testkit::elasticsearch_servers()
}

/// A client with an index prefix of its own, so tests do not meet.
fn client(url: &str) -> EsClient {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut config = EsConfig::new(url).unwrap();
    config.index_prefix = format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    EsClient::new(config).unwrap()
}

fn bars(symbols: &[&str], start: NaiveDate, end: NaiveDate) -> RecordBatch {
    let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
    let mut actions = ActionsBuilder::new(SOURCE_NAME, 1);
    for symbol in symbols {
        Synthetic::new(3).generate(
            &Symbol::parse(symbol).unwrap(),
            start,
            end,
            &mut bars,
            &mut actions,
        );
    }
    bars.finish()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Direct requests to the server, to check what it holds.
async fn get(url: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{url}/{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn documents(url: &str, index: &str) -> u64 {
    reqwest::Client::new()
        .post(format!("{url}/{index}/_refresh"))
        .send()
        .await
        .unwrap();
    get(url, &format!("{index}/_count")).await.1["count"]
        .as_u64()
        .unwrap()
}

async fn rows(lake: &Lake, query: &str) -> u64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let result = lake.sql(query).await.unwrap();
    result.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_mirrors_the_table_then_sends_only_what_changed() {
    for (server, url) in servers() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let client = client(&url);
        let index = format!("{}-ohlcv", client.config().index_prefix);
        let ohlcv = bars(&["AAA", "BBB"], date(2021, 1, 1), date(2021, 3, 31));
        lake.upsert(&OHLCV, vec![ohlcv.clone()]).await.unwrap();

        let first = sync(&lake, &client, &[&OHLCV], &()).await.unwrap();
        assert!(first.complete(), "{server}: {first:?}");
        assert_eq!(first.tables[0].indexed, ohlcv.num_rows(), "{server}");
        assert_eq!(
            documents(&url, &index).await,
            ohlcv.num_rows() as u64,
            "{server}"
        );
        let (found, document) = get(
            &url,
            &format!("{index}/_doc/AAA%7C1d%7C2021-01-04%7C2021-01-04T00:00:00Z"),
        )
        .await;
        assert_eq!(found, 200, "{server}: {document}");
        assert_eq!(document["_source"]["@timestamp"], "2021-01-04T00:00:00Z");
        assert!(document["_source"]["close"].as_f64().unwrap() > 0.0);

        let again = sync(&lake, &client, &[&OHLCV], &()).await.unwrap();
        assert_eq!(
            (again.tables[0].indexed, again.tables[0].bulk.requests),
            (0, 0),
            "{server}: nothing changed, nothing sent"
        );

        // A corrected bar, a new symbol, and BBB removed from the lake.
        let corrected = ohlcv.slice(0, 1);
        let mut columns = corrected.columns().to_vec();
        columns[corrected.schema().index_of("close").unwrap()] =
            std::sync::Arc::new(datafusion::arrow::array::Float64Array::from(vec![123.45]));
        let corrected = RecordBatch::try_new(corrected.schema(), columns).unwrap();
        let ccc = bars(&["CCC"], date(2021, 1, 1), date(2021, 1, 31));
        lake.upsert(&OHLCV, vec![corrected, ccc.clone()])
            .await
            .unwrap();
        let bbb = rows(&lake, "SELECT count(*) FROM ohlcv WHERE symbol = 'BBB'").await;
        use datafusion::prelude::{col, lit};
        lake.replace_by_range(&OHLCV, col("symbol").eq(lit("BBB")), None)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();

        let changes = sync(&lake, &client, &[&OHLCV], &()).await.unwrap();
        let table = &changes.tables[0];
        assert!(changes.complete(), "{server}: {changes:?}");
        assert_eq!(
            (table.indexed, table.deleted as u64),
            (1 + ccc.num_rows(), bbb),
            "{server}"
        );
        let lake_rows = rows(&lake, "SELECT count(*) FROM ohlcv").await;
        assert_eq!(documents(&url, &index).await, lake_rows, "{server}");
        let statuses = status(&lake, &client).await.unwrap();
        let ohlcv_status = statuses.iter().find(|s| s.table == "ohlcv").unwrap();
        assert_eq!(
            ohlcv_status.synced_version, ohlcv_status.lake_version,
            "{server}"
        );
        assert_eq!(ohlcv_status.documents, Some(lake_rows), "{server}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_deletes_documents_that_no_row_stands_for() {
    for (server, url) in servers() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let client = client(&url);
        let index = format!("{}-ohlcv", client.config().index_prefix);
        lake.upsert(
            &OHLCV,
            vec![bars(&["AAA"], date(2021, 1, 1), date(2021, 1, 31))],
        )
        .await
        .unwrap();
        sync(&lake, &client, &[&OHLCV], &()).await.unwrap();

        // Another lake synced into the same index: its first sync replaces
        // the first lake's documents.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Lake::open(other_dir.path().to_str().unwrap()).unwrap();
        other
            .upsert(
                &OHLCV,
                vec![bars(&["ZZZ"], date(2021, 1, 1), date(2021, 1, 15))],
            )
            .await
            .unwrap();
        let report = sync(&other, &client, &[&OHLCV], &()).await.unwrap();
        assert!(report.tables[0].stale_deleted > 0, "{server}: {report:?}");
        let expected = rows(&other, "SELECT count(*) FROM ohlcv").await;
        assert_eq!(documents(&url, &index).await, expected, "{server}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = EsConfig::new(&url).unwrap();
    config.retry.max_retries = 1;
    config.retry.first_backoff = std::time::Duration::from_millis(10);
    let client = EsClient::new(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let err = sync(&lake, &client, &[&OHLCV], &()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("unreachable"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_through_item_rejections_request_failures_and_lost_answers_ends_equal() {
    use bf_testkit::es_proxy::{EsFaultProxy, EsFaults};
    for (server, url) in servers() {
        let proxy = EsFaultProxy::spawn(
            &url,
            EsFaults {
                item_rejections: 0.10,
                request_failures: 0.05,
                dropped_answers: 0.05,
                seed: 11,
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut config = client(&proxy.url()).config().clone();
        // Small bodies, so that several hundred requests meet the faults
        // (each kind then happens for sure); short waits, so the test is quick.
        config.bulk_bytes = 2 * 1024;
        config.retry.max_retries = 10;
        config.retry.first_backoff = std::time::Duration::from_millis(5);
        config.retry.max_wait = std::time::Duration::from_millis(100);
        let client = EsClient::new(config).unwrap();
        let index = format!("{}-ohlcv", client.config().index_prefix);

        lake.upsert(
            &OHLCV,
            vec![bars(
                &["AAA", "BBB", "CCC"],
                date(2020, 1, 1),
                date(2021, 12, 31),
            )],
        )
        .await
        .unwrap();
        let first = sync(&lake, &client, &[&OHLCV], &()).await.unwrap();
        assert!(first.complete(), "{server}: {first:?}");
        use datafusion::prelude::{col, lit};
        lake.replace_by_range(&OHLCV, col("symbol").eq(lit("BBB")), None)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        lake.upsert(
            &OHLCV,
            vec![bars(&["DDD"], date(2021, 1, 1), date(2021, 2, 28))],
        )
        .await
        .unwrap();
        let second = sync(&lake, &client, &[&OHLCV], &()).await.unwrap();
        assert!(second.complete(), "{server}: {second:?}");

        let faults = proxy.counts();
        assert!(faults.requests > 300, "{server}: {faults:?}");
        assert!(
            faults.items_rejected > 0 && faults.requests_failed > 0 && faults.answers_dropped > 0,
            "{server}: every kind of fault happened: {faults:?}"
        );
        assert!(first.tables[0].bulk.retried > 0, "{server}: {first:?}");
        let lake_rows = rows(&lake, "SELECT count(*) FROM ohlcv").await;
        assert_eq!(documents(&url, &index).await, lake_rows, "{server}");
        let (gone, _) = get(
            &url,
            &format!("{index}/_doc/BBB%7C1d%7C2021-01-04%7C2021-01-04T00:00:00Z"),
        )
        .await;
        assert_eq!(gone, 404, "{server}: BBB's documents are deleted");
    }
}

//! The lake against real Delta tables on disk.

use bf_core::Symbol;
use bf_core::tables::{CORPORATE_ACTIONS, OHLCV};
use bf_lake::{Lake, LakeError};
use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
use bf_sources::{ActionsBuilder, BarsBuilder};
use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn bars(symbols: &[&str], start: NaiveDate, end: NaiveDate) -> (RecordBatch, RecordBatch) {
    let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
    let mut actions = ActionsBuilder::new(SOURCE_NAME, 1);
    for symbol in symbols {
        Synthetic::new(42).generate(
            &Symbol::parse(symbol).unwrap(),
            start,
            end,
            &mut bars,
            &mut actions,
        );
    }
    (bars.finish(), actions.finish())
}

/// A fresh lake on local disk, and one in the S3-compatible server that
/// `scripts/test` starts: every test below runs on both.
struct TestLake {
    lake: Lake,
    _dir: Option<tempfile::TempDir>,
}

fn local_lake() -> TestLake {
    let dir = tempfile::tempdir().unwrap();
    TestLake {
        lake: Lake::open(dir.path().to_str().unwrap()).unwrap(),
        _dir: Some(dir),
    }
}

fn s3_lake() -> TestLake {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let bucket = std::env::var("BF_TEST_S3_BUCKET").expect(
        "BF_TEST_S3_BUCKET and AWS_ENDPOINT_URL are not set: run scripts/test, which starts the S3 test server",
    );
    let prefix = format!(
        "s3://{bucket}/lake-it-{}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    TestLake {
        lake: Lake::open(&prefix).unwrap(),
        _dir: None,
    }
}

macro_rules! on_local_disk_and_s3 {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn local() {
                    let lake = super::local_lake();
                    super::$test(lake.lake.clone()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn s3() {
                    let lake = super::s3_lake();
                    super::$test(lake.lake.clone()).await;
                }
            }
        )*
    };
}

on_local_disk_and_s3!(
    upserting_the_same_rows_twice_changes_nothing,
    a_later_range_appends_only_the_new_days,
    a_changed_bar_is_replaced_in_one_commit,
    sql_reads_every_table_and_reports_errors,
    a_replacing_upsert_deletes_stored_rows_of_its_scope_that_it_no_longer_has,
    concurrent_upserts_of_overlapping_rows_store_the_union_once,
    concurrent_appends_to_a_missing_table_store_each_key_once,
    optimize_compacts_and_vacuum_deletes_unreferenced_files,
    row_changes_are_the_changed_rows_and_the_keys_of_deleted_ones,
    a_replace_by_range_compares_each_range_and_commits_once,
    an_upsert_by_range_keeps_the_stored_rows_it_was_not_given,
);

async fn count(lake: &Lake, query: &str) -> i64 {
    let result = lake.sql(query).await.unwrap();
    result.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0)
}

async fn duplicate_keys(lake: &Lake) -> i64 {
    count(
        lake,
        "SELECT count(*) FROM (SELECT symbol, \"interval\", date FROM ohlcv \
         GROUP BY symbol, \"interval\", date HAVING count(*) > 1)",
    )
    .await
}

async fn upserting_the_same_rows_twice_changes_nothing(lake: Lake) {
    let (ohlcv, actions) = bars(&["AAA", "BBB"], date(2015, 1, 1), date(2020, 12, 31));
    let rows = ohlcv.num_rows();

    let first = lake.upsert(&OHLCV, vec![ohlcv.clone()]).await.unwrap();
    assert_eq!(
        (first.inserted, first.updated, first.committed),
        (rows, 0, true)
    );
    lake.upsert(&CORPORATE_ACTIONS, vec![actions.clone()])
        .await
        .unwrap();
    let version = lake.version(&OHLCV).await.unwrap();

    let again = lake.upsert(&OHLCV, vec![ohlcv]).await.unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 0, rows)
    );
    assert!(!again.committed);
    assert_eq!(again.files_added, 0);
    assert_eq!(
        lake.version(&OHLCV).await.unwrap(),
        version,
        "no new commit"
    );
    let actions_again = lake
        .upsert(&CORPORATE_ACTIONS, vec![actions])
        .await
        .unwrap();
    assert!(!actions_again.committed);

    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv").await,
        rows as i64
    );
    assert_eq!(duplicate_keys(&lake).await, 0);
}

async fn a_later_range_appends_only_the_new_days(lake: Lake) {
    let (early, _) = bars(&["AAA"], date(2020, 1, 1), date(2020, 6, 30));
    lake.upsert(&OHLCV, vec![early.clone()]).await.unwrap();

    // Overlap the stored range by a month, as an incremental fetch does.
    let (later, _) = bars(&["AAA"], date(2020, 6, 1), date(2020, 12, 31));
    let (whole, _) = bars(&["AAA"], date(2020, 1, 1), date(2020, 12, 31));
    let new_days = whole.num_rows() - early.num_rows();
    let metrics = lake.upsert(&OHLCV, vec![later.clone()]).await.unwrap();
    assert_eq!(metrics.inserted, new_days);
    // The overlap's adjusted closes moved with the dividends after June: updated, not duplicated.
    assert_eq!(
        metrics.inserted + metrics.updated + metrics.unchanged,
        later.num_rows()
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv").await,
        whole.num_rows() as i64
    );
    assert_eq!(duplicate_keys(&lake).await, 0);
}

async fn a_changed_bar_is_replaced_in_one_commit(lake: Lake) {
    let (ohlcv, _) = bars(&["AAA", "BBB"], date(2021, 1, 1), date(2021, 3, 31));
    let before = lake
        .upsert(&OHLCV, vec![ohlcv.clone()])
        .await
        .unwrap()
        .version
        .unwrap();

    // Correct AAA's last close and add one brand-new symbol in the same upsert.
    let aaa_last = (0..ohlcv.num_rows())
        .rfind(|&i| ohlcv.column(0).as_string::<i32>().value(i) == "AAA")
        .unwrap();
    let corrected = ohlcv.slice(aaa_last, 1);
    let mut columns = corrected.columns().to_vec();
    let close_index = corrected.schema().index_of("close").unwrap();
    columns[close_index] =
        std::sync::Arc::new(datafusion::arrow::array::Float64Array::from(vec![123.45]));
    let corrected = RecordBatch::try_new(corrected.schema(), columns).unwrap();
    let (ccc, _) = bars(&["CCC"], date(2021, 1, 1), date(2021, 1, 31));

    let metrics = lake
        .upsert(&OHLCV, vec![corrected, ccc.clone()])
        .await
        .unwrap();
    assert_eq!((metrics.updated, metrics.inserted), (1, ccc.num_rows()));
    assert_eq!(metrics.version, Some(before + 1), "one commit");
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) FROM ohlcv WHERE symbol = 'AAA' AND close = 123.45"
        )
        .await,
        1
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv").await,
        (ohlcv.num_rows() + ccc.num_rows()) as i64
    );
    assert_eq!(duplicate_keys(&lake).await, 0);

    // The upsert rewrote BBB's rows too (they shared AAA's file), but only AAA
    // (from its corrected last bar) and CCC (from its first) changed, as the
    // commit logged.
    let changed = lake.changed_series_since(&OHLCV, before).await.unwrap();
    let key = |s: &str| (s.to_string(), "1d".to_string());
    let first_date = |batch: &RecordBatch, row: usize| {
        batch
            .column_by_name("date")
            .unwrap()
            .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
            .value(row)
    };
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(changed[&key("AAA")], first_date(&ohlcv, aaa_last));
    assert_eq!(changed[&key("CCC")], first_date(&ccc, 0));

    // A commit that logs nothing (files committed for another engine; here
    // every row written again as it is): the rows are compared instead, with
    // the same answer.
    let stored = lake.table_files(&OHLCV).await.unwrap().unwrap();
    let schema = OHLCV.schema();
    let rows: Vec<RecordBatch> = lake
        .sql("SELECT * FROM ohlcv")
        .await
        .unwrap()
        .batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()).unwrap())
                .collect();
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect();
    let written = lake.write_files(&OHLCV, rows).await.unwrap();
    let replaced = stored.files.iter().map(|f| f.url.clone()).collect();
    lake.commit_files(&OHLCV, stored.version, &written, &replaced)
        .await
        .unwrap();
    assert_eq!(
        lake.changed_series_since(&OHLCV, before).await.unwrap(),
        changed
    );
    let latest = lake.version(&OHLCV).await.unwrap().unwrap();
    assert!(
        lake.changed_series_since(&OHLCV, latest)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_table_with_other_columns_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    // Another tool wrote an `ohlcv` table with an extra column.
    let (ohlcv, _) = bars(&["AAA"], date(2021, 1, 1), date(2021, 1, 31));
    let mut fields = ohlcv.schema().fields().to_vec();
    fields.push(std::sync::Arc::new(
        datafusion::arrow::datatypes::Field::new(
            "vendor_flag",
            datafusion::arrow::datatypes::DataType::Int64,
            true,
        ),
    ));
    let mut columns = ohlcv.columns().to_vec();
    columns.push(std::sync::Arc::new(
        datafusion::arrow::array::Int64Array::from(vec![1; ohlcv.num_rows()]),
    ));
    let foreign = RecordBatch::try_new(
        std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        columns,
    )
    .unwrap();
    let path = dir.path().canonicalize().unwrap().join("ohlcv");
    std::fs::create_dir_all(&path).unwrap();
    let url = url::Url::from_directory_path(path).unwrap();
    deltalake::DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .write(vec![foreign])
        .await
        .unwrap();

    let err = lake.upsert(&OHLCV, vec![ohlcv]).await.unwrap_err();
    assert!(matches!(err, LakeError::SchemaMismatch { .. }));
    let message = err.to_string();
    assert!(
        message.contains("table ohlcv") && message.contains("vendor_flag"),
        "{message}"
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv").await,
        21,
        "stored rows untouched"
    );
}

async fn sql_reads_every_table_and_reports_errors(lake: Lake) {
    let (ohlcv, actions) = bars(&["AAA", "BBB", "CCC"], date(2000, 1, 1), date(2010, 12, 31));
    lake.upsert(&OHLCV, vec![ohlcv.clone()]).await.unwrap();
    lake.upsert(&CORPORATE_ACTIONS, vec![actions.clone()])
        .await
        .unwrap();
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv").await,
        ohlcv.num_rows() as i64
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM corporate_actions").await,
        actions.num_rows() as i64
    );

    let empty = lake
        .sql("SELECT symbol FROM ohlcv WHERE symbol = 'ZZZ'")
        .await
        .unwrap();
    assert_eq!(empty.schema.field(0).name(), "symbol");
    assert_eq!(
        empty
            .batches
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        0
    );

    let err = lake.sql("SELECT nope FROM ohlcv").await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    let last = lake.last_bars(bf_core::Interval::D1).await.unwrap();
    assert_eq!(last.len(), 3);
    let newest = count(&lake, "SELECT CAST(max(date) AS BIGINT) FROM ohlcv").await;
    for bar in last.values() {
        let days = bf_core::dates::days_since_epoch(bar.date);
        assert_eq!(i64::from(days), newest);
        assert_eq!(
            bar.ts,
            i64::from(days) * bf_core::dates::MICROS_PER_DAY,
            "a daily bar's ts is its date"
        );
        assert!(bar.close > 0.0 && bar.adj_close > 0.0);
    }
}

async fn a_replacing_upsert_deletes_stored_rows_of_its_scope_that_it_no_longer_has(lake: Lake) {
    async fn replace(
        lake: &Lake,
        rows: Vec<RecordBatch>,
        scope: datafusion::prelude::Expr,
    ) -> bf_lake::UpsertMetrics {
        let mut replace = lake.replace_by_range(&OHLCV, scope, None).await.unwrap();
        replace.push(rows, None).await.unwrap();
        replace.commit().await.unwrap()
    }
    use datafusion::prelude::{col, lit};
    let (ohlcv, _) = bars(&["AAA", "BBB"], date(2021, 1, 1), date(2021, 3, 31));
    lake.upsert(&OHLCV, vec![ohlcv.clone()]).await.unwrap();
    let aaa_rows = count(&lake, "SELECT count(*) FROM ohlcv WHERE symbol = 'AAA'").await;
    let bbb_rows = ohlcv.num_rows() as i64 - aaa_rows;
    let aaa_scope = || col("symbol").eq(lit("AAA"));

    // AAA's new content: only its first ten bars (first in the batch), unchanged.
    let first_ten = ohlcv.slice(0, 10);
    let before = lake.version(&OHLCV).await.unwrap().unwrap();
    let metrics = replace(&lake, vec![first_ten.clone()], aaa_scope()).await;
    assert_eq!(
        (
            metrics.deleted,
            metrics.inserted,
            metrics.updated,
            metrics.unchanged
        ),
        (aaa_rows as usize - 10, 0, 0, 10)
    );
    assert_eq!(metrics.version, Some(before + 1), "one commit");
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv WHERE symbol = 'AAA'").await,
        10
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv WHERE symbol = 'BBB'").await,
        bbb_rows,
        "rows outside the scope stay"
    );

    // The same content again: nothing to do, no commit.
    let again = replace(&lake, vec![first_ten], aaa_scope()).await;
    assert_eq!((again.deleted, again.committed), (0, false));

    // Nothing at all for the scope: all of it goes.
    let emptied = replace(&lake, Vec::new(), aaa_scope()).await;
    assert_eq!((emptied.deleted, emptied.committed), (10, true));
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv WHERE symbol = 'AAA'").await,
        0
    );
    assert_eq!(count(&lake, "SELECT count(*) FROM ohlcv").await, bbb_rows);
}

async fn concurrent_upserts_of_overlapping_rows_store_the_union_once(lake: Lake) {
    let sets = [
        ["AAA", "BBB"],
        ["BBB", "CCC"],
        ["CCC", "DDD"],
        ["DDD", "AAA"],
        ["AAA", "CCC"],
        ["BBB", "DDD"],
    ];
    let writers = sets.map(|symbols| {
        let lake = lake.clone();
        tokio::spawn(async move {
            let (ohlcv, _) = bars(&symbols, date(2021, 1, 1), date(2021, 6, 30));
            lake.upsert(&OHLCV, vec![ohlcv]).await.unwrap()
        })
    });
    let mut conflicts = 0;
    for writer in writers {
        conflicts += writer.await.unwrap().conflicts_retried;
    }
    let (all, _) = bars(
        &["AAA", "BBB", "CCC", "DDD"],
        date(2021, 1, 1),
        date(2021, 6, 30),
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM ohlcv").await,
        all.num_rows() as i64,
        "the union, after {conflicts} conflicts"
    );
    assert_eq!(duplicate_keys(&lake).await, 0);
}

/// Writers that each found no table (a first `features build` in several
/// processes) append overlapping rows: after any interleaving every writer
/// succeeds and each key is stored once. The race is run on many fresh lakes.
async fn concurrent_appends_to_a_missing_table_store_each_key_once(root: Lake) {
    let sets = [
        ["AAA", "BBB"],
        ["BBB", "CCC"],
        ["CCC", "AAA"],
        ["AAA", "BBB"],
    ];
    let (all, _) = bars(&["AAA", "BBB", "CCC"], date(2021, 1, 1), date(2021, 3, 31));
    let mut fallbacks = 0;
    for repetition in 0..12 {
        let lake = Lake::open(
            root.root()
                .join(&format!("race-{repetition}/"))
                .unwrap()
                .as_str(),
        )
        .unwrap();
        let writers = sets.map(|symbols| {
            let lake = lake.clone();
            tokio::spawn(async move {
                let (ohlcv, _) = bars(&symbols, date(2021, 1, 1), date(2021, 3, 31));
                lake.append(&OHLCV, vec![ohlcv], None).await
            })
        });
        for writer in writers {
            let metrics = writer
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("repetition {repetition}: a writer failed: {e}"));
            fallbacks += metrics.conflicts_retried;
        }
        assert_eq!(
            count(&lake, "SELECT count(*) FROM ohlcv").await,
            all.num_rows() as i64,
            "repetition {repetition}: the union"
        );
        assert_eq!(duplicate_keys(&lake).await, 0, "repetition {repetition}");
    }
    assert!(fallbacks >= 12 * 3, "every loser compared: {fallbacks}");
}

async fn row_changes_are_the_changed_rows_and_the_keys_of_deleted_ones(lake: Lake) {
    use datafusion::prelude::{col, lit};
    let rows = |batches: &[RecordBatch]| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
    assert!(
        lake.row_changes_since(&OHLCV, None)
            .await
            .unwrap()
            .is_none()
    );

    let (ohlcv, _) = bars(&["AAA", "BBB"], date(2021, 1, 1), date(2021, 3, 31));
    lake.upsert(&OHLCV, vec![ohlcv.clone()]).await.unwrap();
    let everything = lake.row_changes_since(&OHLCV, None).await.unwrap().unwrap();
    assert_eq!(
        (rows(&everything.upserts), rows(&everything.deletes)),
        (ohlcv.num_rows(), 0),
        "a first sync gets every row"
    );
    let first = everything.version;
    let bbb_rows = count(&lake, "SELECT count(*) FROM ohlcv WHERE symbol = 'BBB'").await as usize;

    // One corrected close, one new symbol (a MERGE rewriting AAA's and BBB's
    // files), then all of BBB deleted.
    let corrected = ohlcv.slice(0, 1);
    let mut columns = corrected.columns().to_vec();
    columns[corrected.schema().index_of("close").unwrap()] =
        std::sync::Arc::new(datafusion::arrow::array::Float64Array::from(vec![123.45]));
    let corrected = RecordBatch::try_new(corrected.schema(), columns).unwrap();
    let (ccc, _) = bars(&["CCC"], date(2021, 1, 1), date(2021, 1, 31));
    lake.upsert(&OHLCV, vec![corrected, ccc.clone()])
        .await
        .unwrap();
    lake.replace_by_range(&OHLCV, col("symbol").eq(lit("BBB")), None)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();

    let changes = lake
        .row_changes_since(&OHLCV, Some(first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changes.version, first + 2);
    assert_eq!(
        rows(&changes.upserts),
        1 + ccc.num_rows(),
        "the changed row and the new ones"
    );
    let upserted =
        datafusion::arrow::compute::concat_batches(&changes.upserts[0].schema(), &changes.upserts)
            .unwrap();
    assert_eq!(
        upserted.schema().fields().len(),
        OHLCV.schema().fields().len(),
        "whole rows"
    );
    let closes = upserted.column_by_name("close").unwrap();
    let closes = closes.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    assert!(closes.iter().any(|c| c == Some(123.45)));
    assert_eq!(rows(&changes.deletes), bbb_rows, "every BBB key");
    for batch in &changes.deletes {
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, OHLCV.key, "keys only");
    }

    // A compaction changes no row.
    let before = lake.version(&OHLCV).await.unwrap().unwrap();
    lake.optimize(&OHLCV, true).await.unwrap();
    let compacted = lake
        .row_changes_since(&OHLCV, Some(before))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rows(&compacted.upserts), rows(&compacted.deletes)), (0, 0));
}

async fn optimize_compacts_and_vacuum_deletes_unreferenced_files(lake: Lake) {
    let (ohlcv, _) = bars(&["AAA", "BBB"], date(2021, 1, 1), date(2021, 6, 30));
    // Five commits, five files.
    let step = ohlcv.num_rows().div_ceil(5);
    for start in (0..ohlcv.num_rows()).step_by(step) {
        let part = ohlcv.slice(start, step.min(ohlcv.num_rows() - start));
        lake.upsert(&OHLCV, vec![part]).await.unwrap();
    }
    let before = count(&lake, "SELECT count(*) FROM ohlcv").await;
    let version = lake.version(&OHLCV).await.unwrap();

    let compacted = lake.optimize(&OHLCV, true).await.unwrap().unwrap();
    assert_eq!((compacted.files_removed, compacted.files_added), (5, 1));
    assert_eq!(compacted.version, version.map(|v| v + 1), "one commit");
    assert_eq!(count(&lake, "SELECT count(*) FROM ohlcv").await, before);
    assert_eq!(duplicate_keys(&lake).await, 0);

    let dry = lake.vacuum(&OHLCV, 0, true).await.unwrap().unwrap();
    assert_eq!(dry.files_deleted, 5);
    let vacuumed = lake.vacuum(&OHLCV, 0, false).await.unwrap().unwrap();
    assert_eq!(vacuumed.files_deleted, 5, "the five compacted-away files");
    assert_eq!(count(&lake, "SELECT count(*) FROM ohlcv").await, before);
    // Neither changed a row, as their log entries say: the files the
    // compaction removed are gone, so comparing rows could not tell.
    assert!(
        lake.changed_series_since(&OHLCV, version.unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        lake.optimize(&CORPORATE_ACTIONS, false)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn many_commits_leave_a_checkpoint_so_opening_stays_fast() {
    let lake = local_lake();
    let (ohlcv, _) = bars(&["AAA"], date(2021, 1, 1), date(2021, 12, 31));
    let mut version = None;
    for row in 0..101 {
        version = lake
            .lake
            .append(&OHLCV, vec![ohlcv.slice(row, 1)], version)
            .await
            .unwrap()
            .version;
    }
    let log = lake._dir.as_ref().unwrap().path().join("ohlcv/_delta_log");
    // delta-rs checkpoints every 100 commits (the table's checkpointInterval).
    let checkpoints: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".checkpoint.parquet"))
        .collect();
    assert_eq!(checkpoints.len(), 1, "in {}", log.display());
    assert!(log.join("_last_checkpoint").exists());
    assert_eq!(count(&lake.lake, "SELECT count(*) FROM ohlcv").await, 101);
}

/// `batch`'s rows of `symbol`.
fn rows_of(batch: &RecordBatch, symbol: &str) -> RecordBatch {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::compute::{filter_record_batch, kernels::cmp::eq};
    let symbols = batch.column_by_name("symbol").unwrap();
    let mask = eq(symbols, &StringArray::new_scalar(symbol)).unwrap();
    filter_record_batch(batch, &mask).unwrap()
}

/// `bars` with the first row's close one higher.
fn first_close_raised(bars: &RecordBatch) -> RecordBatch {
    use datafusion::arrow::array::Float64Array;
    let close_index = bars.schema().index_of("close").unwrap();
    let mut closes: Vec<f64> = bars
        .column(close_index)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .values()
        .to_vec();
    closes[0] += 1.0;
    let mut columns = bars.columns().to_vec();
    columns[close_index] = std::sync::Arc::new(Float64Array::from(closes));
    RecordBatch::try_new(bars.schema(), columns).unwrap()
}

/// A quarter of bars of AAA to EEE, those of AAA to DDD stored in three files:
/// AAA; BBB and CCC together; DDD. Returns the bars and the version after.
async fn stored_in_three_files(lake: &Lake) -> (RecordBatch, u64) {
    let (all, _) = bars(
        &["AAA", "BBB", "CCC", "DDD", "EEE"],
        date(2021, 1, 1),
        date(2021, 3, 31),
    );
    let of = |symbol| rows_of(&all, symbol);
    lake.upsert(&OHLCV, vec![of("AAA")]).await.unwrap();
    lake.upsert(&OHLCV, vec![of("BBB"), of("CCC")])
        .await
        .unwrap();
    lake.upsert(&OHLCV, vec![of("DDD")]).await.unwrap();
    let version = lake.version(&OHLCV).await.unwrap().unwrap();
    (all, version)
}

async fn a_replace_by_range_compares_each_range_and_commits_once(lake: Lake) {
    use datafusion::prelude::lit;
    let (all, before) = stored_in_three_files(&lake).await;
    let of = |symbol| rows_of(&all, symbol);
    let n = of("AAA").num_rows();

    // BBB's first close corrected.
    let corrected = first_close_raised(&of("BBB"));
    let close_index = OHLCV.schema().index_of("close").unwrap();

    let symbols: Vec<String> = ["AAA", "BBB", "CCC", "DDD", "EEE"]
        .map(String::from)
        .to_vec();
    let mut replace = lake
        .replace_by_range(&OHLCV, lit(true), Some(&symbols))
        .await
        .unwrap();
    replace.push(vec![of("AAA")], Some("AAA")).await.unwrap();
    // The BBB-CCC file straddles BBB: the range goes on to CCC.
    replace.push(vec![corrected], Some("BBB")).await.unwrap();
    replace
        .push(vec![of("CCC").slice(0, 10)], Some("CCC"))
        .await
        .unwrap();
    // DDD is no longer there, EEE is new.
    replace.push(vec![of("EEE")], None).await.unwrap();
    assert_eq!(
        lake.version(&OHLCV).await.unwrap(),
        Some(before),
        "nothing committed yet"
    );
    let metrics = replace.commit().await.unwrap();
    assert_eq!(
        (
            metrics.inserted,
            metrics.updated,
            metrics.deleted,
            metrics.unchanged
        ),
        (n, 1, (n - 10) + n, n + (n - 1) + 10)
    );
    assert_eq!(
        (metrics.version, metrics.committed),
        (Some(before + 1), true),
        "one commit"
    );
    let per_symbol = |symbol: &'static str| {
        let lake = lake.clone();
        async move {
            count(
                &lake,
                &format!("SELECT count(*) FROM ohlcv WHERE symbol = '{symbol}'"),
            )
            .await
        }
    };
    assert_eq!(per_symbol("AAA").await, n as i64);
    assert_eq!(per_symbol("BBB").await, n as i64);
    assert_eq!(per_symbol("CCC").await, 10);
    assert_eq!(per_symbol("DDD").await, 0);
    assert_eq!(per_symbol("EEE").await, n as i64);
    assert_eq!(duplicate_keys(&lake).await, 0);
    let close = lake
        .sql("SELECT close FROM ohlcv WHERE symbol = 'BBB' ORDER BY date LIMIT 1")
        .await
        .unwrap();
    let stored_close = close.batches[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    let first_close = of("BBB")
        .column(close_index)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    assert_eq!(stored_close, first_close + 1.0);
    // The AAA file had nothing to change: still the same file.
    let files = lake.table_files(&OHLCV).await.unwrap().unwrap();
    let aaa_files = files
        .files
        .iter()
        .filter(|f| f.symbols == Some(("AAA".into(), "AAA".into())))
        .count();
    assert_eq!(aaa_files, 1);

    // The same content again: no commit.
    let mut again = lake
        .replace_by_range(&OHLCV, lit(true), Some(&symbols))
        .await
        .unwrap();
    let now: Vec<RecordBatch> = lake.sql("SELECT * FROM ohlcv").await.unwrap().batches;
    let now: Vec<RecordBatch> = now
        .iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(OHLCV.schema().fields())
                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()).unwrap())
                .collect();
            RecordBatch::try_new(OHLCV.schema(), columns).unwrap()
        })
        .collect();
    again.push(now, None).await.unwrap();
    let again = again.commit().await.unwrap();
    assert_eq!((again.committed, again.version), (false, Some(before + 1)));

    // Another writer first: a conflict, nothing committed.
    let mut late = lake
        .replace_by_range(&OHLCV, lit(true), Some(&symbols))
        .await
        .unwrap();
    late.push(vec![of("DDD")], None).await.unwrap();
    lake.upsert(&OHLCV, vec![of("DDD").slice(0, 1)])
        .await
        .unwrap();
    let error = late.commit().await.unwrap_err();
    assert!(error.is_conflict(), "{error}");
    assert_eq!(lake.version(&OHLCV).await.unwrap(), Some(before + 2));
    assert_eq!(per_symbol("DDD").await, 1);
}

async fn an_upsert_by_range_keeps_the_stored_rows_it_was_not_given(lake: Lake) {
    let symbols = ["AAA", "BBB", "CCC", "DDD", "EEE"];
    let (all, before) = stored_in_three_files(&lake).await;
    let of = |symbol| rows_of(&all, symbol);
    let n = of("AAA").num_rows();

    let mut upsert = lake.upsert_by_range(&OHLCV).await.unwrap();
    upsert.push(vec![of("AAA")], Some("AAA")).await.unwrap();
    // The BBB-CCC file straddles BBB: the range goes on to CCC.
    upsert
        .push(vec![first_close_raised(&of("BBB"))], Some("BBB"))
        .await
        .unwrap();
    upsert
        .push(vec![of("CCC").slice(0, 10)], Some("CCC"))
        .await
        .unwrap();
    upsert.push(vec![of("EEE")], None).await.unwrap();
    let metrics = upsert.commit().await.unwrap();
    assert_eq!(
        (
            metrics.inserted,
            metrics.updated,
            metrics.deleted,
            metrics.unchanged
        ),
        (n, 1, 0, n + (n - 1) + 10)
    );
    assert_eq!(
        (metrics.version, metrics.committed),
        (Some(before + 1), true),
        "one commit"
    );
    for symbol in symbols {
        let stored = count(
            &lake,
            &format!("SELECT count(*) FROM ohlcv WHERE symbol = '{symbol}'"),
        )
        .await;
        assert_eq!(stored, n as i64, "{symbol}: kept, replaced or inserted");
    }
    assert_eq!(duplicate_keys(&lake).await, 0);
    let bbb_close = lake
        .sql("SELECT close FROM ohlcv WHERE symbol = 'BBB' ORDER BY date LIMIT 1")
        .await
        .unwrap();
    let stored_close = bbb_close.batches[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    let raised_close = first_close_raised(&of("BBB"))
        .column_by_name("close")
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    assert_eq!(stored_close, raised_close);

    // Everything again: no commit.
    let mut again = lake.upsert_by_range(&OHLCV).await.unwrap();
    again.push(vec![of("AAA")], Some("AAA")).await.unwrap();
    again.push(vec![of("DDD")], None).await.unwrap();
    let again = again.commit().await.unwrap();
    assert_eq!(
        (again.committed, again.unchanged, again.version),
        (false, 2 * n, Some(before + 1))
    );
}

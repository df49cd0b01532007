//! Mirroring lake tables into indices: each sync sends the rows changed since
//! the lake version last synced (recorded per table and lake in the sync
//! index), deletes the documents of removed rows, and records the new version
//! only when every item was acknowledged. The first sync sends every row and
//! then deletes documents no row stands for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bf_core::Progress;
use bf_core::tables::TableSpec;
use bf_lake::{Lake, RowChanges};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::bulk::{BulkOutcome, send_all};
use super::client::EsClient;
use super::encode::TableEncoder;
use super::mapping::{
    LAKE_VERSION, MIRRORED, SYNC_RUN, index_name, sync_index, sync_template, table_template,
};
use crate::SinkError;

/// Installs (or updates) the index templates: safe to run any number of times.
pub async fn setup(client: &EsClient) -> Result<Vec<String>, SinkError> {
    let prefix = &client.config().index_prefix;
    let mut templates = Vec::new();
    for spec in MIRRORED {
        templates.push((index_name(prefix, spec.name), table_template(prefix, spec)));
    }
    templates.push((sync_index(prefix), sync_template(prefix)));
    for (name, body) in &templates {
        let _: serde_json::Value = client
            .json(
                Method::PUT,
                &format!("_index_template/{name}"),
                Some(body),
                &format!("installing the index template {name}"),
            )
            .await?;
    }
    Ok(templates.into_iter().map(|(name, _)| name).collect())
}

/// Deletes the mirror: every mirrored index and the sync index (a missing
/// one is fine). The next sync sends everything again.
pub async fn drop_indices(client: &EsClient) -> Result<(), SinkError> {
    let prefix = &client.config().index_prefix;
    let mut indices: Vec<String> = MIRRORED
        .iter()
        .map(|s| index_name(prefix, s.name))
        .collect();
    indices.push(sync_index(prefix));
    for index in indices {
        let what = format!("deleting the index {index}");
        let answer = client.send(Method::DELETE, &index, None, &what).await?;
        if !answer.status.is_success() && answer.status != StatusCode::NOT_FOUND {
            return Err(client.http_error(&what, &answer));
        }
    }
    Ok(())
}

/// One table's sync.
#[derive(Debug, Serialize)]
pub struct TableSync {
    pub table: &'static str,
    pub index: String,
    /// The lake version synced before; `None`: never (a full sync).
    pub from_version: Option<u64>,
    /// The lake version now mirrored; `None` when the table does not exist.
    pub to_version: Option<u64>,
    pub indexed: usize,
    pub deleted: usize,
    /// Documents of a first sync that no lake row stands for, deleted.
    pub stale_deleted: u64,
    pub bulk: BulkOutcome,
    /// Every item acknowledged, and the new version recorded.
    pub complete: bool,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct SyncReport {
    pub tables: Vec<TableSync>,
}

impl SyncReport {
    pub fn complete(&self) -> bool {
        self.tables.iter().all(|t| t.complete)
    }
}

/// Syncs `tables` (mirrored tables only) from `lake`, installing the
/// templates first.
pub async fn sync(
    lake: &Lake,
    client: &EsClient,
    tables: &[&'static TableSpec],
    progress: &dyn Progress,
) -> Result<SyncReport, SinkError> {
    setup(client).await?;
    let mut report = SyncReport { tables: Vec::new() };
    for spec in tables {
        report
            .tables
            .push(sync_table(lake, client, spec, progress).await?);
    }
    Ok(report)
}

async fn sync_table(
    lake: &Lake,
    client: &EsClient,
    spec: &'static TableSpec,
    progress: &dyn Progress,
) -> Result<TableSync, SinkError> {
    let started = Instant::now();
    let prefix = &client.config().index_prefix;
    let synced = synced_version(lake, client, spec).await?;
    let mut table = TableSync {
        table: spec.name,
        index: index_name(prefix, spec.name),
        from_version: synced,
        to_version: None,
        indexed: 0,
        deleted: 0,
        stale_deleted: 0,
        bulk: BulkOutcome::default(),
        complete: true,
        seconds: 0.0,
    };
    let (changes, full) = match lake.row_changes_since(spec, synced).await {
        Ok(Some(changes)) => (changes, synced.is_none()),
        Ok(None) => return Ok(table),
        // The log of the synced version is gone (cleaned up): start over.
        Err(error) if synced.is_some() => {
            tracing::warn!(table = spec.name, %error, "cannot read what changed since the synced version; sending every row");
            match lake.row_changes_since(spec, None).await? {
                Some(changes) => (changes, true),
                None => return Ok(table),
            }
        }
        Err(error) => return Err(error.into()),
    };
    table.to_version = Some(changes.version);
    if synced == Some(changes.version) {
        return Ok(table);
    }
    let sync_run = format!("{:x}", chrono::Utc::now().timestamp_micros());
    table.bulk = send_changes(client, spec, &table.index, &changes, &sync_run, progress).await?;
    table.indexed = changes.upserts.iter().map(|b| b.num_rows()).sum();
    table.deleted = changes.deletes.iter().map(|b| b.num_rows()).sum();
    table.complete = table.bulk.rejected == 0;
    if table.complete {
        if full {
            table.stale_deleted = delete_others(client, &table.index, &sync_run).await?;
        }
        record_version(lake, client, spec, changes.version).await?;
    }
    table.seconds = started.elapsed().as_secs_f64();
    Ok(table)
}

async fn send_changes(
    client: &EsClient,
    spec: &'static TableSpec,
    index: &str,
    changes: &RowChanges,
    sync_run: &str,
    progress: &dyn Progress,
) -> Result<BulkOutcome, SinkError> {
    let encoder = TableEncoder {
        spec,
        index,
        lake_version: changes.version,
        sync_run,
        max_bytes: client.config().bulk_bytes,
    };
    let total: usize = changes
        .upserts
        .iter()
        .chain(&changes.deletes)
        .map(|b| b.num_rows())
        .sum();
    // Encoded batch by batch as the sender asks, so only the bodies in
    // flight are in memory.
    let upserts = changes.upserts.iter().map(|b| encoder.upserts(b));
    let deletes = changes.deletes.iter().map(|b| encoder.deletes(b));
    let chunks = futures::stream::iter(upserts.chain(deletes)).flat_map(|encoded| {
        let chunks: Vec<Result<_, SinkError>> = match encoded {
            Ok(chunks) => chunks.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        futures::stream::iter(chunks)
    });
    let done = AtomicUsize::new(0);
    progress.advance(0, total, None);
    send_all(client, chunks, &|items| {
        let done = done.fetch_add(items, Ordering::Relaxed) + items;
        progress.advance(done, total, None);
    })
    .await
}

/// Deletes documents another sync wrote: after a full sync, those no lake row
/// stands for (rows deleted while the sync state was lost, or another lake's).
async fn delete_others(client: &EsClient, index: &str, sync_run: &str) -> Result<u64, SinkError> {
    let what = format!("deleting stale documents of {index}");
    let _: serde_json::Value = client
        .json(Method::POST, &format!("{index}/_refresh"), None, &what)
        .await?;
    let answer: serde_json::Value = client
        .json(
            Method::POST,
            &format!("{index}/_delete_by_query?refresh=true&conflicts=proceed"),
            Some(&json!({"query": {"bool": {"must_not": {"term": {SYNC_RUN: sync_run}}}}})),
            &what,
        )
        .await?;
    Ok(answer["deleted"].as_u64().unwrap_or_default())
}

/// The sync index's document for `spec` in this lake.
fn state_id(lake: &Lake, spec: &TableSpec) -> String {
    let id = format!("{}@{}", spec.name, lake.root());
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

async fn synced_version(
    lake: &Lake,
    client: &EsClient,
    spec: &TableSpec,
) -> Result<Option<u64>, SinkError> {
    let what = format!("reading the synced version of {}", spec.name);
    let path = format!(
        "{}/_doc/{}",
        sync_index(&client.config().index_prefix),
        state_id(lake, spec)
    );
    let answer = client.send(Method::GET, &path, None, &what).await?;
    if answer.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !answer.status.is_success() {
        return Err(client.http_error(&what, &answer));
    }
    let document: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|e| client.response_error(&what, e.to_string()))?;
    Ok(document["_source"][LAKE_VERSION].as_u64())
}

async fn record_version(
    lake: &Lake,
    client: &EsClient,
    spec: &TableSpec,
    version: u64,
) -> Result<(), SinkError> {
    let path = format!(
        "{}/_doc/{}?refresh=true",
        sync_index(&client.config().index_prefix),
        state_id(lake, spec)
    );
    let document = json!({
        "table": spec.name,
        "lake": lake.root().as_str(),
        LAKE_VERSION: version,
        "synced_at": chrono::Utc::now().to_rfc3339(),
    });
    let _: serde_json::Value = client
        .json(
            Method::PUT,
            &path,
            Some(&document),
            &format!("recording the synced version of {}", spec.name),
        )
        .await?;
    Ok(())
}

/// One table as the lake and the index see it.
#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: &'static str,
    pub index: String,
    pub lake_version: Option<u64>,
    pub synced_version: Option<u64>,
    pub rows: Option<u64>,
    pub documents: Option<u64>,
}

pub async fn status(lake: &Lake, client: &EsClient) -> Result<Vec<TableStatus>, SinkError> {
    let mut statuses = Vec::new();
    for spec in MIRRORED {
        let index = index_name(&client.config().index_prefix, spec.name);
        let lake_version = lake.version(spec).await?;
        let rows = match lake_version {
            Some(_) => Some(row_count(lake, spec).await?),
            None => None,
        };
        let what = format!("counting the documents of {index}");
        let answer = client
            .send(Method::GET, &format!("{index}/_count"), None, &what)
            .await?;
        let documents = if answer.status == StatusCode::NOT_FOUND {
            None
        } else if answer.status.is_success() {
            let count: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| client.response_error(&what, e.to_string()))?;
            count["count"].as_u64()
        } else {
            return Err(client.http_error(&what, &answer));
        };
        statuses.push(TableStatus {
            table: spec.name,
            index,
            lake_version,
            synced_version: synced_version(lake, client, spec).await?,
            rows,
            documents,
        });
    }
    Ok(statuses)
}

async fn row_count(lake: &Lake, spec: &TableSpec) -> Result<u64, SinkError> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let result = lake
        .sql(&format!("SELECT count(*) FROM {}", spec.name))
        .await?;
    Ok(result
        .batches
        .first()
        .map_or(0, |b| b.column(0).as_primitive::<Int64Type>().value(0)) as u64)
}

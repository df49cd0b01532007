//! Sending bulk bodies: a few requests in flight, items rejected with 429 or
//! 503 sent again alone after a backoff, any other item error counted and
//! named (a mapping error does not get better by retrying).

use std::collections::HashMap;

use futures::{Stream, TryStreamExt};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{Body, EsClient};
use super::encode::Chunk;
use crate::SinkError;

/// What one or more bulk requests achieved.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BulkOutcome {
    /// Items the server acknowledged (a delete of a missing document counts).
    pub acknowledged: usize,
    /// Items refused for good (or still throttled after every retry).
    pub rejected: usize,
    /// Items sent again after a 429 or 503.
    pub retried: usize,
    pub requests: usize,
    pub bytes: usize,
    /// Summed `took` of the bulk answers: the server's own time (requests overlap).
    pub server_millis: u64,
    /// The first few rejections, each naming the document.
    pub errors: Vec<String>,
    /// Every item refused for good, for a caller that keeps them (the
    /// stream consumer dead-letters their messages).
    #[serde(skip)]
    pub refused: Vec<RefusedItem>,
}

/// One document the server did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedItem {
    pub index: String,
    pub id: String,
    pub reason: String,
}

/// Rejections kept word for word; beyond this, only counted.
const ERRORS_KEPT: usize = 20;

impl BulkOutcome {
    fn add(mut self, other: BulkOutcome) -> Self {
        self.acknowledged += other.acknowledged;
        self.rejected += other.rejected;
        self.retried += other.retried;
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.server_millis += other.server_millis;
        let room = ERRORS_KEPT.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
        self.refused.extend(other.refused);
        self
    }
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    took: u64,
    items: Vec<HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default, rename = "_id")]
    id: Option<String>,
    #[serde(default, rename = "_index")]
    index: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Sends every chunk, `in_flight` at a time; `on_items` hears how many items
/// each finished chunk held. Stops at the first whole-request failure that
/// outlasted its retries.
pub(crate) async fn send_all(
    client: &EsClient,
    chunks: impl Stream<Item = Result<Chunk, SinkError>>,
    on_items: &(dyn Fn(usize) + Sync),
) -> Result<BulkOutcome, SinkError> {
    chunks
        .map_ok(|chunk| async move {
            let items = chunk.items.len();
            let outcome = send_chunk(client, chunk).await;
            on_items(items);
            outcome
        })
        .try_buffer_unordered(client.config().in_flight.max(1))
        .try_fold(BulkOutcome::default(), |total, outcome| async move {
            Ok(total.add(outcome))
        })
        .await
}

async fn send_chunk(client: &EsClient, chunk: Chunk) -> Result<BulkOutcome, SinkError> {
    const WHAT: &str = "a bulk request";
    let mut outcome = BulkOutcome::default();
    let mut delays = client.config().retry.delays();
    let mut pending = chunk;
    loop {
        let items = std::mem::take(&mut pending.items);
        let body = Body {
            bytes: std::mem::take(&mut pending.body).into(),
            content_type: "application/x-ndjson",
        };
        outcome.requests += 1;
        outcome.bytes += body.bytes.len();
        let answer = client
            .send(Method::POST, "_bulk", Some(&body), WHAT)
            .await?;
        if !answer.status.is_success() {
            return Err(client.http_error(WHAT, &answer));
        }
        let response: BulkResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| client.response_error(WHAT, e.to_string()))?;
        outcome.server_millis += response.took;
        if response.items.len() != items.len() {
            return Err(client.response_error(
                WHAT,
                format!(
                    "{} items answered for {} sent",
                    response.items.len(),
                    items.len()
                ),
            ));
        }
        let (mut throttled, mut throttled_items) = (Vec::new(), Vec::new());
        for (index, item) in response.items.into_iter().enumerate() {
            let Some((action, item)) = item.into_iter().next() else {
                return Err(client.response_error(WHAT, "an empty item".into()));
            };
            match item.status {
                200..=299 => outcome.acknowledged += 1,
                404 if action == "delete" => outcome.acknowledged += 1,
                429 | 503 => {
                    throttled.push(index);
                    throttled_items.push(item);
                }
                status => {
                    outcome.rejected += 1;
                    let error = item_error(&action, &item, status);
                    outcome.refused.push(refused(&item, error.clone()));
                    if outcome.errors.len() < ERRORS_KEPT {
                        outcome.errors.push(error);
                    }
                }
            }
        }
        if throttled.is_empty() {
            return Ok(outcome);
        }
        let Some(wait) = delays.next() else {
            let retries = client.config().retry.max_retries;
            outcome.rejected += throttled.len();
            outcome.errors.push(format!(
                "{} items still refused with 429/503 after {retries} retries",
                throttled.len(),
            ));
            for item in &throttled_items {
                let reason = format!("still refused with 429/503 after {retries} retries");
                outcome.refused.push(refused(item, reason));
            }
            return Ok(outcome);
        };
        tracing::info!(
            items = throttled.len(),
            ?wait,
            "bulk items throttled; sending them again"
        );
        outcome.retried += throttled.len();
        tokio::time::sleep(wait).await;
        pending = Chunk {
            body: body.bytes.to_vec(),
            items,
        }
        .subset(&throttled);
    }
}

fn refused(item: &BulkItem, reason: String) -> RefusedItem {
    RefusedItem {
        index: item.index.clone().unwrap_or_default(),
        id: item.id.clone().unwrap_or_default(),
        reason,
    }
}

fn item_error(action: &str, item: &BulkItem, status: u16) -> String {
    let reason = item.error.as_ref().map_or_else(String::new, |error| {
        let kind = error["type"].as_str().unwrap_or("error");
        let reason = error["reason"].as_str().unwrap_or_default();
        format!(": {kind}: {reason}")
    });
    format!(
        "{action} {}: HTTP {status}{reason}",
        item.id.as_deref().unwrap_or("(no id)")
    )
}

//! `bf stream consume --sink elasticsearch`: a consumer group that indexes
//! the messages into the indices of the Elasticsearch mirror, with the same
//! `_id`s as `bf es sync`, and commits offsets only after Elasticsearch
//! acknowledged them. A message that cannot be indexed (not JSON, no key, an
//! unknown topic) goes to the dead-letter topic with where it came from.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bf_core::tables::{TableSpec, col};
use futures::stream;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{KafkaConfig, topics};
use crate::SinkError;
use crate::elasticsearch::encode::{Chunk, Chunks};
use crate::elasticsearch::{EsClient, bulk, index_name, setup};
use crate::rows::write_str;

/// What to consume, and until when.
#[derive(Debug, Clone)]
pub struct ConsumeRequest {
    pub group: String,
    /// A static member name (`group.instance.id`): a consumer restarted under
    /// the same name takes its partitions back at once, without a rebalance.
    pub instance: Option<String>,
    pub tables: Vec<&'static TableSpec>,
    /// Keep consuming; without it, stop at the end offsets found at start.
    pub follow: bool,
    /// Most messages indexed and committed together.
    pub batch_messages: usize,
}

/// What a consumer did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ConsumeReport {
    pub messages: usize,
    pub indexed: usize,
    pub deleted: usize,
    /// Messages superseded by a later one of the same key in their batch.
    pub superseded: usize,
    pub dead_lettered: usize,
    /// Documents Elasticsearch refused for good (named in `errors`).
    pub rejected: usize,
    pub commits: usize,
    /// The partitions (`topic/partition`) this consumer indexed messages of.
    pub partitions: BTreeSet<String>,
    pub errors: Vec<String>,
}

const ERRORS_KEPT: usize = 20;

impl ConsumeReport {
    fn error(&mut self, error: String) {
        tracing::warn!("{error}");
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(error);
        }
    }
}

/// Consumes until stopped (`follow`), or until every partition assigned to
/// this consumer reached the end offset it had at start.
pub async fn consume(
    config: &KafkaConfig,
    es: &EsClient,
    request: &ConsumeRequest,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ConsumeReport, SinkError> {
    let names: Vec<&str> = request.tables.iter().map(|t| t.name).collect();
    topics::ensure(config, &names).await?;
    // The index templates; with `follow`, Elasticsearch may come later.
    let mut delays = es.config().retry.delays();
    while let Err(error) = setup(es).await {
        if !request.follow {
            return Err(error);
        }
        let wait = delays.next().unwrap_or(es.config().retry.max_wait);
        tracing::warn!(%error, ?wait, "Elasticsearch unavailable; waiting to install the templates");
        tokio::time::sleep(wait).await;
    }
    let mut client = config.client();
    if let Some(instance) = &request.instance {
        client.set("group.instance.id", instance);
    }
    let consumer: StreamConsumer = client
        .set("group.id", &request.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // A consumer killed without leaving is evicted after 10 s; a rebalance
        // waits for members at most a minute (librdkafka's default is 5).
        .set("session.timeout.ms", "10000")
        .set("max.poll.interval.ms", "60000")
        .create()
        .map_err(|e| config.error("connecting", e))?;
    let topics: Vec<String> = names.iter().map(|t| config.table_topic(t)).collect();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|e| config.error("subscribing", e))?;
    let end_offsets = if request.follow {
        HashMap::new()
    } else {
        tokio::task::block_in_place(|| end_offsets(&consumer, config, &topics))?
    };
    let dead_letters: BaseProducer = config
        .client()
        .create()
        .map_err(|e| config.error("connecting", e))?;
    let mut run = Run {
        config,
        es,
        request,
        consumer: &consumer,
        dead_letters: &dead_letters,
        report: ConsumeReport::default(),
        next_offsets: HashMap::new(),
    };
    tokio::pin!(stop);
    let mut warned = Warned::default();
    loop {
        let batch = tokio::select! {
            () = &mut stop => break,
            batch = next_batch(&consumer, request.batch_messages, &mut warned) => batch,
        };
        if batch.is_empty() {
            if !request.follow && run.reached(&end_offsets)? {
                break;
            }
            continue;
        }
        run.index_and_commit(&batch).await?;
    }
    Ok(run.report)
}

/// The end offset of every partition of `topics` now.
fn end_offsets(
    consumer: &StreamConsumer,
    config: &KafkaConfig,
    topics: &[String],
) -> Result<HashMap<(String, i32), i64>, SinkError> {
    let mut ends = HashMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), config.timeout)
            .map_err(|e| config.error("reading the topics' partitions", e))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition.id(), config.timeout)
                .map_err(|e| config.error("reading end offsets", e))?;
            ends.insert((topic.clone(), partition.id()), high);
        }
    }
    Ok(ends)
}

/// Consumer errors come in bursts while a broker is down (one per
/// reconnect attempt and per partition): each kind is said once every 30 s.
#[derive(Default)]
struct Warned {
    last: HashMap<String, Instant>,
}

impl Warned {
    fn warn(&mut self, error: &rdkafka::error::KafkaError) {
        const EVERY: Duration = Duration::from_secs(30);
        let text = error.to_string();
        if self.last.get(&text).is_none_or(|at| at.elapsed() >= EVERY) {
            // Broker gone, rebalance in progress: librdkafka reconnects.
            tracing::warn!(%error, "Kafka consumer error; continuing (the same error is said again after 30 s at most)");
            self.last.insert(text, Instant::now());
        }
    }
}

/// Up to `most` messages: waits up to a second for the first, then takes
/// what arrives within 100 ms of the previous one.
async fn next_batch<'c>(
    consumer: &'c StreamConsumer,
    most: usize,
    warned: &mut Warned,
) -> Vec<BorrowedMessage<'c>> {
    let mut batch = Vec::new();
    let mut wait = Duration::from_secs(1);
    while batch.len() < most {
        match tokio::time::timeout(wait, consumer.recv()).await {
            Err(_) => break,
            Ok(Ok(message)) => batch.push(message),
            Ok(Err(error)) => {
                warned.warn(&error);
                break;
            }
        }
        wait = Duration::from_millis(100);
    }
    batch
}

/// A message that can be indexed: its table, key, whether it deletes, and
/// its row (without `op`).
struct Checked<'m> {
    spec: &'static TableSpec,
    key: &'m str,
    delete: bool,
    value: Map<String, Value>,
}

struct Run<'a> {
    config: &'a KafkaConfig,
    es: &'a EsClient,
    request: &'a ConsumeRequest,
    consumer: &'a StreamConsumer,
    dead_letters: &'a BaseProducer,
    report: ConsumeReport,
    /// The offset after the last message indexed and committed, per partition.
    next_offsets: HashMap<(String, i32), i64>,
}

impl Run<'_> {
    /// Whether every assigned partition reached its end offset from the start.
    fn reached(&self, end_offsets: &HashMap<(String, i32), i64>) -> Result<bool, SinkError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| self.config.error("reading the assignment", e))?;
        if assignment.count() == 0 {
            return Ok(false);
        }
        let committed = tokio::task::block_in_place(|| {
            self.consumer
                .committed_offsets(assignment, self.config.timeout)
        })
        .map_err(|e| self.config.error("reading committed offsets", e))?;
        Ok(committed.elements().iter().all(|element| {
            let key = (element.topic().to_string(), element.partition());
            let end = end_offsets.get(&key).copied().unwrap_or(0);
            let committed = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => 0,
            };
            let next = self.next_offsets.get(&key).copied().unwrap_or(0);
            committed.max(next) >= end
        }))
    }

    /// Indexes a batch (the last message of each key only), then commits
    /// its offsets. Elasticsearch down: with `follow`, waits and tries again
    /// without committing; without, fails.
    async fn index_and_commit(&mut self, batch: &[BorrowedMessage<'_>]) -> Result<(), SinkError> {
        self.report.messages += batch.len();
        for message in batch {
            self.report
                .partitions
                .insert(format!("{}/{}", message.topic(), message.partition()));
        }
        let mut latest: HashMap<(&'static str, &str), (usize, Checked)> = HashMap::new();
        for (position, message) in batch.iter().enumerate() {
            match self.check(message) {
                Ok(checked) => {
                    let key = (checked.spec.name, checked.key);
                    if latest.insert(key, (position, checked)).is_some() {
                        self.report.superseded += 1;
                    }
                }
                Err(reason) => self.dead_letter(message, &reason)?,
            }
        }
        let mut messages: Vec<(usize, Checked)> = latest.into_values().collect();
        messages.sort_unstable_by_key(|(position, _)| *position);
        // Which message each document came from, for the ones refused.
        let prefix = &self.es.config().index_prefix;
        let sources: HashMap<(String, String), usize> = messages
            .iter()
            .map(|(position, c)| {
                (
                    (index_name(prefix, c.spec.name), c.key.to_string()),
                    *position,
                )
            })
            .collect();
        let chunks = self.chunks(messages.into_iter().map(|(_, checked)| checked));
        let mut delays = self.es.config().retry.delays();
        let outcome = loop {
            let sent = bulk::send_all(
                self.es,
                stream::iter(chunks.iter().map(|c| Ok(c.clone()))),
                &|_| {},
            )
            .await;
            match sent {
                Ok(outcome) => break outcome,
                Err(error) if self.request.follow => {
                    let wait = delays.next().unwrap_or(self.es.config().retry.max_wait);
                    tracing::warn!(%error, ?wait, "Elasticsearch unavailable; the batch waits, uncommitted");
                    tokio::time::sleep(wait).await;
                }
                Err(error) => return Err(error),
            }
        };
        self.report.rejected += outcome.rejected;
        // A refused document would be lost once the offsets move past it:
        // its message goes to the dead-letter topic, with the server's reason.
        for refused in &outcome.refused {
            match sources.get(&(refused.index.clone(), refused.id.clone())) {
                Some(&position) => {
                    let reason = format!("Elasticsearch refused it: {}", refused.reason);
                    self.dead_letter(&batch[position], &reason)?;
                }
                None => self
                    .report
                    .error(format!("Elasticsearch refused {}", refused.reason)),
            }
        }
        self.commit(batch);
        Ok(())
    }

    /// A message worth indexing, parsed, or why it is not.
    fn check<'m>(&self, message: &'m BorrowedMessage<'_>) -> Result<Checked<'m>, String> {
        let spec = self
            .config
            .table_of(message.topic())
            .ok_or_else(|| format!("topic {} is not one of bf's tables", message.topic()))?;
        let key = message.key().ok_or("no key")?;
        let key = std::str::from_utf8(key).map_err(|_| "the key is not UTF-8".to_string())?;
        let mut value: Map<String, Value> = message
            .payload()
            .ok_or("no value".to_string())
            .and_then(|p| {
                serde_json::from_slice(p)
                    .map_err(|e| format!("the value is not a JSON object: {e}"))
            })?;
        let delete = match value.remove("op").as_ref().and_then(Value::as_str) {
            Some("upsert") => false,
            Some("delete") => true,
            other => return Err(format!("op is {other:?}, not \"upsert\" or \"delete\"")),
        };
        Ok(Checked {
            spec,
            key,
            delete,
            value,
        })
    }

    /// Bulk bodies for checked messages, in order.
    fn chunks<'m>(&mut self, messages: impl Iterator<Item = Checked<'m>>) -> Vec<Chunk> {
        let prefix = &self.es.config().index_prefix;
        let sync_run = format!("stream:{}", self.request.group);
        let mut chunks = Chunks::new(self.es.config().bulk_bytes);
        for Checked {
            spec,
            key,
            delete,
            mut value,
        } in messages
        {
            let body = chunks.start_item();
            let index = index_name(prefix, spec.name);
            let action = if delete {
                self.report.deleted += 1;
                "delete"
            } else {
                self.report.indexed += 1;
                "index"
            };
            body.extend_from_slice(format!("{{\"{action}\":{{\"_index\":").as_bytes());
            write_str(body, &index);
            body.extend_from_slice(b",\"_id\":");
            write_str(body, key);
            body.extend_from_slice(b"}}\n");
            if action == "index" {
                let time = value
                    .get(col::TS)
                    .or_else(|| value.get(col::DATE))
                    .cloned()
                    .unwrap_or(Value::Null);
                value.insert("@timestamp".into(), time);
                value.insert("sync_run".into(), Value::String(sync_run.clone()));
                serde_json::to_writer(&mut *body, &value).expect("a JSON object serializes");
                body.push(b'\n');
            }
            chunks.end_item();
        }
        chunks.finish()
    }

    fn dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
        reason: &str,
    ) -> Result<(), SinkError> {
        let origin = format!(
            "{} partition {} offset {}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        self.report.error(format!(
            "{origin}: {reason}; sent to {}",
            self.config.dead_letter_topic()
        ));
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "bf.error",
                value: Some(reason),
            })
            .insert(Header {
                key: "bf.topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "bf.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "bf.offset",
                value: Some(&offset),
            });
        let topic = self.config.dead_letter_topic();
        let mut record = BaseRecord::<[u8], [u8]>::to(&topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.dead_letters
            .send(record)
            .map_err(|(e, _)| self.config.error("writing to the dead-letter topic", e))?;
        self.dead_letters
            .flush(Timeout::After(self.config.timeout))
            .map_err(|e| self.config.error("writing to the dead-letter topic", e))?;
        self.report.dead_lettered += 1;
        Ok(())
    }

    /// Commits the offset after each partition's last message of the batch.
    /// A rebalance may have moved a partition away meanwhile: its new owner
    /// indexes those messages again, which the ids make harmless.
    fn commit(&mut self, batch: &[BorrowedMessage<'_>]) {
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        for message in batch {
            let entry = next
                .entry((message.topic().to_string(), message.partition()))
                .or_insert(0);
            *entry = (*entry).max(message.offset() + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in &next {
            let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        match self.consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => {
                self.report.commits += 1;
                self.next_offsets.extend(next);
            }
            Err(error) => {
                tracing::warn!(%error, "offsets not committed (a rebalance?); the messages will be indexed again")
            }
        }
    }
}

//! `bf stream publish`: every row changed in the lake since the last
//! version published in full becomes one message. The producer is
//! idempotent; a table's checkpoint (its lake version, in the compacted
//! checkpoint topic) is written only after every message of that version was
//! acknowledged, so a publisher killed at any point resumes without a gap —
//! a version may be sent twice, never half.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bf_core::tables::TableSpec;
use bf_lake::{Lake, RowChanges};
use datafusion::arrow::array::RecordBatch;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::{KafkaConfig, topics};
use crate::SinkError;
use crate::rows::{Rows, utf8_columns, write_str};

/// What one table's publication sent.
#[derive(Debug, Serialize)]
pub struct TablePublish {
    pub table: &'static str,
    pub topic: String,
    /// The lake version published before; `None`: never (everything sent).
    pub from_version: Option<u64>,
    /// The lake version now published; `None` when the table does not exist.
    pub to_version: Option<u64>,
    pub upserts: usize,
    pub deletes: usize,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct PublishReport {
    pub tables: Vec<TablePublish>,
}

/// The checkpoint topic's value for one table of one lake.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    table: String,
    lake: String,
    lake_version: u64,
}

/// One round of [`publish_follow`].
#[derive(Debug)]
pub enum FollowRound<'a> {
    Published(&'a PublishReport),
    /// The round failed; the next one starts after `retry_in`.
    Failed {
        error: &'a SinkError,
        retry_in: Duration,
    },
}

/// Longest wait between rounds after failures (the broker down for a while).
const MAX_FOLLOW_BACKOFF: Duration = Duration::from_secs(30);

/// Publishes every `poll` until `stop`. A failed round (the broker or the
/// lake unreachable) is reported and tried again, waiting twice as long
/// after each failure up to 30 s; nothing is skipped, since a round starts
/// from the checkpoints. The first round's error ends it: a setting is wrong.
pub async fn publish_follow(
    lake: &Lake,
    config: &KafkaConfig,
    tables: &[&'static TableSpec],
    poll: Duration,
    stop: impl std::future::Future<Output = ()>,
    mut on_round: impl FnMut(FollowRound<'_>),
) -> Result<(), SinkError> {
    tokio::pin!(stop);
    let (mut first, mut wait) = (true, poll);
    loop {
        match publish(lake, config, tables).await {
            Ok(report) => {
                wait = poll;
                on_round(FollowRound::Published(&report));
            }
            Err(error) if first => return Err(error),
            Err(error) => {
                wait = (wait * 2).clamp(poll, MAX_FOLLOW_BACKOFF.max(poll));
                on_round(FollowRound::Failed {
                    error: &error,
                    retry_in: wait,
                });
            }
        }
        first = false;
        tokio::select! {
            biased;
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Publishes what changed in each of `tables` since its checkpoint.
pub async fn publish(
    lake: &Lake,
    config: &KafkaConfig,
    tables: &[&'static TableSpec],
) -> Result<PublishReport, SinkError> {
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    topics::ensure(config, &names).await?;
    let lake_id = lake.root().to_string();
    let checkpoints = {
        let (config, lake_id) = (config.clone(), lake_id.clone());
        tokio::task::spawn_blocking(move || read_checkpoints(&config, &lake_id))
            .await
            .expect("the checkpoint reader does not panic")?
    };
    let producer = Arc::new(producer(config)?);
    let mut report = PublishReport { tables: Vec::new() };
    for &spec in tables {
        let started = Instant::now();
        let from_version = checkpoints.get(spec.name).copied();
        let topic = config.table_topic(spec.name);
        let mut table = TablePublish {
            table: spec.name,
            topic: topic.clone(),
            from_version,
            to_version: from_version,
            upserts: 0,
            deletes: 0,
            seconds: 0.0,
        };
        let changes = match lake.row_changes_since(spec, from_version).await? {
            Some(changes) if Some(changes.version) != from_version => changes,
            other => {
                table.to_version = other.map(|c| c.version).or(from_version);
                report.tables.push(table);
                continue;
            }
        };
        table.to_version = Some(changes.version);
        let send = {
            let (producer, config, lake_id) =
                (Arc::clone(&producer), config.clone(), lake_id.clone());
            move || send_version(&producer, &config, spec, &lake_id, &changes)
        };
        (table.upserts, table.deletes) = tokio::task::spawn_blocking(send)
            .await
            .expect("the publisher does not panic")?;
        table.seconds = started.elapsed().as_secs_f64();
        report.tables.push(table);
    }
    Ok(report)
}

/// Delivery results, counted by the producer's callback.
#[derive(Default)]
struct Deliveries {
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            self.first_error
                .lock()
                .expect("error lock")
                .get_or_insert_with(|| error.to_string());
        }
    }
}

fn producer(config: &KafkaConfig) -> Result<BaseProducer<Deliveries>, SinkError> {
    let mut client = config.client();
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000");
    client
        .create_with_context(Deliveries::default())
        .map_err(|e| config.error("connecting", e))
}

/// Sends one version's changes of one table, waits until every message was
/// acknowledged, then records the checkpoint. Returns (upserts, deletes).
fn send_version(
    producer: &BaseProducer<Deliveries>,
    config: &KafkaConfig,
    spec: &TableSpec,
    lake_id: &str,
    changes: &RowChanges,
) -> Result<(usize, usize), SinkError> {
    let topic = config.table_topic(spec.name);
    let metadata = producer
        .client()
        .fetch_metadata(Some(&topic), config.timeout)
        .map_err(|e| config.error("reading the topic's partitions", e))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len())
        .max(1) as u32;
    let mut sender = Sender {
        producer,
        config,
        topic: &topic,
        partitions,
    };
    let mut upserts = 0;
    for batch in &changes.upserts {
        upserts += sender.rows(spec, batch, "upsert", changes.version)?;
    }
    let mut deletes = 0;
    for batch in &changes.deletes {
        deletes += sender.rows(spec, batch, "delete", changes.version)?;
    }
    wait_for_deliveries(producer, config)?;
    let checkpoint = Checkpoint {
        table: spec.name.to_string(),
        lake: lake_id.to_string(),
        lake_version: changes.version,
    };
    let value = serde_json::to_vec(&checkpoint).expect("a checkpoint serializes");
    let key = checkpoint_key(lake_id, spec.name);
    let checkpoint_topic = config.checkpoint_topic();
    Sender {
        producer,
        config,
        topic: &checkpoint_topic,
        partitions: 1,
    }
    .send(0, &key, &value)?;
    wait_for_deliveries(producer, config)?;
    Ok((upserts, deletes))
}

fn checkpoint_key(lake_id: &str, table: &str) -> String {
    format!("{table}@{lake_id}")
}

/// Flushes, then fails if any message since the last check was not
/// delivered (the broker refused it or it timed out).
fn wait_for_deliveries(
    producer: &BaseProducer<Deliveries>,
    config: &KafkaConfig,
) -> Result<(), SinkError> {
    // Messages time out by themselves (message.timeout.ms), failing their delivery.
    producer
        .flush(Timeout::Never)
        .map_err(|e| config.error("waiting for acknowledgements", e))?;
    let deliveries = producer.context();
    let failed = deliveries.failed.swap(0, Ordering::SeqCst);
    if failed > 0 {
        let first = deliveries.first_error.lock().expect("error lock").take();
        return Err(SinkError::KafkaDelivery {
            brokers: config.brokers.clone(),
            message: format!(
                "{failed} messages were not acknowledged ({}); the checkpoint stays where it was",
                first.unwrap_or_default()
            ),
        });
    }
    Ok(())
}

struct Sender<'a> {
    producer: &'a BaseProducer<Deliveries>,
    config: &'a KafkaConfig,
    topic: &'a str,
    partitions: u32,
}

impl Sender<'_> {
    /// One message per row: key = the table key, value = the row with `op`
    /// and `lake_version`, partition = the symbol's.
    fn rows(
        &mut self,
        spec: &TableSpec,
        batch: &RecordBatch,
        op: &str,
        version: u64,
    ) -> Result<usize, SinkError> {
        let encode_error = |message: String| SinkError::Encode {
            table: spec.name.to_string(),
            row: 0,
            message,
        };
        let arrays = utf8_columns(batch).map_err(|e| encode_error(e.to_string()))?;
        let schema = batch.schema();
        let mut rows = Rows::new(spec, &schema, &arrays).map_err(encode_error)?;
        let mut prefix = b"{\"op\":".to_vec();
        write_str(&mut prefix, op);
        prefix.extend_from_slice(format!(",\"lake_version\":{version}").as_bytes());
        let (mut key, mut value) = (String::new(), Vec::new());
        for row in 0..batch.num_rows() {
            rows.id(row, &mut key);
            value.clear();
            value.extend_from_slice(&prefix);
            rows.write_fields(&mut value, row)
                .map_err(|message| SinkError::Encode {
                    table: spec.name.to_string(),
                    row,
                    message,
                })?;
            value.push(b'}');
            let symbol = key.split('|').next().unwrap_or_default();
            let partition = crc32fast::hash(symbol.as_bytes()) % self.partitions;
            self.send(partition as i32, &key, &value)?;
        }
        Ok(batch.num_rows())
    }

    fn send(&mut self, partition: i32, key: &str, value: &[u8]) -> Result<(), SinkError> {
        let mut record = BaseRecord::to(self.topic)
            .partition(partition)
            .key(key)
            .payload(value);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: let deliveries drain it.
                    self.producer.poll(Duration::from_millis(20));
                    record = back;
                }
                Err((error, _)) => return Err(self.config.error("producing", error)),
            }
        }
    }
}

/// The last checkpoint of each table of `lake_id`: the checkpoint topic
/// read from its start to its end.
pub(crate) fn read_checkpoints(
    config: &KafkaConfig,
    lake_id: &str,
) -> Result<HashMap<String, u64>, SinkError> {
    let topic = config.checkpoint_topic();
    let consumer: BaseConsumer = config
        .client()
        .set("group.id", "bf-checkpoint-reader")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| config.error("connecting", e))?;
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, config.timeout)
        .map_err(|e| config.error("reading the checkpoints", e))?;
    let mut checkpoints = HashMap::new();
    if high <= low {
        return Ok(checkpoints);
    }
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset(&topic, 0, Offset::Beginning)
        .map_err(|e| config.error("reading the checkpoints", e))?;
    consumer
        .assign(&partitions)
        .map_err(|e| config.error("reading the checkpoints", e))?;
    let deadline = Instant::now() + config.timeout;
    while Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| config.error("reading the checkpoints", e))?;
        let ours = message
            .payload()
            .and_then(|p| serde_json::from_slice::<Checkpoint>(p).ok());
        if let Some(checkpoint) = ours.filter(|c| c.lake == lake_id) {
            checkpoints.insert(checkpoint.table, checkpoint.lake_version);
        }
        if message.offset() + 1 >= high {
            return Ok(checkpoints);
        }
    }
    Err(SinkError::KafkaDelivery {
        brokers: config.brokers.clone(),
        message: format!(
            "the checkpoints in {topic} could not be read to their end within {:?}",
            config.timeout
        ),
    })
}

//! `bf stream status`: per topic and partition, the end offset, what a
//! consumer group committed, and the lag between them; and per table, the
//! lake version published last.

use std::collections::HashMap;

use bf_core::tables::TableSpec;
use bf_lake::Lake;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::KafkaConfig;
use crate::SinkError;

#[derive(Debug, Serialize)]
pub struct PartitionStatus {
    pub partition: i32,
    pub end_offset: i64,
    /// `None`: the group never committed on this partition.
    pub committed: Option<i64>,
    pub lag: i64,
}

#[derive(Debug, Serialize)]
pub struct TopicStatus {
    pub table: &'static str,
    pub topic: String,
    /// The lake version of the table now, and the one published last.
    pub lake_version: Option<u64>,
    pub published_version: Option<u64>,
    pub group: String,
    pub partitions: Vec<PartitionStatus>,
}

/// The topics of `tables` as `group` sees them.
pub async fn status(
    lake: &Lake,
    config: &KafkaConfig,
    group: &str,
    tables: &[&'static TableSpec],
) -> Result<Vec<TopicStatus>, SinkError> {
    let published = {
        let (config, lake_id) = (config.clone(), lake.root().to_string());
        tokio::task::spawn_blocking(move || super::publish::read_checkpoints(&config, &lake_id))
            .await
            .expect("the checkpoint reader does not panic")?
    };
    let mut lake_versions = HashMap::new();
    for spec in tables {
        lake_versions.insert(spec.name, lake.version(spec).await?);
    }
    let (config, group) = (config.clone(), group.to_string());
    let tables = tables.to_vec();
    tokio::task::spawn_blocking(move || {
        tables
            .iter()
            .map(|spec| {
                let mut topic = topic_status(&config, &group, spec.name)?;
                topic.lake_version = lake_versions[spec.name];
                topic.published_version = published.get(spec.name).copied();
                Ok(topic)
            })
            .collect()
    })
    .await
    .expect("the status reader does not panic")
}

fn topic_status(
    config: &KafkaConfig,
    group: &str,
    table: &'static str,
) -> Result<TopicStatus, SinkError> {
    let topic = config.table_topic(table);
    let consumer: BaseConsumer = config
        .client()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| config.error("connecting", e))?;
    let metadata = consumer
        .fetch_metadata(Some(&topic), config.timeout)
        .map_err(|e| config.error("reading the topics", e))?;
    let ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for id in &ids {
        wanted.add_partition(&topic, *id);
    }
    let committed = if ids.is_empty() {
        TopicPartitionList::new()
    } else {
        consumer
            .committed_offsets(wanted, config.timeout)
            .map_err(|e| config.error("reading committed offsets", e))?
    };
    let mut partitions = Vec::new();
    for id in ids {
        let (_, end_offset) = consumer
            .fetch_watermarks(&topic, id, config.timeout)
            .map_err(|e| config.error("reading end offsets", e))?;
        let committed = committed
            .find_partition(&topic, id)
            .and_then(|p| match p.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            });
        partitions.push(PartitionStatus {
            partition: id,
            end_offset,
            committed,
            lag: end_offset - committed.unwrap_or(0),
        });
    }
    Ok(TopicStatus {
        table,
        topic,
        lake_version: None,
        published_version: None,
        group: group.to_string(),
        partitions,
    })
}

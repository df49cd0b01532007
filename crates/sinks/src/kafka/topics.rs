//! The topics bf writes, created when missing.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaConfig;
use crate::SinkError;

/// One metadata request: whether a broker answers (what `bf infra start`
/// waits for).
pub async fn ping(config: &KafkaConfig) -> Result<(), SinkError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = config
            .client()
            .create()
            .map_err(|e| config.error("connecting", e))?;
        producer
            .client()
            .fetch_metadata(None, config.timeout)
            .map(drop)
            .map_err(|e| config.error("requesting metadata", e))
    })
    .await
    .expect("the metadata request does not panic")
}

/// Every topic bf uses, created if missing; their names.
pub async fn create_all(config: &KafkaConfig) -> Result<Vec<String>, SinkError> {
    let tables: Vec<&str> = crate::elasticsearch::MIRRORED
        .iter()
        .map(|spec| spec.name)
        .collect();
    ensure(config, &tables).await?;
    let mut names: Vec<String> = tables.iter().map(|t| config.table_topic(t)).collect();
    names.push(config.checkpoint_topic());
    names.push(config.dead_letter_topic());
    Ok(names)
}

/// Creates the table topics, the checkpoint topic (compacted: only the
/// last checkpoint per key matters) and the dead-letter topic if missing.
pub(crate) async fn ensure(config: &KafkaConfig, tables: &[&str]) -> Result<(), SinkError> {
    let admin: AdminClient<DefaultClientContext> = config
        .client()
        .create()
        .map_err(|e| config.error("connecting", e))?;
    let replication = || TopicReplication::Fixed(config.replication);
    let table_topics: Vec<String> = tables.iter().map(|t| config.table_topic(t)).collect();
    let checkpoints = config.checkpoint_topic();
    let dead_letter = config.dead_letter_topic();
    let mut topics: Vec<NewTopic> = table_topics
        .iter()
        .map(|name| NewTopic::new(name, config.partitions, replication()))
        .collect();
    topics.push(NewTopic::new(&checkpoints, 1, replication()).set("cleanup.policy", "compact"));
    topics.push(NewTopic::new(&dead_letter, 1, replication()));
    let options = AdminOptions::new().operation_timeout(Some(config.timeout));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(|e| config.error("creating topics", e))?;
    for result in results {
        if let Err((topic, code)) = result
            && code != RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(SinkError::KafkaTopic {
                topic,
                reason: code.to_string(),
            });
        }
    }
    Ok(())
}

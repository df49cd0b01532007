//! The topics bf writes, created when missing.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaConfig;
use crate::SinkError;

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

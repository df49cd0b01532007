//! The lake's changes as Kafka messages, and Kafka messages into the
//! Elasticsearch mirror: topics `{prefix}.{table}` with one message per
//! changed row (key = the table key, value = the row as JSON with `op` and
//! `lake_version`), partitioned by symbol; a compacted
//! `{prefix}.checkpoints` topic holding the last lake version published in
//! full per table; and a consumer group that indexes the messages.

mod config;
mod consume;
mod publish;
mod status;
mod topics;

pub use config::{KafkaConfig, parse_properties};
pub use consume::{ConsumeReport, ConsumeRequest, consume};
pub use publish::{FollowRound, PublishReport, TablePublish, publish, publish_follow};
pub use status::{PartitionStatus, TopicStatus, status};
pub use topics::{create_all as create_topics, ping};

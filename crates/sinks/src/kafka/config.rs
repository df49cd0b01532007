use std::time::Duration;

use rdkafka::ClientConfig;

use crate::SinkError;

/// How bf reaches Kafka and names its topics.
#[derive(Clone)]
pub struct KafkaConfig {
    /// `host:port,...`
    pub brokers: String,
    /// Topics are `{prefix}.ohlcv`, `{prefix}.features`, `{prefix}.signals`,
    /// `{prefix}.checkpoints` and `{prefix}.dead-letter`.
    pub topic_prefix: String,
    /// librdkafka properties for every client (`security.protocol`,
    /// `sasl.*`, `ssl.*`, ...).
    pub properties: Vec<(String, String)>,
    /// For topics bf creates.
    pub partitions: i32,
    pub replication: i32,
    /// For metadata requests, topic creation and the final flush.
    pub timeout: Duration,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Property values may be passwords.
        let properties: Vec<&str> = self.properties.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic_prefix", &self.topic_prefix)
            .field("properties", &properties)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_TOPIC_PREFIX: &str = "bf";

impl KafkaConfig {
    pub fn new(brokers: &str) -> Self {
        Self {
            brokers: brokers.trim().to_string(),
            topic_prefix: DEFAULT_TOPIC_PREFIX.to_string(),
            properties: Vec::new(),
            partitions: 6,
            replication: 1,
            timeout: Duration::from_secs(30),
        }
    }

    pub fn table_topic(&self, table: &str) -> String {
        format!("{}.{table}", self.topic_prefix)
    }

    pub fn checkpoint_topic(&self) -> String {
        format!("{}.checkpoints", self.topic_prefix)
    }

    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dead-letter", self.topic_prefix)
    }

    /// The table a topic carries, if it is one of bf's.
    pub(crate) fn table_of(&self, topic: &str) -> Option<&'static bf_core::tables::TableSpec> {
        let table = topic.strip_prefix(&self.topic_prefix)?.strip_prefix('.')?;
        crate::elasticsearch::MIRRORED
            .iter()
            .copied()
            .find(|spec| spec.name == table)
    }

    /// A librdkafka configuration with the brokers and the user's properties.
    pub(crate) fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    pub(crate) fn error(&self, what: &str, source: rdkafka::error::KafkaError) -> SinkError {
        SinkError::Kafka {
            brokers: self.brokers.clone(),
            what: what.to_string(),
            source: Box::new(source),
        }
    }
}

/// `key=value` pairs separated by commas or newlines
/// (`security.protocol=SASL_SSL,sasl.mechanism=PLAIN`).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, SinkError> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .filter(|(key, _)| !key.trim().is_empty())
                .ok_or_else(|| {
                    SinkError::KafkaProperty(pair.split('=').next().unwrap_or(pair).to_string())
                })?;
            Ok((key.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_pairs_and_never_shown() {
        let properties =
            parse_properties("security.protocol=SASL_SSL, sasl.password=s3cret\n").unwrap();
        assert_eq!(properties[1], ("sasl.password".into(), "s3cret".into()));
        let config = KafkaConfig {
            properties,
            ..KafkaConfig::new("k:9092")
        };
        assert!(!format!("{config:?}").contains("s3cret"));
        let error = parse_properties("acks").unwrap_err().to_string();
        assert!(error.contains("acks"), "{error}");
        assert_eq!(
            config.table_of("bf.signals").map(|s| s.name),
            Some("signals")
        );
        assert!(config.table_of("bf.other").is_none() && config.table_of("xbf.signals").is_none());
    }

    /// librdkafka is built with OpenSSL: TLS, and SASL SCRAM over it, are
    /// settings away (without it, creating the client fails on them).
    #[test]
    fn tls_and_scram_properties_are_accepted() {
        use rdkafka::producer::BaseProducer;
        let properties = parse_properties(
            "security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512,sasl.username=bf,sasl.password=x",
        )
        .unwrap();
        let config = KafkaConfig {
            properties,
            ..KafkaConfig::new("127.0.0.1:1")
        };
        let created: Result<BaseProducer, _> = config.client().create();
        assert!(created.is_ok(), "{:?}", created.err());
    }
}

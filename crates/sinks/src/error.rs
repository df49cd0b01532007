use std::path::PathBuf;

use bf_lake::LakeError;

/// Why a sink could not do its work. Items a server rejected one by one are
/// not errors: they are counted and named in the sync report.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("no Elasticsearch node given")]
    NoNodes,

    #[error("{0:?} is not a node URL (http://host:9200 or https://host:9200)")]
    NodeUrl(String),

    #[error("cannot read the CA certificate {path}")]
    CaCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a PEM certificate")]
    CaCertFormat {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },

    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),

    #[error("Elasticsearch at {url} is unreachable ({what}): {reason}")]
    Unreachable {
        url: String,
        what: String,
        reason: String,
    },

    #[error("Elasticsearch at {url} answered HTTP {status} to {what}: {message}")]
    Http {
        url: String,
        what: String,
        status: u16,
        message: String,
    },

    #[error("Elasticsearch at {url}: unexpected answer to {what}: {message}")]
    Response {
        url: String,
        what: String,
        message: String,
    },

    #[error("{table}: row {row} cannot be encoded: {message}")]
    Encode {
        table: String,
        row: usize,
        message: String,
    },

    #[error("{file}:{line}: not a saved object: {message}")]
    SavedObjects {
        file: String,
        line: usize,
        message: String,
    },

    #[error("{0:?} is not a Kibana URL (http://host:5601 or https://host:5601)")]
    KibanaUrl(String),

    #[error("Kibana at {url} is unreachable: {reason}")]
    KibanaUnreachable { url: String, reason: String },

    #[error("Kibana at {url} answered HTTP {status} to the saved-objects import: {message}")]
    KibanaHttp {
        url: String,
        status: u16,
        message: String,
    },

    #[error("Kibana at {url}: unexpected answer to the saved-objects import: {message}")]
    KibanaResponse { url: String, message: String },

    #[error("Kafka at {brokers}: {what}")]
    Kafka {
        brokers: String,
        what: String,
        // Boxed: librdkafka's error is large, and every result carries this type.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },

    #[error("Kafka topic {topic} cannot be created: {reason}")]
    KafkaTopic { topic: String, reason: String },

    #[error("Kafka property {0:?} has no value: write key=value")]
    KafkaProperty(String),

    #[error("Kafka at {brokers}: {message}")]
    KafkaDelivery { brokers: String, message: String },

    #[error(transparent)]
    Lake(#[from] LakeError),
}

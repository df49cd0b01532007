//! Where lake tables go besides the lake, fed by the lake's row-level change
//! feed (`Lake::row_changes_since`), never by a source. One module per sink:
//! `elasticsearch` (Elasticsearch 8 and OpenSearch 2/3 indices); the Kafka
//! publisher and consumer are to come (issue 14).

pub mod elasticsearch;
mod error;

pub use error::SinkError;

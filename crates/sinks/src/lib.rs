//! Where lake tables go besides the lake, fed by the lake's row-level change
//! feed (`Lake::row_changes_since`), never by a source. One module per sink:
//! `elasticsearch` (Elasticsearch 8 and OpenSearch 2/3 indices) and `kafka`
//! (the lake's changes as messages, and a consumer group into the indices). `kibana` holds the
//! dashboard over the Elasticsearch indices.

pub mod elasticsearch;
mod error;
mod http;
pub mod kafka;
pub mod kibana;
mod rows;

pub use error::SinkError;

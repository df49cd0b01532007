//! Where lake tables go besides the lake. Empty until its first sink lands:
//! the Elasticsearch/OpenSearch mirror (issue 13) and the Kafka publisher and
//! consumer (issue 14), each a module of the same shape — `config.rs` (its
//! settings), `sink.rs` (batching, acknowledgement), `tests.rs` — fed by the
//! lake's row-level change feed, never by a source. Sources and sinks do not
//! depend on each other.

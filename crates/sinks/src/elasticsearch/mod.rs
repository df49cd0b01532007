//! The Elasticsearch (and OpenSearch) mirror of the lake's `signals`,
//! `features` and `ohlcv` tables: index templates, a bulk writer and an
//! incremental sync driven by the lake's row-level change feed.

pub(crate) mod bulk;
mod client;
mod config;
pub mod encode;
mod mapping;
mod sync;

pub use bulk::BulkOutcome;
pub use client::EsClient;
pub use config::{DEFAULT_BULK_BYTES, DEFAULT_INDEX_PREFIX, EsAuth, EsConfig};
pub use encode::TableEncoder;
#[cfg(test)]
pub(crate) use mapping::template_fields;
pub use mapping::{MIRRORED, index_name};
pub use sync::{SyncReport, TableStatus, TableSync, drop_indices, setup, status, sync};

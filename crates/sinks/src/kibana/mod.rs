//! Kibana over the Elasticsearch mirror: the saved objects bf ships (data
//! views of the three indices and the "bf signals" dashboard, in
//! `infra/kibana/bf.ndjson`) and their import through Kibana's
//! saved-objects API.

mod import;
mod saved_objects;

pub use import::{ImportError, ImportReport, KibanaConfig, import};
pub use saved_objects::{BUNDLED_FILE_NAME, KIBANA_VERSION, SavedObjects};

//! Object stores for every process of a cluster job: S3 buckets are opened on
//! first use with the lake's `AWS_*` settings from the process's environment
//! (`bf_lake::s3_options`), so a scheduler or executor started with the same
//! settings as the client reads and writes the same lake.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use url::Url;

/// Local files as DataFusion has them, plus S3 buckets opened on demand.
#[derive(Debug, Default)]
pub struct LakeStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for LakeStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match self.known.get_store(url) {
            Ok(store) => Ok(store),
            Err(_) if url.scheme() == "s3" => {
                let store: Arc<dyn ObjectStore> = Arc::new(s3_store(url)?);
                self.known.register_store(url, Arc::clone(&store));
                Ok(store)
            }
            Err(error) => Err(error),
        }
    }
}

/// The bucket of `url` with the lake's S3 settings.
fn s3_store(url: &Url) -> Result<object_store::aws::AmazonS3> {
    let bucket = url
        .host_str()
        .ok_or_else(|| DataFusionError::Configuration(format!("{url} names no bucket")))?;
    let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
    for (key, value) in bf_lake::s3_options(std::env::vars()) {
        // Settings object_store does not know (AWS_PROFILE, …) are the
        // environment's business, not the store's.
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    builder
        .build()
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

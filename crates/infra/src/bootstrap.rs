//! What a fresh stack needs before bf can use it, made through the sinks'
//! own code: the lake's bucket, the Kafka topics, the index templates and the
//! Kibana dashboard. Every step is idempotent.

use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::signer::Signer as _;

use crate::InfraError;

/// Creates `bucket` on the S3 API at `endpoint` (already there is fine).
/// object_store signs the request; it has no call of its own for buckets.
pub async fn create_bucket(
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret_key: &str,
    http: &reqwest::Client,
) -> Result<bool, InfraError> {
    let error = |reason: String| InfraError::Bucket {
        bucket: bucket.to_string(),
        url: endpoint.to_string(),
        reason,
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(bucket)
        .with_access_key_id(access_key)
        .with_secret_access_key(secret_key)
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .map_err(|e| error(e.to_string()))?;
    let url = store
        .signed_url(
            reqwest::Method::PUT,
            &Path::from(""),
            Duration::from_secs(300),
        )
        .await
        .map_err(|e| error(e.to_string()))?;
    let response = http
        .put(url.as_str())
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(true)
    } else if body.contains("BucketAlreadyOwnedByYou") || body.contains("BucketAlreadyExists") {
        Ok(false)
    } else {
        Err(error(format!("HTTP {status}: {}", body.trim())))
    }
}

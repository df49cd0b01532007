//! What a fresh stack needs before bf can use it, made through the sinks'
//! own code: the lake's bucket, the Kafka topics, the index templates and the
//! Kibana dashboard. Every step is idempotent.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use crate::InfraError;

/// Creates `bucket` on the S3 API at `endpoint` unless it is there (a
/// signed `HEAD`, then `PUT /bucket`; AWS Signature V4 in the headers, which
/// MinIO and every S3 implementation accept). Whether it was created.
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
    let url = format!("{}/{bucket}", endpoint.trim_end_matches('/'));
    let credentials = (access_key, secret_key);
    let head = signed(http, "HEAD", &url, credentials)
        .map_err(error)?
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    if head.status().is_success() {
        return Ok(false);
    }
    let response = signed(http, "PUT", &url, credentials)
        .map_err(error)?
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(true)
    } else if body.contains("BucketAlreadyOwnedByYou") {
        Ok(false)
    } else {
        Err(error(format!("HTTP {status}: {}", body.trim())))
    }
}

/// A bodiless request to `url`, signed for S3 in us-east-1.
fn signed(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    (access_key, secret_key): (&str, &str),
) -> Result<reqwest::RequestBuilder, String> {
    let identity = Credentials::new(access_key, secret_key, None, None, "bf infra").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    // S3 wants the length even of an empty body.
    let headers = [("content-length", "0")];
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = http.request(method, url).header("content-length", "0");
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    Ok(request)
}

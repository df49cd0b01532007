//! `POST /api/saved_objects/_import?overwrite=true`: the saved objects as a
//! multipart `file` ending `.ndjson`, with the `kbn-xsrf` header Kibana
//! demands of every write. Kibana answers per object; a refused object is
//! reported, not an error of the request.

use std::path::PathBuf;
use std::time::Duration;

use bf_core::retry::{RetryPolicy, Verdict};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::saved_objects::{BUNDLED_FILE_NAME, SavedObjects};
use crate::SinkError;
use crate::elasticsearch::EsAuth;
use crate::http::{self, describe, snippet};

/// How bf reaches Kibana. Kibana takes the same credentials as the
/// Elasticsearch it fronts.
#[derive(Debug, Clone)]
pub struct KibanaConfig {
    pub url: url::Url,
    pub auth: EsAuth,
    /// PEM file of the CA that signed Kibana's certificate.
    pub ca_cert: Option<PathBuf>,
    /// For a Kibana still starting (503), busy (429) or not yet listening.
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

impl KibanaConfig {
    pub fn new(url: &str) -> Result<Self, SinkError> {
        let url = url::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| SinkError::KibanaUrl(url.to_string()))?;
        Ok(Self {
            url,
            auth: EsAuth::None,
            ca_cert: None,
            retry: RetryPolicy {
                max_retries: 5,
                first_backoff: Duration::from_millis(500),
                max_wait: Duration::from_secs(10),
            },
            timeout: Duration::from_secs(60),
        })
    }

    /// The URL for messages, without credentials or path.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

/// Kibana's answer: `success` only when every object was imported.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub success: bool,
    pub success_count: u64,
    #[serde(default)]
    pub errors: Vec<ImportError>,
}

/// One object Kibana did not import, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportError {
    pub id: String,
    #[serde(rename = "type")]
    pub object_type: String,
    #[serde(default)]
    pub title: Option<String>,
    /// Kibana's reason: `{"type": "missing_references", "references": [...]}`,
    /// `{"type": "conflict"}`, `{"type": "unsupported_type"}`,
    /// `{"type": "unknown", "message": ...}`.
    pub error: Value,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.object_type, self.id)?;
        if let Some(title) = &self.title {
            write!(f, " ({title})")?;
        }
        let kind = self.error["type"].as_str().unwrap_or("error");
        write!(f, ": {kind}")?;
        if let Some(references) = self.error["references"].as_array() {
            let missing: Vec<String> = references
                .iter()
                .map(|r| format!("{} {}", text(&r["type"]), text(&r["id"])))
                .collect();
            write!(f, " ({})", missing.join(", "))?;
        }
        if let Some(message) = self.error["message"].as_str() {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Imports `objects`, replacing objects of the same ids.
pub async fn import(
    config: &KibanaConfig,
    objects: &SavedObjects,
) -> Result<ImportReport, SinkError> {
    let http = http::client(config.ca_cert.as_deref(), config.timeout)?;
    let mut url = config
        .url
        .join("api/saved_objects/_import")
        .map_err(|_| SinkError::KibanaUrl(config.url.to_string()))?;
    url.query_pairs_mut().append_pair("overwrite", "true");
    let body = objects.to_ndjson();
    let file_name = upload_name(objects.file());
    let attempt = || async {
        let part = Part::text(body.clone())
            .file_name(file_name.clone())
            .mime_str("application/ndjson")
            .expect("a valid MIME type");
        let request = http
            .post(url.clone())
            .header("kbn-xsrf", "true")
            .multipart(Form::new().part("file", part));
        send(config, http::authorize(request, &config.auth)).await
    };
    let on_retry = |failure: &Failure, wait: Duration| {
        tracing::info!(error = %failure.error, ?wait, "retrying the Kibana import");
    };
    let answer = config
        .retry
        .run(attempt, |failure: &Failure| failure.verdict, on_retry)
        .await
        .map_err(|failure| failure.error)?;
    serde_json::from_slice(&answer).map_err(|e| SinkError::KibanaResponse {
        url: config.origin(),
        message: format!("{e}: {}", snippet(&answer)),
    })
}

/// Kibana refuses a file whose name does not end `.ndjson`.
fn upload_name(file: &str) -> String {
    let name = std::path::Path::new(file).file_name().map_or_else(
        || BUNDLED_FILE_NAME.into(),
        |n| n.to_string_lossy().into_owned(),
    );
    if name.ends_with(".ndjson") {
        name
    } else {
        format!("{name}.ndjson")
    }
}

struct Failure {
    error: SinkError,
    verdict: Verdict,
}

async fn send(
    config: &KibanaConfig,
    request: reqwest::RequestBuilder,
) -> Result<bytes::Bytes, Failure> {
    let unreachable = |e: reqwest::Error| Failure {
        error: SinkError::KibanaUnreachable {
            url: config.origin(),
            reason: describe(&e),
        },
        verdict: Verdict::Retry { after: None },
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return Ok(body);
    }
    let busy = matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    );
    Err(Failure {
        error: SinkError::KibanaHttp {
            url: config.origin(),
            status: status.as_u16(),
            message: snippet(&body),
        },
        verdict: if busy {
            Verdict::Retry { after: retry_after }
        } else {
            Verdict::Final
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_name_ends_ndjson() {
        assert_eq!(upload_name("infra/kibana/bf.ndjson"), "bf.ndjson");
        assert_eq!(upload_name("/tmp/mine.json"), "mine.json.ndjson");
    }

    #[test]
    fn an_error_says_what_kibana_said() {
        let error: ImportError = serde_json::from_value(serde_json::json!({
            "id": "bf-price-averages", "type": "visualization", "title": "Price",
            "meta": {"title": "Price", "icon": "visualizeApp"},
            "error": {"type": "missing_references",
                      "references": [{"type": "index-pattern", "id": "bf-features"}]}
        }))
        .unwrap();
        assert_eq!(
            error.to_string(),
            "visualization bf-price-averages (Price): missing_references (index-pattern bf-features)"
        );
        assert!(KibanaConfig::new("localhost:5601").is_err());
    }
}

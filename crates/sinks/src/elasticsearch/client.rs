//! HTTP to Elasticsearch: credentials, a private CA, several nodes, and
//! whole-request retries (connection lost, timeouts, 429, 5xx) under bf's
//! retry policy. Requests carry ids, so sending one twice is harmless.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bf_core::retry::Verdict;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::config::EsConfig;
use crate::SinkError;
use crate::http::{self, describe, snippet};

pub struct EsClient {
    http: reqwest::Client,
    config: EsConfig,
    /// The node the next request goes to; moves on when one is unreachable.
    node: AtomicUsize,
}

impl std::fmt::Debug for EsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsClient")
            .field("config", &self.config)
            .finish()
    }
}

/// A request body and its content type.
pub(crate) struct Body {
    pub bytes: bytes::Bytes,
    pub content_type: &'static str,
}

/// An answer that was not a whole-request failure.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

/// One failed attempt and whether another may succeed.
struct Failure {
    error: SinkError,
    verdict: Verdict,
}

impl EsClient {
    pub fn new(config: EsConfig) -> Result<Self, SinkError> {
        Ok(Self {
            http: http::client(config.ca_cert.as_deref(), config.timeout)?,
            config,
            node: AtomicUsize::new(0),
        })
    }

    pub fn config(&self) -> &EsConfig {
        &self.config
    }

    /// Sends a request, retrying whole-request failures; any other answer,
    /// 4xx included, is returned for the caller to read.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Body>,
        what: &str,
    ) -> Result<Answer, SinkError> {
        let attempt = || self.attempt(method.clone(), path, body, what);
        let on_retry = |failure: &Failure, wait: Duration| {
            tracing::info!(what, error = %failure.error, ?wait, "retrying an Elasticsearch request");
        };
        self.config
            .retry
            .run(attempt, |failure: &Failure| failure.verdict, on_retry)
            .await
            .map_err(|failure| failure.error)
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        body: Option<&Body>,
        what: &str,
    ) -> Result<Answer, Failure> {
        let nodes = &self.config.nodes;
        let index = self.node.load(Ordering::Relaxed) % nodes.len();
        let node = &nodes[index];
        let url = node
            .join(path.trim_start_matches('/'))
            .map_err(|e| Failure {
                error: SinkError::NodeUrl(format!("{node}{path}: {e}")),
                verdict: Verdict::Final,
            })?;
        let mut request = self.http.request(method, url);
        request = http::authorize(request, &self.config.auth);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, body.content_type)
                .body(body.bytes.clone());
        }
        let origin = node.origin().ascii_serialization();
        let unreachable = |reason: String| {
            // The next attempt tries the next node.
            let _ =
                self.node
                    .compare_exchange(index, index + 1, Ordering::Relaxed, Ordering::Relaxed);
            Failure {
                error: SinkError::Unreachable {
                    url: origin.clone(),
                    what: what.to_string(),
                    reason,
                },
                verdict: Verdict::Retry { after: None },
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        // A body cut off before the end is a lost answer: the request may
        // have been applied or not, and sending it again is safe.
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {}", describe(&e))))?;
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Failure {
                error: SinkError::Http {
                    url: origin,
                    what: what.to_string(),
                    status: status.as_u16(),
                    message: snippet(&body),
                },
                verdict: Verdict::Retry { after: retry_after },
            });
        }
        Ok(Answer { status, body })
    }

    /// [`Self::send`] for a JSON answer; any status but 2xx is an error.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<T, SinkError> {
        let body = body.map(|value| Body {
            bytes: serde_json::to_vec(value)
                .expect("a JSON value serializes")
                .into(),
            content_type: "application/json",
        });
        let answer = self.send(method, path, body.as_ref(), what).await?;
        if !answer.status.is_success() {
            return Err(self.http_error(what, &answer));
        }
        serde_json::from_slice(&answer.body).map_err(|e| self.response_error(what, e.to_string()))
    }

    pub(crate) fn http_error(&self, what: &str, answer: &Answer) -> SinkError {
        SinkError::Http {
            url: self.config.nodes_text(),
            what: what.to_string(),
            status: answer.status.as_u16(),
            message: snippet(&answer.body),
        }
    }

    pub(crate) fn response_error(&self, what: &str, message: String) -> SinkError {
        SinkError::Response {
            url: self.config.nodes_text(),
            what: what.to_string(),
            message,
        }
    }
}

//! What the Elasticsearch and Kibana clients share: an HTTP client that
//! trusts a private CA, credentials on each request, and readable errors.

use std::path::Path;
use std::time::Duration;

use reqwest::header::AUTHORIZATION;

use crate::SinkError;
use crate::elasticsearch::EsAuth;

/// A client with `timeout` per request that also trusts the CA in `ca_cert`.
pub(crate) fn client(
    ca_cert: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, SinkError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|source| SinkError::CaCert {
            path: path.to_path_buf(),
            source,
        })?;
        let certificate =
            reqwest::Certificate::from_pem(&pem).map_err(|source| SinkError::CaCertFormat {
                path: path.to_path_buf(),
                source,
            })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(SinkError::Client)
}

pub(crate) fn authorize(
    request: reqwest::RequestBuilder,
    auth: &EsAuth,
) -> reqwest::RequestBuilder {
    match auth {
        EsAuth::None => request,
        EsAuth::Basic { username, password } => request.basic_auth(username, Some(password)),
        EsAuth::ApiKey(key) => request.header(AUTHORIZATION, format!("ApiKey {key}")),
    }
}

/// A transport error with its causes, shortest first for the common ones.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".into();
    }
    if err.is_connect() {
        return "cannot connect".into();
    }
    bf_core::error_chain(err)
}

/// The start of an error body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_string()
    }
}

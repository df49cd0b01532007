use std::path::PathBuf;
use std::time::Duration;

use bf_core::retry::RetryPolicy;

use crate::SinkError;

/// How bf reaches Elasticsearch (or OpenSearch) and how it writes.
#[derive(Debug, Clone)]
pub struct EsConfig {
    /// Node URLs; a request that cannot reach one tries the next.
    pub nodes: Vec<url::Url>,
    pub auth: EsAuth,
    /// PEM file of the CA that signed the nodes' certificates.
    pub ca_cert: Option<PathBuf>,
    /// Indices are `{prefix}-signals`, `{prefix}-features`, `{prefix}-ohlcv`
    /// and `{prefix}-sync` (what was synced up to which lake version).
    pub index_prefix: String,
    /// Largest bulk request body.
    pub bulk_bytes: usize,
    /// Bulk requests in flight at once.
    pub in_flight: usize,
    /// For whole requests (429, 5xx, connection lost) and rejected items (429, 503).
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

/// Credentials; `Debug` never shows them.
#[derive(Clone, Default)]
pub enum EsAuth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    /// The encoded API key (base64 of `id:key`), as Elasticsearch hands it out.
    ApiKey(String),
}

impl std::fmt::Debug for EsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => write!(f, "None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ****)"),
            Self::ApiKey(_) => write!(f, "ApiKey(****)"),
        }
    }
}

pub const DEFAULT_INDEX_PREFIX: &str = "bf";
pub const DEFAULT_BULK_BYTES: usize = 5 * 1024 * 1024;

impl EsConfig {
    /// Settings for `nodes`, a comma-separated list of URLs, with bf's defaults.
    pub fn new(nodes: &str) -> Result<Self, SinkError> {
        let nodes = nodes
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                url::Url::parse(n)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or_else(|| SinkError::NodeUrl(n.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(SinkError::NoNodes);
        }
        Ok(Self {
            nodes,
            auth: EsAuth::None,
            ca_cert: None,
            index_prefix: DEFAULT_INDEX_PREFIX.to_string(),
            bulk_bytes: DEFAULT_BULK_BYTES,
            in_flight: 3,
            retry: RetryPolicy {
                max_retries: 6,
                first_backoff: Duration::from_millis(200),
                max_wait: Duration::from_secs(30),
            },
            timeout: Duration::from_secs(60),
        })
    }

    /// The nodes as one line for messages, without credentials.
    pub fn nodes_text(&self) -> String {
        self.nodes
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_a_list_of_http_urls() {
        let config = EsConfig::new("http://a:9200, https://b:9200").unwrap();
        assert_eq!(config.nodes.len(), 2);
        assert_eq!(config.nodes_text(), "http://a:9200, https://b:9200");
        assert!(matches!(EsConfig::new(" , "), Err(SinkError::NoNodes)));
        for bad in ["localhost:9200", "ftp://a", "http//a"] {
            assert!(
                matches!(EsConfig::new(bad), Err(SinkError::NodeUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let basic = EsAuth::Basic {
            username: "elastic".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{basic:?}").contains("hunter2"));
        assert!(!format!("{:?}", EsAuth::ApiKey("c2VjcmV0".into())).contains("c2VjcmV0"));
    }
}

//! Each service's own health endpoint, polled until it says healthy.

use std::time::Duration;

use bf_sinks::kafka::{self, KafkaConfig};
use serde_json::Value;

use crate::services::{Check, Service};

/// Where the started services answer, and the credentials they want.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub minio: String,
    pub kafka: String,
    pub elasticsearch: String,
    pub kibana: String,
    /// The scheduler's REST API (same port as its gRPC).
    pub scheduler: String,
    pub elastic_password: String,
}

/// What the last look at a service found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    Waiting(String),
    Healthy,
}

const ELASTIC_USER: &str = "elastic";

/// One look at `service`.
pub async fn check(
    service: &Service,
    endpoints: &Endpoints,
    http: &reqwest::Client,
) -> HealthState {
    let result = match service.check {
        Check::MinioLive => get(
            http,
            &format!("{}/minio/health/live", endpoints.minio),
            None,
        )
        .await
        .map(drop),
        Check::ElasticsearchHealth => {
            let url = format!("{}/_cluster/health", endpoints.elasticsearch);
            get(http, &url, Some(&endpoints.elastic_password))
                .await
                .and_then(|body| match body["status"].as_str() {
                    Some("green" | "yellow") => Ok(()),
                    other => Err(format!("cluster status {}", other.unwrap_or("unknown"))),
                })
        }
        Check::KibanaStatus => {
            let url = format!("{}/api/status", endpoints.kibana);
            get(http, &url, Some(&endpoints.elastic_password))
                .await
                .and_then(|body| match body["status"]["overall"]["level"].as_str() {
                    Some("available") => Ok(()),
                    other => Err(format!("status {}", other.unwrap_or("unknown"))),
                })
        }
        Check::SchedulerState => {
            let url = format!("{}/api/state", endpoints.scheduler);
            get(http, &url, None)
                .await
                .and_then(|body| match body["version"].as_str() {
                    Some(_) => Ok(()),
                    None => Err(format!("{url} did not say its version")),
                })
        }
        Check::KafkaMetadata => {
            let mut config = KafkaConfig::new(&endpoints.kafka);
            config.timeout = Duration::from_secs(3);
            kafka::ping(&config)
                .await
                .map_err(|e| bf_core::error_chain(&e))
        }
    };
    match result {
        Ok(()) => HealthState::Healthy,
        Err(reason) => HealthState::Waiting(reason),
    }
}

async fn get(http: &reqwest::Client, url: &str, password: Option<&str>) -> Result<Value, String> {
    let mut request = http.get(url);
    if let Some(password) = password {
        request = request.basic_auth(ELASTIC_USER, Some(password));
    }
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            "not answering yet (connection refused)".to_string()
        } else {
            e.to_string()
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status} from {url}"));
    }
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

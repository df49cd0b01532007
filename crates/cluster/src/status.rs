//! `bf cluster status`: executors and jobs, from the scheduler's REST API
//! (`/api/state`, `/api/executors`, `/api/jobs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ClusterError, SchedulerAddress};

/// The scheduler and what runs on it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub scheduler: String,
    pub version: String,
    pub started: u64,
    pub executors: Vec<ExecutorStatus>,
    pub jobs: Vec<JobStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutorStatus {
    pub id: String,
    pub host: String,
    pub port: u16,
    /// Milliseconds since its last heartbeat.
    pub last_seen: Option<u64>,
    pub slots: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    pub job_id: String,
    pub job_name: String,
    pub job_status: String,
    pub num_stages: usize,
    pub completed_stages: usize,
    pub percent_complete: u8,
    pub start_time: u64,
    pub end_time: u64,
}

/// The tasks of one stage of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageTasks {
    pub stage_id: String,
    pub stage_status: String,
    pub tasks: usize,
}

#[derive(Deserialize)]
struct State {
    started: u64,
    version: String,
}

#[derive(Deserialize)]
struct Executor {
    id: String,
    host: String,
    port: u16,
    last_seen: Option<u64>,
    specification: Specification,
}

#[derive(Deserialize)]
struct Specification {
    vcores: u32,
}

#[derive(Deserialize)]
struct Stages {
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
struct Stage {
    stage_id: String,
    stage_status: String,
    tasks: Vec<serde_json::Value>,
}

/// A client of one scheduler's REST API.
#[derive(Debug, Clone)]
pub struct SchedulerApi {
    address: SchedulerAddress,
    http: reqwest::Client,
}

impl SchedulerApi {
    pub fn new(address: SchedulerAddress) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client without TLS settings builds");
        Self { address, http }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClusterError> {
        let url = format!("{}{path}", self.address.http_url());
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ClusterError::Unreachable {
                address: self.address.to_string(),
                problem: bf_core::error_chain(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ClusterError::Api {
                address: self.address.to_string(),
                problem: format!("GET {path} answered {status}"),
            });
        }
        response.json().await.map_err(|e| ClusterError::Api {
            address: self.address.to_string(),
            problem: format!("GET {path}: {}", bf_core::error_chain(&e)),
        })
    }

    /// Executors, then jobs, newest first.
    pub async fn status(&self) -> Result<ClusterStatus, ClusterError> {
        let state: State = self.get("/api/state").await?;
        let executors: Vec<Executor> = self.get("/api/executors").await?;
        let mut jobs: Vec<JobStatus> = self.get("/api/jobs").await?;
        jobs.sort_by_key(|job| std::cmp::Reverse(job.start_time));
        let mut executors: Vec<ExecutorStatus> = executors
            .into_iter()
            .map(|e| ExecutorStatus {
                id: e.id,
                host: e.host,
                port: e.port,
                last_seen: e.last_seen,
                slots: e.specification.vcores,
            })
            .collect();
        executors.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        Ok(ClusterStatus {
            scheduler: self.address.to_string(),
            version: state.version,
            started: state.started,
            executors,
            jobs,
        })
    }

    /// Executors registered now.
    pub async fn executors(&self) -> Result<Vec<ExecutorStatus>, ClusterError> {
        Ok(self.status().await?.executors)
    }

    /// A job's stages and how many tasks each ran.
    pub async fn stages(&self, job_id: &str) -> Result<Vec<StageTasks>, ClusterError> {
        let stages: Stages = self.get(&format!("/api/job/{job_id}/stages")).await?;
        Ok(stages
            .stages
            .into_iter()
            .map(|s| StageTasks {
                stage_id: s.stage_id,
                stage_status: s.stage_status,
                tasks: s.tasks.len(),
            })
            .collect())
    }
}

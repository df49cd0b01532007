use std::path::PathBuf;

use bf_sinks::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(
        "docker is not installed (no `docker` on PATH); bf infra needs Docker Engine or Docker Desktop"
    )]
    DockerMissing,

    #[error(
        "docker compose is missing: neither `docker compose` (the v2 plugin) nor `docker-compose` answers"
    )]
    ComposeMissing,

    #[error("the Docker daemon does not answer: {reason}")]
    DaemonDown { reason: String },

    #[error("`{command}` failed: {output}")]
    Compose { command: String, output: String },

    #[error("unknown service {name:?}; the services are {known}")]
    UnknownService { name: String, known: String },

    #[error(
        "{service} did not become healthy within {seconds} s: {reason}\n--- last lines of its log ---\n{log}"
    )]
    Unhealthy {
        service: String,
        seconds: u64,
        reason: String,
        log: String,
    },

    #[error("{step} failed")]
    Bootstrap {
        step: &'static str,
        #[source]
        source: SinkError,
    },

    #[error("creating the bucket {bucket} at {url}: {reason}")]
    Bucket {
        bucket: String,
        url: String,
        reason: String,
    },

    #[error("Kibana at {url} refused saved objects: {objects}")]
    DashboardRefused { url: String, objects: String },

    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),

    #[error("{path}: {reason}")]
    Setting { path: PathBuf, reason: String },

    #[error("cannot read or write {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot run {program}")]
    Run {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

//! `bf infra`: bf's infrastructure under docker compose (`infra/docker-compose.yml`):
//! MinIO, Kafka, Elasticsearch and Kibana. Starting checks docker, generates
//! the stack's secrets, brings the services up, waits on each one's own health
//! endpoint, then bootstraps them through the sinks' own code (bucket, topics,
//! index templates, dashboard) and writes the client settings to `.env`.

mod bootstrap;
mod compose;
mod env_file;
mod error;
mod health;
mod services;
mod stack;
mod start;

pub use compose::{Compose, ContainerState};
pub use env_file::EnvFile;
pub use error::InfraError;
pub use health::HealthState;
pub use services::{SERVICES, Service};
pub use stack::{COMPOSE_FILE, STACK_ENV_FILE, StackSettings};
pub use start::{StartEvent, StartOptions, StartReport, start};

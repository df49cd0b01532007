//! `bf cluster scheduler`: Ballista's scheduler with bf's functions and plan
//! node; its gRPC API (jobs, executors) and REST API (`/api/…`) share one port.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;

use crate::ClusterError;
use crate::codec::BfCodec;
use crate::engine::scheduler_session;

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    /// Seconds without a heartbeat after which an executor counts as lost
    /// and its tasks run elsewhere.
    pub executor_timeout_seconds: u64,
    /// Clients fetch job results through the scheduler's port instead of
    /// from the executors: for executors the client cannot reach (in a
    /// container network).
    pub flight_proxy: bool,
}

/// Runs a scheduler until the process is stopped.
pub async fn run_scheduler(options: &SchedulerOptions) -> Result<(), ClusterError> {
    // A port in use is said plainly, before Ballista starts its services.
    drop(
        std::net::TcpListener::bind(options.bind).map_err(|source| ClusterError::Bind {
            what: "the scheduler",
            address: options.bind.to_string(),
            source,
        })?,
    );
    let mut config = SchedulerConfig::default()
        .with_hostname(options.bind.ip().to_string())
        .with_port(options.bind.port())
        .with_override_session_builder(Arc::new(scheduler_session));
    config.bind_host = options.bind.ip().to_string();
    config.override_physical_codec = Some(BfCodec::shared());
    config.executor_timeout_seconds = options.executor_timeout_seconds;
    config.enable_embedded_flight_proxy = options.flight_proxy;
    config.expire_dead_executor_interval_seconds =
        options.executor_timeout_seconds.div_ceil(4).max(1);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_error)?;
    start_server(cluster, options.bind, Arc::new(config))
        .await
        .map_err(ballista_error)
}

pub(crate) fn ballista_error(error: ballista_core::error::BallistaError) -> ClusterError {
    ClusterError::Ballista(error.to_string())
}

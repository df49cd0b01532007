//! `bf cluster executor`: Ballista's executor with bf's functions, plan node
//! and lake object stores. It takes free ports unless told which, so several
//! start on one host without flags; Ctrl-C or SIGTERM deregisters it from the
//! scheduler (Ballista's own shutdown) before it exits.

use std::net::{Ipv4Addr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

use crate::codec::BfCodec;
use crate::engine::{executor_functions, runtime};
use crate::partition_op::set_executor_name;
use crate::scheduler::ballista_error;
use crate::{ClusterError, SchedulerAddress};

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: SchedulerAddress,
    /// Tasks run at once; 0 = one per core.
    pub slots: usize,
    /// Shuffle and spill files; a temporary folder when `None`.
    pub work_dir: Option<String>,
    /// Address to listen on, and the host the scheduler and other executors
    /// reach this one by.
    pub bind_host: String,
    pub advertise_host: Option<String>,
    /// Arrow Flight (shuffle reads) and gRPC (task launch) ports; free ones
    /// when `None`.
    pub flight_port: Option<u16>,
    pub grpc_port: Option<u16>,
    /// Seconds to keep trying to reach the scheduler at start.
    pub connect_timeout_seconds: u16,
    pub heartbeat_seconds: u64,
}

/// What an executor started with, for the user.
#[derive(Debug, Clone)]
pub struct ExecutorStarted {
    pub id: String,
    pub flight_port: u16,
    pub grpc_port: u16,
    pub slots: usize,
    pub work_dir: Option<String>,
}

/// Runs an executor until it is stopped; `started` is told its ports first.
pub async fn run_executor(
    options: &ExecutorOptions,
    started: impl FnOnce(&ExecutorStarted),
) -> Result<(), ClusterError> {
    let flight_port = port_or_free(&options.bind_host, options.flight_port)?;
    let grpc_port = port_or_free(&options.bind_host, options.grpc_port)?;
    let slots = if options.slots == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.slots
    };
    let defaults = ExecutorProcessConfig::default();
    let id = defaults.executor_id.clone();
    let advertise_host = match &options.advertise_host {
        Some(host) => host.clone(),
        None => reachable_host(&options.bind_host),
    };
    set_executor_name(format!("{advertise_host}:{flight_port}"));
    // Kept for the executor's life, removed after it.
    let own_dir = match options.work_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|source| ClusterError::WorkDir {
            path: std::env::temp_dir().display().to_string(),
            source,
        })?),
    };
    let work_dir = options
        .work_dir
        .clone()
        .or_else(|| own_dir.as_ref().map(|dir| dir.path().display().to_string()));
    let temp_dir = work_dir.clone();
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: Some(advertise_host),
        port: flight_port,
        grpc_port,
        scheduler_host: options.scheduler.host.clone(),
        scheduler_port: options.scheduler.port,
        scheduler_connect_timeout_seconds: options.connect_timeout_seconds,
        vcores: slots,
        work_dir: work_dir.clone(),
        executor_heartbeat_interval_seconds: options.heartbeat_seconds,
        override_function_registry: Some(Arc::new(executor_functions())),
        override_physical_codec: Some(BfCodec::shared()),
        override_runtime_producer: Some(Arc::new(move |_| runtime(temp_dir.as_deref()))),
        ..defaults
    };
    started(&ExecutorStarted {
        id,
        flight_port,
        grpc_port,
        slots,
        work_dir,
    });
    start_executor_process(Arc::new(config))
        .await
        .map_err(|error| match error {
            ballista_core::error::BallistaError::GrpcConnectionError(_) => {
                ClusterError::Unreachable {
                    address: options.scheduler.to_string(),
                    problem: error.to_string(),
                }
            }
            other => ballista_error(other),
        })
}

/// The bind host, or when it is every interface, this host's own address
/// (in a container: its address on the container network).
fn reachable_host(bind_host: &str) -> String {
    let every_interface = bind_host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !every_interface {
        return bind_host.to_string();
    }
    let own = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .and_then(|name| {
            (name.as_str(), 0)
                .to_socket_addrs()
                .ok()?
                .map(|addr| addr.ip())
                .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        });
    own.map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
}

/// `port`, or one the system has free now.
fn port_or_free(host: &str, port: Option<u16>) -> Result<u16, ClusterError> {
    if let Some(port) = port {
        return Ok(port);
    }
    let bind_error = |source| ClusterError::Bind {
        what: "an executor port",
        address: host.to_string(),
        source,
    };
    let listener = TcpListener::bind((host, 0))
        .or_else(|_| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .map_err(bind_error)?;
    Ok(listener.local_addr().map_err(bind_error)?.port())
}

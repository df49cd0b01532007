//! The services of the compose file that bf waits on and bootstraps: one
//! entry each, with the port setting of `infra/.env` that moves it.

/// How a service proves it is up: its own health endpoint, not a sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `GET /minio/health/live` answers 200.
    MinioLive,
    /// A metadata request is answered.
    KafkaMetadata,
    /// `GET /_cluster/health` says yellow or green.
    ElasticsearchHealth,
    /// `GET /api/status` says the overall level is `available`.
    KibanaStatus,
    /// `GET /api/state` of the Ballista scheduler answers with its version.
    SchedulerState,
}

#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    pub role: &'static str,
    /// The `infra/.env` variable of its published port, and the default.
    pub port_setting: &'static str,
    pub default_port: u16,
    pub check: Check,
}

pub const SERVICES: &[Service] = &[
    Service {
        name: "minio",
        role: "object storage (the lake)",
        port_setting: "BF_MINIO_PORT",
        default_port: 9000,
        check: Check::MinioLive,
    },
    Service {
        name: "kafka",
        role: "broker (KRaft)",
        port_setting: "BF_KAFKA_PORT",
        default_port: 9092,
        check: Check::KafkaMetadata,
    },
    Service {
        name: "elasticsearch",
        role: "search",
        port_setting: "BF_ES_PORT",
        default_port: 9200,
        check: Check::ElasticsearchHealth,
    },
    Service {
        name: "kibana",
        role: "dashboards",
        port_setting: "BF_KIBANA_PORT",
        default_port: 5601,
        check: Check::KibanaStatus,
    },
    Service {
        name: "scheduler",
        role: "distributed engine (Ballista scheduler; executors beside it)",
        port_setting: "BF_SCHEDULER_PORT",
        default_port: 50050,
        check: Check::SchedulerState,
    },
];

/// The compose service of the cluster's executors, started with the
/// scheduler; it publishes no port.
pub const EXECUTORS: &str = "executor";

/// MinIO's web console, published beside its API.
pub const MINIO_CONSOLE: (&str, u16) = ("BF_MINIO_CONSOLE_PORT", 9001);

pub fn find(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

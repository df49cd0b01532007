//! `bf infra start`: docker checked, secrets ensured, `compose up`, every
//! service waited on through its health endpoint, the stack bootstrapped and
//! the client settings written. Running it again changes nothing that works.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bf_sinks::elasticsearch::{self, EsAuth, EsClient, EsConfig};
use bf_sinks::kafka::{self, KafkaConfig};
use bf_sinks::kibana::{self, KibanaConfig, SavedObjects};

use crate::bootstrap::create_bucket;
use crate::health::{Endpoints, check};
use crate::services::{EXECUTORS, SERVICES, Service, find};
use crate::stack::BUNDLED_COMPOSE;
use crate::{
    COMPOSE_FILE, Compose, EnvFile, HealthState, InfraError, STACK_ENV_FILE, StackSettings,
};

#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Where `docker-compose.yml` and the stack's `.env` are (`infra`).
    pub dir: PathBuf,
    /// Services to start; empty: all of them.
    pub services: Vec<String>,
    /// How long every service together may take to become healthy.
    pub timeout: Duration,
    /// The client settings file (`.env` of the working directory).
    pub client_env: PathBuf,
    /// Executors to run beside the scheduler; `None`: the compose file's
    /// number (2).
    pub executors: Option<usize>,
}

/// What happens, as it happens, for a live display.
#[derive(Debug)]
pub enum StartEvent<'a> {
    Generated {
        names: &'a [&'static str],
        file: &'a Path,
    },
    Starting {
        services: &'a [&'static str],
    },
    Health {
        service: &'static str,
        state: &'a HealthState,
        after: Duration,
    },
    Bootstrapped {
        step: &'static str,
        detail: String,
    },
}

/// One started service and where to reach it.
#[derive(Debug, Clone)]
pub struct ServiceUrl {
    pub service: &'static str,
    pub role: &'static str,
    pub url: String,
}

#[derive(Debug)]
pub struct StartReport {
    pub urls: Vec<ServiceUrl>,
    pub client_env: PathBuf,
    /// The client settings written into it.
    pub client_settings: Vec<&'static str>,
    /// Stack settings generated this time (names only).
    pub generated: Vec<&'static str>,
}

const HOST: &str = "127.0.0.1";

pub async fn start(
    options: &StartOptions,
    mut on_event: impl FnMut(StartEvent<'_>),
) -> Result<StartReport, InfraError> {
    let selected = select(&options.services)?;
    let file = options.dir.join(COMPOSE_FILE);
    let compose = Compose::detect(&file, &options.dir.join(STACK_ENV_FILE)).await?;
    if !file.exists() {
        std::fs::create_dir_all(&options.dir)
            .and_then(|()| std::fs::write(&file, BUNDLED_COMPOSE))
            .map_err(|source| InfraError::File {
                path: file.clone(),
                source,
            })?;
    }
    let (stack, generated) = StackSettings::ensure(&options.dir)?;
    if !generated.is_empty() {
        on_event(StartEvent::Generated {
            names: &generated,
            file: &stack.path(),
        });
    }
    let names: Vec<&'static str> = selected.iter().map(|s| s.name).collect();
    on_event(StartEvent::Starting { services: &names });
    let mut up: Vec<&str> = if options.services.is_empty() {
        Vec::new()
    } else {
        names.clone()
    };
    if !up.is_empty() && up.contains(&"scheduler") {
        up.push(EXECUTORS);
    }
    let scale = options.executors.map(|n| format!("{EXECUTORS}={n}"));
    compose.up(&up, scale.as_deref()).await?;

    let port = |name: &str| stack.port(find(name).expect("a known service"));
    let endpoints = Endpoints {
        minio: format!("http://{HOST}:{}", port("minio")?),
        kafka: format!("{HOST}:{}", port("kafka")?),
        elasticsearch: format!("http://{HOST}:{}", port("elasticsearch")?),
        kibana: format!("http://{HOST}:{}", port("kibana")?),
        scheduler: format!("http://{HOST}:{}", port("scheduler")?),
        elastic_password: stack.elastic_password(),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(InfraError::Http)?;
    wait_healthy(
        &selected,
        &endpoints,
        &http,
        options.timeout,
        &compose,
        &mut on_event,
    )
    .await?;

    let mut client = EnvFile::load(&options.client_env)?;
    let mut written = Vec::new();
    let mut set = |key: &'static str, value: String| {
        client.set(key, &value);
        written.push(key);
    };
    let mut urls = Vec::new();
    for service in &selected {
        match service.name {
            "minio" => {
                let created = create_bucket(
                    &endpoints.minio,
                    &stack.bucket(),
                    &stack.minio_user(),
                    &stack.minio_password(),
                    &http,
                )
                .await?;
                on_event(StartEvent::Bootstrapped {
                    step: "bucket",
                    detail: format!(
                        "{} {}",
                        stack.bucket(),
                        if created { "created" } else { "already there" }
                    ),
                });
                set("BF_LAKE", format!("s3://{}/lake", stack.bucket()));
                set("AWS_ENDPOINT_URL", endpoints.minio.clone());
                set("AWS_ACCESS_KEY_ID", stack.minio_user());
                set("AWS_SECRET_ACCESS_KEY", stack.minio_password());
                set("AWS_REGION", "us-east-1".to_string());
                urls.push(url(service, endpoints.minio.clone()));
                urls.push(ServiceUrl {
                    service: "minio",
                    role: "console",
                    url: format!("http://{HOST}:{}", stack.console_port()?),
                });
            }
            "kafka" => {
                let topics = kafka::create_topics(&KafkaConfig::new(&endpoints.kafka))
                    .await
                    .map_err(|source| InfraError::Bootstrap {
                        step: "creating the Kafka topics",
                        source,
                    })?;
                on_event(StartEvent::Bootstrapped {
                    step: "topics",
                    detail: topics.join(", "),
                });
                set("BF_KAFKA_BROKERS", endpoints.kafka.clone());
                urls.push(url(service, endpoints.kafka.clone()));
            }
            "elasticsearch" => {
                let templates = install_templates(&endpoints).await?;
                on_event(StartEvent::Bootstrapped {
                    step: "index templates",
                    detail: templates.join(", "),
                });
                set("BF_ES_URL", endpoints.elasticsearch.clone());
                set("BF_ES_USERNAME", "elastic".to_string());
                set("BF_ES_PASSWORD", stack.elastic_password());
                urls.push(url(service, endpoints.elasticsearch.clone()));
            }
            "kibana" => {
                let imported = import_dashboard(&endpoints).await?;
                on_event(StartEvent::Bootstrapped {
                    step: "dashboard",
                    detail: format!("{imported} saved objects imported"),
                });
                set("BF_KIBANA_URL", endpoints.kibana.clone());
                urls.push(url(service, format!("{}/app/dashboards", endpoints.kibana)));
            }
            "scheduler" => {
                let address = endpoints.scheduler.replacen("http://", "df://", 1);
                set("BF_CLUSTER", address.clone());
                urls.push(url(service, address));
                urls.push(ServiceUrl {
                    service: "scheduler",
                    role: "REST API (executors, jobs)",
                    url: format!("{}/api/executors", endpoints.scheduler),
                });
            }
            _ => {}
        }
    }
    // The client file holds the stack's secrets now: owner only.
    client.save(true)?;
    Ok(StartReport {
        urls,
        client_env: options.client_env.clone(),
        client_settings: written,
        generated,
    })
}

/// The services named (in the compose file's order), or all of them.
fn select(names: &[String]) -> Result<Vec<&'static Service>, InfraError> {
    for name in names {
        if find(name).is_none() {
            return Err(InfraError::UnknownService {
                name: name.clone(),
                known: SERVICES
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(SERVICES
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .collect())
}

fn url(service: &Service, url: String) -> ServiceUrl {
    ServiceUrl {
        service: service.name,
        role: service.role,
        url,
    }
}

/// Looks at every pending service each second until all are healthy; past
/// `timeout`, the first one still waiting is named with its log's end.
async fn wait_healthy(
    services: &[&'static Service],
    endpoints: &Endpoints,
    http: &reqwest::Client,
    timeout: Duration,
    compose: &Compose,
    on_event: &mut impl FnMut(StartEvent<'_>),
) -> Result<(), InfraError> {
    let started = Instant::now();
    let mut states: HashMap<&'static str, HealthState> = HashMap::new();
    let mut pending: Vec<&'static Service> = services.to_vec();
    loop {
        let looks = futures::future::join_all(
            pending
                .iter()
                .map(|service| check(service, endpoints, http)),
        )
        .await;
        for (service, state) in pending.iter().zip(looks) {
            if states.get(service.name) != Some(&state) {
                on_event(StartEvent::Health {
                    service: service.name,
                    state: &state,
                    after: started.elapsed(),
                });
                states.insert(service.name, state);
            }
        }
        pending.retain(|s| states.get(s.name) != Some(&HealthState::Healthy));
        let Some(late) = pending.first() else {
            return Ok(());
        };
        if started.elapsed() >= timeout {
            let reason = match states.get(late.name) {
                Some(HealthState::Waiting(reason)) => reason.clone(),
                _ => "no answer".to_string(),
            };
            return Err(InfraError::Unhealthy {
                service: late.name.to_string(),
                seconds: timeout.as_secs(),
                reason,
                log: compose.log_tail(late.name, 20).await,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn elastic(endpoints: &Endpoints) -> EsAuth {
    EsAuth::Basic {
        username: "elastic".to_string(),
        password: endpoints.elastic_password.clone(),
    }
}

async fn install_templates(endpoints: &Endpoints) -> Result<Vec<String>, InfraError> {
    let failed = |source| InfraError::Bootstrap {
        step: "installing the index templates",
        source,
    };
    let mut config = EsConfig::new(&endpoints.elasticsearch).map_err(failed)?;
    config.auth = elastic(endpoints);
    let client = EsClient::new(config).map_err(failed)?;
    elasticsearch::setup(&client).await.map_err(failed)
}

async fn import_dashboard(endpoints: &Endpoints) -> Result<u64, InfraError> {
    let failed = |source| InfraError::Bootstrap {
        step: "importing the Kibana dashboard",
        source,
    };
    let mut config = KibanaConfig::new(&endpoints.kibana).map_err(failed)?;
    config.auth = elastic(endpoints);
    let report = kibana::import(&config, &SavedObjects::bundled())
        .await
        .map_err(failed)?;
    if report.success {
        Ok(report.success_count)
    } else {
        let refused: Vec<String> = report
            .errors
            .iter()
            .map(|e| format!("{} {}", e.object_type, e.id))
            .collect();
        Err(InfraError::DashboardRefused {
            url: endpoints.kibana.clone(),
            objects: refused.join(", "),
        })
    }
}

//! `bf infra start | stop | status | logs`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use bf_infra::{COMPOSE_FILE, Compose, HealthState, STACK_ENV_FILE, StartEvent, StartOptions};
use serde_json::json;

use super::Outcome;
use crate::args::{InfraCommand, InfraDirArgs};
use crate::present::Printer;

pub async fn run(command: InfraCommand, printer: &Printer) -> anyhow::Result<Outcome> {
    match command {
        InfraCommand::Start(args) => {
            let options = StartOptions {
                dir: args.dir.dir.clone(),
                services: args.services.clone(),
                timeout: Duration::from_secs_f64(args.timeout),
                client_env: ".env".into(),
                executors: args.executors,
            };
            let report = bf_infra::start(&options, |event| show(printer, &event)).await?;
            if printer.json() {
                printer.json_value(&json!({
                    "services": report.urls.iter().map(|u| json!({
                        "service": u.service, "role": u.role, "url": u.url,
                    })).collect::<Vec<_>>(),
                    "client_env": report.client_env,
                    "client_settings": report.client_settings,
                    "generated": report.generated,
                }))?;
            } else {
                let rows = report
                    .urls
                    .iter()
                    .map(|u| vec![u.service.to_string(), u.role.to_string(), u.url.clone()])
                    .collect();
                printer.table(&["service", "what", "url"], &[], rows)?;
                printer.summary(&format!(
                    "stack ready; {} settings written to {} (bf reads it from this folder)",
                    report.client_settings.len(),
                    report.client_env.display()
                ));
            }
            Ok(Outcome::Success)
        }
        InfraCommand::Stop(args) => {
            let compose = compose(&args.dir).await?;
            if args.volumes && !args.yes && !confirm_volume_deletion()? {
                anyhow::bail!(
                    "not stopping: --volumes deletes every service's data (the lake in MinIO, topics, indices); add --yes to confirm"
                );
            }
            compose.down(args.volumes).await?;
            printer.summary(if args.volumes {
                "stack stopped; its volumes are deleted"
            } else {
                "stack stopped; its data stays in the named volumes"
            });
            Ok(Outcome::Success)
        }
        InfraCommand::Status(args) => {
            let containers = compose(&args).await?.ps().await?;
            let unwell = containers
                .iter()
                .filter(|c| c.state != "running" || c.health == "unhealthy")
                .count();
            if printer.json() {
                printer.json_value(&json!(
                    containers
                        .iter()
                        .map(|c| json!({
                            "service": c.service, "container": c.name, "state": c.state,
                            "health": c.health, "status": c.status,
                        }))
                        .collect::<Vec<_>>()
                ))?;
            } else {
                let rows = containers
                    .iter()
                    .map(|c| {
                        let health = if c.health.is_empty() {
                            "—"
                        } else {
                            &c.health
                        };
                        vec![
                            c.service.clone(),
                            c.state.clone(),
                            health.to_string(),
                            c.status.clone(),
                        ]
                    })
                    .collect();
                printer.table(&["service", "state", "health", "status"], &[], rows)?;
                printer.summary(&if containers.is_empty() {
                    "no container of the stack exists: `bf infra start`".to_string()
                } else {
                    format!(
                        "{} containers, {unwell} not running or unhealthy",
                        containers.len()
                    )
                });
            }
            Ok(if unwell == 0 && !containers.is_empty() {
                Outcome::Success
            } else {
                Outcome::SomeFailed
            })
        }
        InfraCommand::Logs(args) => {
            let compose = compose(&args.dir).await?;
            let tail = args.tail.to_string();
            let mut arguments = vec!["logs", "--tail", &tail];
            if args.follow {
                arguments.push("--follow");
            }
            if let Some(service) = &args.service {
                arguments.push(service);
            }
            let status = compose
                .command(&arguments)
                .status()
                .context("running docker compose logs")?;
            Ok(if status.success() {
                Outcome::Success
            } else {
                Outcome::SomeFailed
            })
        }
    }
}

async fn compose(args: &InfraDirArgs) -> anyhow::Result<Compose> {
    let file = args.dir.join(COMPOSE_FILE);
    if !file.exists() {
        anyhow::bail!(
            "{} does not exist: `bf infra start` writes it (or run from the folder that has infra/)",
            file.display()
        );
    }
    Ok(Compose::detect(&file, &args.dir.join(STACK_ENV_FILE)).await?)
}

/// Asks on the terminal; without one, nothing is deleted.
fn confirm_volume_deletion() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("Delete every service's data (the lake in MinIO, topics, indices)? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn show(printer: &Printer, event: &StartEvent<'_>) {
    let text = match event {
        StartEvent::Generated { names, file } => format!(
            "generated {} into {} (readable by you only)",
            names.join(", "),
            shown(file)
        ),
        StartEvent::Starting { services } => {
            format!("docker compose up: {}", services.join(", "))
        }
        StartEvent::Health {
            service,
            state,
            after,
        } => match state {
            HealthState::Healthy => {
                format!("  {service}: healthy after {:.0} s", after.as_secs_f64())
            }
            HealthState::Waiting(reason) => format!("  {service}: waiting ({reason})"),
        },
        StartEvent::Bootstrapped { step, detail } => format!("  {step}: {detail}"),
    };
    printer.summary(&text);
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

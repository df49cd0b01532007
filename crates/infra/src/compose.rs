//! docker compose, as a program: found (the v2 plugin, or the standalone
//! `docker-compose`), checked against the daemon, and run on bf's compose
//! file with the stack's env file, as project `bf`.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;
use tokio::process::Command;

use crate::InfraError;

#[derive(Debug, Clone)]
pub struct Compose {
    /// `docker` (then `compose` is the first argument) or `docker-compose`.
    program: String,
    plugin: bool,
    file: PathBuf,
    env_file: PathBuf,
}

/// One container as `compose ps` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    /// running, exited, restarting, ...
    #[serde(rename = "State", default)]
    pub state: String,
    /// healthy, unhealthy, starting, or empty without a health check.
    #[serde(rename = "Health", default)]
    pub health: String,
    #[serde(rename = "Status", default)]
    pub status: String,
}

impl Compose {
    /// Finds docker and compose and checks that the daemon answers.
    pub async fn detect(file: &Path, env_file: &Path) -> Result<Self, InfraError> {
        let docker = run_quiet("docker", &["--version"]).await;
        let plugin = matches!(&docker, Some(o) if o.status.success())
            && run_quiet("docker", &["compose", "version"])
                .await
                .is_some_and(|o| o.status.success());
        let standalone = !plugin
            && run_quiet("docker-compose", &["version"])
                .await
                .is_some_and(|o| o.status.success());
        if docker.is_none() && !standalone {
            return Err(InfraError::DockerMissing);
        }
        if !plugin && !standalone {
            return Err(InfraError::ComposeMissing);
        }
        let info = run_quiet("docker", &["info", "--format", "{{.ServerVersion}}"]).await;
        match info {
            Some(output) if output.status.success() => {}
            Some(output) => {
                return Err(InfraError::DaemonDown {
                    reason: first_line(&output),
                });
            }
            None => return Err(InfraError::DockerMissing),
        }
        Ok(Self {
            program: if plugin { "docker" } else { "docker-compose" }.to_string(),
            plugin,
            file: file.to_path_buf(),
            env_file: env_file.to_path_buf(),
        })
    }

    /// The command line before a compose subcommand.
    pub fn base_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.plugin {
            args.push("compose".to_string());
        }
        args.extend([
            "--project-name".to_string(),
            "bf".to_string(),
            "--file".to_string(),
            self.file.display().to_string(),
            "--env-file".to_string(),
            self.env_file.display().to_string(),
        ]);
        args
    }

    /// A compose command with inherited input and output (`logs --follow`).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(self.base_args()).args(args);
        command
    }

    async fn run(&self, args: &[&str]) -> Result<Output, InfraError> {
        let output = Command::new(&self.program)
            .args(self.base_args())
            .args(args)
            .output()
            .await
            .map_err(|source| InfraError::Run {
                program: self.program.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(InfraError::Compose {
                command: format!("{} {}", self.program, args.join(" ")),
                output: tail(&String::from_utf8_lossy(&output.stderr), 20),
            })
        }
    }

    /// `up -d` of `services` (all of them when empty), waiting for nothing:
    /// bf waits on the health endpoints itself.
    /// `up --detach`, of `services` (all when empty), with `scale`
    /// (`SERVICE=N`) when given.
    pub async fn up(&self, services: &[&str], scale: Option<&str>) -> Result<(), InfraError> {
        let mut args = vec!["up", "--detach"];
        if let Some(scale) = scale {
            args.extend(["--scale", scale]);
        }
        args.extend(services);
        self.run(&args).await.map(drop)
    }

    pub async fn down(&self, volumes: bool) -> Result<(), InfraError> {
        let mut args = vec!["down"];
        if volumes {
            args.push("--volumes");
        }
        self.run(&args).await.map(drop)
    }

    /// Every container of the project, stopped ones included.
    pub async fn ps(&self) -> Result<Vec<ContainerState>, InfraError> {
        let output = self.run(&["ps", "--all", "--format", "json"]).await?;
        parse_ps(&String::from_utf8_lossy(&output.stdout)).map_err(|reason| InfraError::Compose {
            command: format!("{} ps --format json", self.program),
            output: reason,
        })
    }

    /// The last `lines` lines of a service's log (or why there are none).
    pub async fn log_tail(&self, service: &str, lines: usize) -> String {
        let count = lines.to_string();
        match self
            .run(&["logs", "--no-color", "--tail", &count, service])
            .await
        {
            Ok(output) => {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                tail(&text, lines)
            }
            Err(error) => format!("(no log: {error})"),
        }
    }
}

/// Compose v2 prints one JSON object per line; releases before 2.21 print
/// one array.
fn parse_ps(text: &str) -> Result<Vec<ContainerState>, String> {
    let text = text.trim();
    if text.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|e| format!("{e}: {line}")))
        .collect()
}

async fn run_quiet(program: &str, args: &[&str]) -> Option<Output> {
    Command::new(program).args(args).output().await.ok()
}

fn first_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no answer")
        .to_string()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_of_both_compose_generations_parses() {
        let lines = r#"{"Service":"minio","Name":"bf-minio-1","State":"running","Health":"healthy","Status":"Up 2 minutes (healthy)"}
{"Service":"kibana","Name":"bf-kibana-1","State":"running","Health":"starting","Status":"Up 5 seconds (health: starting)"}"#;
        let parsed = parse_ps(lines).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].health, "starting");
        let array = r#"[{"Service":"kafka","State":"exited","Health":""}]"#;
        assert_eq!(parse_ps(array).unwrap()[0].state, "exited");
        assert!(parse_ps("").unwrap().is_empty());
        assert!(parse_ps("not json").is_err());
    }
}

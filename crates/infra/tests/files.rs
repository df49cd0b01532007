//! `infra/docker-compose.yml` and `infra/Dockerfile` checked as files: the
//! compose file by Compose v2 itself (`BF_TEST_COMPOSE`, installed by
//! `scripts/test`) and then for what bf promises of it; the Dockerfile's
//! structure (the image cannot be built here: no Docker engine).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn infra(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra")
        .join(file)
}

fn compose() -> Command {
    let binary = std::env::var("BF_TEST_COMPOSE").unwrap_or_else(|_| {
        panic!("BF_TEST_COMPOSE is not set: run scripts/test, which installs Compose v2")
    });
    let mut command = Command::new(binary);
    command.arg("--file").arg(infra("docker-compose.yml"));
    command
}

/// The stack's secrets as `bf infra start` writes them.
fn env_file(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "MINIO_ROOT_USER=bf-admin\nMINIO_ROOT_PASSWORD=m\nELASTIC_PASSWORD=e\nKIBANA_PASSWORD=k\nKIBANA_ENCRYPTION_KEY=x\n",
    )
    .unwrap();
    path
}

/// The file as Compose resolves it, the streaming profile included.
fn resolved() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let output = compose()
        .arg("--env-file")
        .arg(env_file(&dir))
        .args(["--profile", "streaming", "config", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn compose_accepts_the_file_only_with_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let valid = compose()
        .arg("--env-file")
        .arg(env_file(&dir))
        .args(["config", "-q"])
        .status()
        .unwrap();
    assert!(valid.success());
    let empty = dir.path().join("empty.env");
    std::fs::write(&empty, "").unwrap();
    let without = compose()
        .arg("--env-file")
        .arg(&empty)
        .args(["config", "-q"])
        .env_remove("MINIO_ROOT_PASSWORD")
        .env_remove("ELASTIC_PASSWORD")
        .output()
        .unwrap();
    assert!(!without.status.success(), "no default passwords");
    let said = String::from_utf8_lossy(&without.stderr);
    assert!(said.contains("run bf infra start"), "{said}");
}

#[test]
fn every_service_is_pinned_health_checked_local_and_keeps_its_data_in_a_named_volume() {
    let config = resolved();
    let services = config["services"].as_object().unwrap();
    for name in [
        "minio",
        "kafka",
        "elasticsearch",
        "kibana",
        "scheduler",
        "executor",
        "stream-publish",
        "stream-consume",
    ] {
        assert!(services.contains_key(name), "{name}");
    }
    let volumes = config["volumes"].as_object().unwrap();
    for (name, service) in services {
        let image = service["image"].as_str().unwrap();
        let tag = image
            .rsplit('/')
            .next()
            .unwrap()
            .split_once(':')
            .map(|(_, t)| t);
        assert!(
            tag.is_some_and(|t| t != "latest"),
            "{name}: image {image} has no pinned tag"
        );
        assert!(
            service["healthcheck"]["test"].is_array(),
            "{name} has no health check"
        );
        for port in service["ports"].as_array().into_iter().flatten() {
            assert_eq!(port["host_ip"], "127.0.0.1", "{name}: {port}");
        }
        for mount in service["volumes"].as_array().into_iter().flatten() {
            assert_eq!(mount["type"], "volume", "{name}: {mount}");
            let source = mount["source"].as_str().unwrap();
            assert!(volumes.contains_key(source), "{name}: {source}");
        }
    }
    for name in ["minio", "kafka", "elasticsearch", "kibana"] {
        assert!(
            services[name]["volumes"]
                .as_array()
                .is_some_and(|v| !v.is_empty()),
            "{name} keeps its data in a volume"
        );
    }
    let kafka = &services["kafka"]["environment"];
    assert_eq!(kafka["KAFKA_PROCESS_ROLES"], "broker,controller", "KRaft");
    assert!(kafka.get("KAFKA_ZOOKEEPER_CONNECT").is_none());
    let kibana = services["kibana"]["image"].as_str().unwrap();
    assert!(kibana.ends_with(&format!(":{}", bf_sinks::kibana::KIBANA_VERSION)));
    assert_eq!(
        services["elasticsearch"]["image"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next(),
        kibana.rsplit(':').next(),
        "Elasticsearch and Kibana of one version"
    );
}

#[test]
fn no_secret_is_written_in_the_compose_file() {
    let text = std::fs::read_to_string(infra("docker-compose.yml")).unwrap();
    let mut secrets = 0;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let key = key.trim();
        let variable = !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if variable
            && ["PASSWORD", "SECRET", "ENCRYPTIONKEY"]
                .iter()
                .any(|word| key.contains(word))
        {
            secrets += 1;
            assert!(value.trim().starts_with("${"), "a literal secret: {line}");
        }
    }
    assert!(secrets >= 6, "{secrets}");
}

#[test]
fn the_dockerfile_is_multi_stage_runs_unprivileged_and_has_a_health_check() {
    let text = std::fs::read_to_string(infra("Dockerfile")).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    for stage in &stages {
        let image = stage.split_whitespace().nth(1).unwrap();
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "pinned base image: {stage}"
        );
    }
    assert!(
        instructions
            .iter()
            .any(|l| l.starts_with("COPY --from=build")),
        "the runtime stage takes only the binary"
    );
    let user = instructions
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let user_at = instructions
        .iter()
        .rposition(|l| l.starts_with("USER "))
        .unwrap();
    assert!(user_at > last_from, "USER is set in the runtime stage");
    assert!(instructions.iter().any(|l| l.starts_with("HEALTHCHECK ")));
    assert!(
        instructions
            .iter()
            .any(|l| l.starts_with("ENTRYPOINT [\"bf\"]"))
    );
}

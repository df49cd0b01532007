//! `bf infra` with a fake `docker` on PATH (no Docker engine here) that
//! records its calls, answers as docker and compose do, and has `compose up`
//! validate the files it is given with the real Compose v2 binary
//! (`BF_TEST_COMPOSE`); the health waits and the bootstrap run against the
//! real local servers of the test command and a Kibana stub.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bf_testkit::kibana_stub::{KibanaStub, KibanaStubOptions};

use super::Workspace;
use super::elasticsearch::{assert_succeeded, document_count};

const FAKE_DOCKER: &str = r#"#!/bin/sh
# A stand-in for docker: records each call, answers as docker and compose do.
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  --version) echo "Docker version 27.3.1, build ce12230"; exit 0 ;;
  info)
    if [ "$FAKE_DOCKER_DAEMON" = down ]; then
      echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
      exit 1
    fi
    echo 27.3.1; exit 0 ;;
  compose)
    if [ "$FAKE_DOCKER_COMPOSE" = missing ]; then
      echo "docker: 'compose' is not a docker command." >&2; exit 1
    fi
    shift
    if [ "$1" = version ]; then echo "Docker Compose version v2.40.3"; exit 0; fi
    globals=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --project-name|--file|--env-file) globals="$globals $1 $2"; shift 2 ;;
        *) break ;;
      esac
    done
    case "$1" in
      # What compose would refuse (a missing secret, a bad file), it refuses here too.
      up) exec "$BF_TEST_COMPOSE" $globals config -q ;;
      down) exit 0 ;;
      ps) cat "$FAKE_DOCKER_PS" 2>/dev/null; exit 0 ;;
      logs) echo "kibana-1  | [INFO ][status] Kibana is starting"; echo "kibana-1  | the last line"; exit 0 ;;
    esac ;;
esac
echo "fake docker: unexpected call: $*" >&2
exit 1
"#;

/// A workspace with the fake docker first on PATH.
struct Stack {
    ws: Workspace,
    bin: PathBuf,
}

impl Stack {
    fn new() -> Self {
        let ws = Workspace::new();
        let bin = ws.path().join("fake-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let docker = bin.join("docker");
        std::fs::write(&docker, FAKE_DOCKER).unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { ws, bin }
    }

    fn path(&self) -> &Path {
        self.ws.path()
    }

    /// `bf` with nothing but PATH and the fake docker's settings: every other
    /// setting comes from `.env`, as after `bf infra start` on a user's machine.
    fn bf(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bf"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("FAKE_DOCKER_LOG", self.path().join("docker.log"))
            .env("FAKE_DOCKER_PS", self.path().join("ps.json"))
            .env("BF_TEST_COMPOSE", compose_binary());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.bf(args).output().unwrap()
    }

    fn docker_calls(&self) -> String {
        std::fs::read_to_string(self.path().join("docker.log")).unwrap_or_default()
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap()
    }

    fn mode(&self, name: &str) -> u32 {
        std::fs::metadata(self.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }
}

fn compose_binary() -> String {
    std::env::var("BF_TEST_COMPOSE").unwrap_or_else(|_| {
        panic!("BF_TEST_COMPOSE is not set: run scripts/test, which installs Compose v2")
    })
}

fn port_of(url: &str) -> String {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The whole start against real servers: compose up with a valid file and
/// generated secrets, every health endpoint, the bootstrap (bucket, topics,
/// templates, dashboard), the client settings in `.env` beside the user's
/// own lines; then `bf run` with no other setting fills the S3 lake and the
/// index. A second start is harmless.
#[test]
fn start_bootstraps_the_stack_and_bf_runs_on_it_with_no_other_setting() {
    let stack = Stack::new();
    let (_, es_url) = bf_testkit::elasticsearch_servers().remove(1);
    let s3_port = port_of(&std::env::var("AWS_ENDPOINT_URL").unwrap());
    let kafka_port = port_of(&bf_testkit::kafka_brokers());
    let elastic_password = "elastic-secret-of-the-test";
    let kibana = KibanaStub::spawn(KibanaStubOptions {
        basic_auth: Some(("elastic".into(), elastic_password.into())),
        ..KibanaStubOptions::default()
    })
    .unwrap();
    let cluster = crate::cluster::TestCluster::start(1);
    let bucket = format!("infra-{}", std::process::id());
    std::fs::create_dir_all(stack.path().join("infra")).unwrap();
    std::fs::write(
        stack.path().join("infra/.env"),
        format!(
            "# ports of the test servers\nBF_MINIO_PORT={s3_port}\nBF_KAFKA_PORT={kafka_port}\n\
             BF_ES_PORT={}\nBF_KIBANA_PORT={}\nBF_SCHEDULER_PORT={}\nBF_BUCKET={bucket}\n\
             MINIO_ROOT_USER=bf-test\nMINIO_ROOT_PASSWORD=bf-test\nELASTIC_PASSWORD={elastic_password}\n",
            port_of(&es_url),
            port_of(&kibana.url()),
            cluster.port,
        ),
    )
    .unwrap();
    std::fs::write(stack.path().join(".env"), "# mine\nMY_SETTING=kept\n").unwrap();

    let output = stack.run(&["infra", "start", "--json"]);
    assert_succeeded(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let services: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            "minio",
            "minio",
            "kafka",
            "elasticsearch",
            "kibana",
            "scheduler",
            "scheduler"
        ]
    );
    let calls = stack.docker_calls();
    assert!(calls.contains("info --format"), "{calls}");
    assert!(
        calls.contains(
            "compose --project-name bf --file infra/docker-compose.yml --env-file infra/.env up --detach"
        ),
        "{calls}"
    );
    assert_eq!(
        stack.file("infra/docker-compose.yml"),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/docker-compose.yml"
        ))
        .unwrap(),
        "the bundled compose file is written where none is"
    );

    let secrets = stack.file("infra/.env");
    assert_eq!(stack.mode("infra/.env"), 0o600);
    assert!(
        secrets.starts_with("# ports of the test servers\n"),
        "{secrets}"
    );
    assert!(secrets.contains(&format!("ELASTIC_PASSWORD={elastic_password}\n")));
    let kibana_password = secrets
        .lines()
        .find_map(|l| l.strip_prefix("KIBANA_PASSWORD="))
        .unwrap()
        .to_string();
    assert_eq!(kibana_password.len(), 32);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    assert!(
        !said.contains(&kibana_password),
        "secrets are never printed"
    );
    assert!(said.contains("KIBANA_PASSWORD"), "{said}");

    let client = stack.file(".env");
    assert_eq!(stack.mode(".env"), 0o600);
    assert!(client.starts_with("# mine\nMY_SETTING=kept\n"), "{client}");
    for line in [
        format!("BF_LAKE=s3://{bucket}/lake"),
        format!("AWS_ENDPOINT_URL=http://127.0.0.1:{s3_port}"),
        "AWS_ACCESS_KEY_ID=bf-test".to_string(),
        format!("BF_KAFKA_BROKERS=127.0.0.1:{kafka_port}"),
        format!("BF_ES_URL=http://127.0.0.1:{}", port_of(&es_url)),
        format!("BF_ES_PASSWORD={elastic_password}"),
        format!("BF_KIBANA_URL={}", kibana.url()),
        format!("BF_CLUSTER={}", cluster.address),
    ] {
        assert!(client.lines().any(|l| l == line), "{line} in\n{client}");
    }
    assert!(
        !kibana.objects().is_empty(),
        "the dashboard was imported into Kibana"
    );

    let run = stack.run(&[
        "run",
        "--source",
        "synthetic",
        "--symbols",
        "AAA,BBB",
        "--start",
        "2024-01-01",
        "--end",
        "2024-06-30",
        "--json",
    ]);
    assert_succeeded(&run);
    let lake_signals = stack.run(&[
        "sql",
        "SELECT count(*) AS n FROM signals",
        "--format",
        "csv",
    ]);
    assert_succeeded(&lake_signals);
    let signals: u64 = String::from_utf8_lossy(&lake_signals.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(signals > 0);
    assert_eq!(document_count(&es_url, "bf-signals"), signals);
    let jobs = cluster.status()["jobs"].as_array().unwrap().len();
    assert!(
        jobs >= 2,
        "features and signals ran on the cluster: {jobs} jobs"
    );
    let status = stack.run(&["stream", "status", "--json"]);
    assert_succeeded(&status);
    let topics: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        topics
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["partitions"].as_array().unwrap().len() == 6),
        "the topics exist with 6 partitions: {topics}"
    );

    let again = stack.run(&["infra", "start"]);
    assert_succeeded(&again);
    let said = stderr(&again);
    assert!(
        said.contains(&format!("bucket: {bucket} already there")),
        "{said}"
    );
    assert!(!said.contains("generated"), "{said}");
    assert_eq!(stack.file("infra/.env"), secrets, "the secrets stay");
}

#[test]
fn a_service_that_never_becomes_healthy_is_named_with_the_end_of_its_log() {
    let stack = Stack::new();
    std::fs::create_dir_all(stack.path().join("infra")).unwrap();
    std::fs::write(
        stack.path().join("infra/.env"),
        format!("BF_KIBANA_PORT={}\n", closed_port()),
    )
    .unwrap();
    let output = stack.run(&["infra", "start", "--services", "kibana", "--timeout", "3s"]);
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains("kibana did not become healthy within 3 s: not answering yet"),
        "{said}"
    );
    assert!(said.contains("the last line"), "{said}");
    assert!(
        stack
            .docker_calls()
            .contains("logs --no-color --tail 20 kibana")
    );
}

#[test]
fn missing_docker_compose_or_daemon_is_one_line_and_writes_nothing() {
    let stack = Stack::new();
    let mut no_docker = stack.bf(&["infra", "start"]);
    no_docker.env("PATH", "/usr/bin:/bin");
    let said = stderr(&no_docker.output().unwrap());
    assert!(said.contains("docker is not installed"), "{said}");

    let mut daemon_down = stack.bf(&["infra", "start"]);
    daemon_down.env("FAKE_DOCKER_DAEMON", "down");
    let output = daemon_down.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("the Docker daemon does not answer: Cannot connect to the Docker daemon"),
        "{}",
        stderr(&output)
    );

    let mut no_compose = stack.bf(&["infra", "start"]);
    no_compose.env("FAKE_DOCKER_COMPOSE", "missing");
    let said = stderr(&no_compose.output().unwrap());
    assert!(said.contains("docker compose is missing"), "{said}");
    assert!(!stack.path().join("infra").exists(), "nothing written");
}

#[test]
fn stop_status_and_logs_run_compose_and_volumes_go_only_when_confirmed() {
    let stack = Stack::new();
    std::fs::create_dir_all(stack.path().join("infra")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/docker-compose.yml"
        ),
        stack.path().join("infra/docker-compose.yml"),
    )
    .unwrap();
    std::fs::write(
        stack.path().join("ps.json"),
        r#"{"Service":"minio","Name":"bf-minio-1","State":"running","Health":"healthy","Status":"Up 3 minutes (healthy)"}
{"Service":"kibana","Name":"bf-kibana-1","State":"running","Health":"unhealthy","Status":"Up 3 minutes (unhealthy)"}
"#,
    )
    .unwrap();
    let status = stack.run(&["infra", "status"]);
    assert_eq!(status.status.code(), Some(1), "one service is unhealthy");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("kibana") && table.contains("unhealthy"),
        "{table}"
    );
    assert!(stderr(&status).contains("2 containers, 1 not running or unhealthy"));

    assert_succeeded(&stack.run(&["infra", "logs", "kafka", "--tail", "5", "--follow"]));
    assert!(
        stack
            .docker_calls()
            .contains("logs --tail 5 --follow kafka")
    );

    let refused = stack.run(&["infra", "stop", "--volumes"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("add --yes"),
        "{}",
        stderr(&refused)
    );
    assert!(!stack.docker_calls().contains(" down"));
    assert_succeeded(&stack.run(&["infra", "stop"]));
    assert!(
        stack
            .docker_calls()
            .contains("--env-file infra/.env down\n")
    );
    assert_succeeded(&stack.run(&["infra", "stop", "--volumes", "--yes"]));
    assert!(stack.docker_calls().contains("down --volumes"));
}

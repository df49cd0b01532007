//! A Kafka broker of a test's own, which the test may kill and restart:
//! noida-db's native server (installed by `scripts/test`, path in
//! `BF_TEST_NOIDA_DB`), Kafka only, its log kept in a data folder that
//! survives restarts.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct KafkaBroker {
    child: Option<Child>,
    port: u16,
    data: tempfile::TempDir,
}

impl KafkaBroker {
    /// Starts on a free loopback port with an empty data folder.
    pub fn start() -> std::io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut broker = Self {
            child: None,
            port,
            data: tempfile::tempdir()?,
        };
        broker.restart()?;
        Ok(broker)
    }

    /// `host:port`, for `BF_KAFKA_BROKERS`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, as a crash or a pulled plug.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and data, and waits until it accepts.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let binary = std::env::var("BF_TEST_NOIDA_DB").unwrap_or_else(|_| {
            panic!("BF_TEST_NOIDA_DB is not set: run scripts/test, which installs noida-db")
        });
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(binary)
            .args([
                "start",
                "--only",
                "kafka",
                "--host",
                "127.0.0.1",
                "--kafka-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(self.data.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "the Kafka broker on port {} did not start; see {}",
                    self.port,
                    self.log_path().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.data.path().join("broker.log")
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

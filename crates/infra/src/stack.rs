//! The stack's own settings in `infra/.env`: the secrets (generated on first
//! start, kept afterwards, the file readable by its owner only) and the
//! published ports. Compose reads the same file.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::services::{MINIO_CONSOLE, Service};
use crate::{EnvFile, InfraError};

pub const COMPOSE_FILE: &str = "docker-compose.yml";
pub const STACK_ENV_FILE: &str = ".env";

/// The compose file bf ships, written where none is (an installed `bf`
/// outside its repository).
pub const BUNDLED_COMPOSE: &str = include_str!("../../../infra/docker-compose.yml");

const BUCKET: &str = "BF_BUCKET";
const MINIO_USER: &str = "MINIO_ROOT_USER";
/// Secrets generated when missing, each 32 random letters and digits.
const SECRETS: [&str; 4] = [
    "MINIO_ROOT_PASSWORD",
    "ELASTIC_PASSWORD",
    "KIBANA_PASSWORD",
    "KIBANA_ENCRYPTION_KEY",
];

#[derive(Debug, Clone)]
pub struct StackSettings {
    file: EnvFile,
}

impl StackSettings {
    /// Loads `dir/.env`, adding what is missing (the user name, the bucket,
    /// the secrets); returns the settings and the names it generated.
    pub fn ensure(dir: &Path) -> Result<(Self, Vec<&'static str>), InfraError> {
        let mut file = EnvFile::load(&dir.join(STACK_ENV_FILE))?;
        let mut generated = Vec::new();
        if file.get(MINIO_USER).is_none() {
            file.set(MINIO_USER, "bf-admin");
            generated.push(MINIO_USER);
        }
        if file.get(BUCKET).is_none() {
            file.set(BUCKET, "bf");
            generated.push(BUCKET);
        }
        for key in SECRETS {
            if file.get(key).is_none() {
                file.set(key, &secret());
                generated.push(key);
            }
        }
        // Saved every time: the mode is made 0600 even on a file the user wrote.
        file.save(true)?;
        Ok((Self { file }, generated))
    }

    pub fn path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    fn value(&self, key: &str) -> String {
        self.file.get(key).unwrap_or_default()
    }

    pub fn bucket(&self) -> String {
        self.value(BUCKET)
    }

    pub fn minio_user(&self) -> String {
        self.value(MINIO_USER)
    }

    pub fn minio_password(&self) -> String {
        self.value("MINIO_ROOT_PASSWORD")
    }

    pub fn elastic_password(&self) -> String {
        self.value("ELASTIC_PASSWORD")
    }

    /// The published port of `service` (its setting, or the default).
    pub fn port(&self, service: &Service) -> Result<u16, InfraError> {
        self.port_of(service.port_setting, service.default_port)
    }

    pub fn console_port(&self) -> Result<u16, InfraError> {
        self.port_of(MINIO_CONSOLE.0, MINIO_CONSOLE.1)
    }

    fn port_of(&self, key: &str, default: u16) -> Result<u16, InfraError> {
        match self.file.get(key) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| InfraError::Setting {
                path: self.path(),
                reason: format!("{key}={text} is not a port number"),
            }),
        }
    }
}

fn secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "ELASTIC_PASSWORD=mine\nBF_ES_PORT=19200\n",
        )
        .unwrap();
        let (first, generated) = StackSettings::ensure(dir.path()).unwrap();
        assert_eq!(first.elastic_password(), "mine");
        assert!(!generated.contains(&"ELASTIC_PASSWORD"));
        assert!(generated.contains(&"MINIO_ROOT_PASSWORD"));
        assert_eq!(first.minio_password().len(), 32);
        let (second, again) = StackSettings::ensure(dir.path()).unwrap();
        assert!(again.is_empty());
        assert_eq!(second.minio_password(), first.minio_password());
        let es = crate::services::find("elasticsearch").unwrap();
        assert_eq!(second.port(es).unwrap(), 19200);
        assert_eq!(
            second
                .port(crate::services::find("kibana").unwrap())
                .unwrap(),
            5601
        );
    }
}

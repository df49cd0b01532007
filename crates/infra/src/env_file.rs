//! `KEY=value` files (`.env`, `infra/.env`) edited in place: a setting is
//! replaced on its own line or appended; every other line, comments
//! included, stays as the user wrote it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::InfraError;

#[derive(Debug, Clone)]
pub struct EnvFile {
    path: PathBuf,
    lines: Vec<String>,
}

impl EnvFile {
    /// The file's lines, or none when it does not exist yet.
    pub fn load(path: &Path) -> Result<Self, InfraError> {
        let lines = match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(InfraError::File {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            lines,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `key` (quotes removed), when set and not empty.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lines.iter().find_map(|line| {
            let (k, value) = split(line)?;
            (k == key).then(|| unquote(value)).filter(|v| !v.is_empty())
        })
    }

    /// Sets `key` on its existing line, or appends it.
    pub fn set(&mut self, key: &str, value: &str) {
        let line = format!("{key}={value}");
        match self
            .lines
            .iter_mut()
            .find(|l| split(l).is_some_and(|(k, _)| k == key))
        {
            Some(existing) => *existing = line,
            None => self.lines.push(line),
        }
    }

    /// Writes the file whole (through a temporary file, so a crash leaves
    /// the old or the new one); `private` makes it readable by its owner only.
    pub fn save(&self, private: bool) -> Result<(), InfraError> {
        let error = |source| InfraError::File {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let temporary = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        if private {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(error)?;
        let mut text = self.lines.join("\n");
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(error)?;
        file.sync_all().map_err(error)?;
        if private {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
                .map_err(error)?;
        }
        std::fs::rename(&temporary, &self.path).map_err(error)
    }
}

/// `KEY=value` or `export KEY=value`; comments and blank lines are not settings.
fn split(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (key, value) = line.split_once('=')?;
    Some((key.trim(), value.trim()))
}

fn unquote(value: &str) -> String {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted {
        value[1..value.len() - 1].to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_replaced_in_place_and_other_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# mine\nMY_SETTING=1\nexport BF_LAKE=./old\nQUOTED=\"a b\"\n",
        )
        .unwrap();
        let mut file = EnvFile::load(&path).unwrap();
        assert_eq!(file.get("QUOTED").as_deref(), Some("a b"));
        assert_eq!(file.get("BF_LAKE").as_deref(), Some("./old"));
        file.set("BF_LAKE", "s3://bf/lake");
        file.set("BF_ES_URL", "http://127.0.0.1:9200");
        file.save(true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# mine\nMY_SETTING=1\nBF_LAKE=s3://bf/lake\nQUOTED=\"a b\"\nBF_ES_URL=http://127.0.0.1:9200\n"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            EnvFile::load(&dir.path().join("none"))
                .unwrap()
                .get("X")
                .is_none()
        );
    }
}

//! Damaged Delta log entries, found and named instead of read as something else.
//!
//! delta-rs reads an empty log entry as a commit with no actions: the table
//! silently loses that commit's rows, and the next write builds on top of it.
//! A truncated or garbled entry fails deep in the kernel with a JSON error that
//! names no file. Every load therefore checks the entries after the last
//! checkpoint (the ones a load reads) for emptiness from the listing alone,
//! and when delta-rs fails to read the log, reads them to name the bad one.

use datafusion::object_store::ObjectStoreExt as _;
use deltalake::{ObjectStore, Path};
use futures::TryStreamExt;

/// A log entry that cannot be a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// The entry's path under the table, `_delta_log/….json`.
    pub entry: String,
    pub version: u64,
    pub problem: String,
}

/// The first damaged entry after the last checkpoint: empty ones always, and
/// with `read_contents` also ones whose lines are not JSON objects.
pub(crate) async fn find_damage(
    store: &dyn ObjectStore,
    read_contents: bool,
) -> Result<Option<Damage>, deltalake::ObjectStoreError> {
    let listed: Vec<_> = store
        .list(Some(&Path::from("_delta_log")))
        .try_collect()
        .await?;
    let checkpoint = listed
        .iter()
        .filter_map(|meta| {
            let name = meta.location.filename()?;
            name.contains(".checkpoint")
                .then(|| version_of(name))
                .flatten()
        })
        .max();
    let mut entries: Vec<_> = listed
        .iter()
        .filter_map(|meta| {
            let name = meta.location.filename()?;
            let version = name.strip_suffix(".json").and_then(version_of)?;
            (checkpoint.is_none_or(|c| version > c)).then_some((version, meta))
        })
        .collect();
    entries.sort_by_key(|(version, _)| *version);
    for (version, meta) in entries {
        let damage = |problem: String| Damage {
            entry: meta.location.to_string(),
            version,
            problem,
        };
        if meta.size == 0 {
            return Ok(Some(damage("is empty".into())));
        }
        if read_contents {
            let bytes = store.get(&meta.location).await?.bytes().await?;
            if let Some(problem) = content_problem(&bytes) {
                return Ok(Some(damage(problem)));
            }
        }
    }
    Ok(None)
}

/// `00000000000000000012` (or `….checkpoint.parquet`) → 12.
fn version_of(name: &str) -> Option<u64> {
    let digits = name.split('.').next()?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// Why a commit file's text is not newline-delimited JSON actions.
fn content_problem(bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some("is not UTF-8 text".into());
    };
    let mut actions = 0;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => actions += 1,
            Ok(_) => return Some(format!("line {} is not a JSON object", index + 1)),
            Err(e) => return Some(format!("line {} is not valid JSON ({e})", index + 1)),
        }
    }
    (actions == 0).then(|| "holds no actions".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_problems_name_the_line() {
        assert_eq!(
            content_problem(b"{\"commitInfo\":{}}\n{\"add\":{}}\n"),
            None
        );
        assert_eq!(
            content_problem(b"{\"commitInfo\":{}}\n{\"add\":{\"pa"),
            Some(
                "line 2 is not valid JSON (EOF while parsing a string at line 1 column 11)".into()
            )
        );
        assert_eq!(content_problem(b"\n \n"), Some("holds no actions".into()));
        assert_eq!(
            content_problem(b"[1]"),
            Some("line 1 is not a JSON object".into())
        );
        assert_eq!(
            content_problem(&[0xff, 0xfe]),
            Some("is not UTF-8 text".into())
        );
    }

    #[test]
    fn versions_come_from_twenty_digit_names() {
        assert_eq!(version_of("00000000000000000012.json"), Some(12));
        assert_eq!(
            version_of("00000000000000000100.checkpoint.parquet"),
            Some(100)
        );
        assert_eq!(version_of("_last_checkpoint"), None);
        assert_eq!(version_of("12.json"), None);
    }
}

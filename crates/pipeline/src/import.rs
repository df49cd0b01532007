//! Importing vendor files (CSV, Parquet) into `ohlcv`: every row stored,
//! rejected with its file and line, or counted as an identical duplicate.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bf_core::tables::OHLCV;
use bf_core::{Interval, Progress};
use bf_lake::{Lake, UpsertMetrics};
use bf_sources::import::{Imported, Rejection};
use serde::Serialize;

use crate::{PipelineError, now_micros};

/// What an import did.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub files: usize,
    pub failed_files: Vec<(PathBuf, String)>,
    pub rows_read: usize,
    pub identical_duplicates: usize,
    pub rejections: Vec<Rejection>,
    /// `None` when nothing was written (a strict import with rejections).
    pub ohlcv: Option<UpsertMetrics>,
    pub read_seconds: f64,
    pub write_seconds: f64,
}

impl ImportReport {
    pub fn is_clean(&self) -> bool {
        self.failed_files.is_empty() && self.rejections.is_empty()
    }
}

/// Reads the files and upserts their bars in one commit, a bounded group of
/// symbols at a time (each group compared only with the stored rows of its
/// symbol range). With `strict`, any rejected row or unreadable file means
/// nothing is written.
pub async fn import(
    lake: &Lake,
    paths: Vec<PathBuf>,
    interval: Interval,
    strict: bool,
    progress: Arc<dyn Progress>,
) -> Result<ImportReport, PipelineError> {
    let started = Instant::now();
    let ingested_at = now_micros();
    let mut imported: Imported = tokio::task::spawn_blocking(move || {
        let (total, done) = (paths.len(), AtomicUsize::new(0));
        bf_sources::import::import_files(&paths, interval, ingested_at, &|_| {
            progress.advance(done.fetch_add(1, Ordering::Relaxed) + 1, total, None);
        })
    })
    .await?;
    let mut report = ImportReport {
        files: imported.files.len(),
        failed_files: imported
            .failed_files()
            .map(|f| (f.file.clone(), f.error.clone().unwrap_or_default()))
            .collect(),
        rows_read: imported.rows_read(),
        identical_duplicates: imported.identical_duplicates,
        rejections: std::mem::take(&mut imported.rejections),
        ohlcv: None,
        read_seconds: started.elapsed().as_secs_f64(),
        write_seconds: 0.0,
    };
    if strict && !report.is_clean() {
        return Ok(report);
    }
    let written = Instant::now();
    report.ohlcv = Some(
        lake.upsert_in_groups(&OHLCV, || {
            imported
                .bars(GROUP_ROWS)
                .map(|(bars, last)| (vec![bars], last.to_string()))
        })
        .await
        .map_err(|source| PipelineError::Store {
            what: "bars",
            source,
        })?,
    );
    report.write_seconds = written.elapsed().as_secs_f64();
    Ok(report)
}

/// Rows of `ohlcv` per group the import builds and stores: about 100 MB.
const GROUP_ROWS: usize = 1_000_000;

//! `bf data import`: OHLCV files from any vendor (CSV or Parquet) into `ohlcv` rows.
//!
//! Files are read in parallel; every row that cannot be stored becomes a
//! [`Rejection`] naming its file, line and reason, so nothing is dropped silently.
//! Rows are then grouped by symbol, sorted by date and de-duplicated across files,
//! and handed out as `ohlcv` batches of whole symbols, a bounded group at a time.

mod csv_file;
mod layout;
mod parquet_file;
mod row;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use bf_core::{Interval, Symbol, error_chain};
use rayon::prelude::*;

use crate::SourceError;
use crate::bars::{Bar, batches_of_symbols};

pub const SOURCE_NAME: &str = "import";

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    pub file: PathBuf,
    /// The line in a CSV file (the header is line 1), or the 1-based row of a Parquet file.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// What one file contributed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileSummary {
    pub file: PathBuf,
    pub rows_read: usize,
    pub rejected: usize,
    pub error: Option<String>,
}

/// The result of reading a set of files: each symbol's rows in date order with
/// every key once (see [`Imported::bars`]), plus everything that was left out.
#[derive(Debug)]
pub struct Imported {
    /// In symbol order.
    series: Vec<(Symbol, Vec<Located>)>,
    interval: Interval,
    ingested_at: i64,
    pub files: Vec<FileSummary>,
    pub rejections: Vec<Rejection>,
    /// Rows repeated with identical values (in one file or across files), stored once.
    pub identical_duplicates: usize,
}

impl Imported {
    pub fn rows_read(&self) -> usize {
        self.files.iter().map(|f| f.rows_read).sum()
    }

    pub fn failed_files(&self) -> impl Iterator<Item = &FileSummary> {
        self.files.iter().filter(|f| f.error.is_some())
    }

    /// The rows to store.
    pub fn bars_count(&self) -> usize {
        self.series.iter().map(|(_, rows)| rows.len()).sum()
    }

    /// The rows to store as `ohlcv` batches sorted by (symbol, date), each of
    /// whole symbols and about `group_rows` rows, with its last symbol: built
    /// one at a time, so only the parsed rows stay in memory throughout.
    pub fn bars(&self, group_rows: usize) -> impl Iterator<Item = (RecordBatch, &str)> {
        batches_of_symbols(
            &self.series,
            SOURCE_NAME,
            self.interval,
            self.ingested_at,
            group_rows,
        )
    }
}

/// A parsed bar with where it came from, for duplicate reports.
#[derive(Debug, Clone, Copy)]
struct Located {
    bar: Bar,
    file: usize,
    line: u64,
}

impl AsRef<Bar> for Located {
    fn as_ref(&self) -> &Bar {
        &self.bar
    }
}

/// One file's (or row group's) rows, grouped by symbol.
#[derive(Debug, Default)]
struct FileRows {
    rows_read: usize,
    by_symbol: BTreeMap<Symbol, Vec<Located>>,
    rejections: Vec<Rejection>,
    /// The rows of the symbol read last, not yet in `by_symbol`.
    run: Option<(Symbol, Vec<Located>)>,
}

impl FileRows {
    /// Vendor files list each symbol's rows together, so rows gather in a run
    /// that joins `by_symbol` when the symbol changes: one map lookup and one
    /// vector per run instead of a lookup per row and vectors grown by doubling.
    fn push(&mut self, symbol: &Symbol, row: Located) {
        if let Some((current, rows)) = &mut self.run
            && current == symbol
        {
            rows.push(row);
            return;
        }
        let last_run = self.end_run();
        let mut rows = Vec::with_capacity(last_run.max(1));
        rows.push(row);
        self.run = Some((symbol.clone(), rows));
    }

    /// Moves the current run into `by_symbol`; its length.
    fn end_run(&mut self) -> usize {
        let Some((symbol, mut rows)) = self.run.take() else {
            return 0;
        };
        let length = rows.len();
        match self.by_symbol.entry(symbol) {
            Entry::Vacant(entry) => {
                entry.insert(rows);
            }
            Entry::Occupied(mut entry) => entry.get_mut().append(&mut rows),
        }
        length
    }

    /// Adds the rows of the next part of the same file.
    fn extend(&mut self, mut next: FileRows) {
        self.end_run();
        next.end_run();
        self.rows_read += next.rows_read;
        self.rejections.append(&mut next.rejections);
        for (symbol, mut rows) in next.by_symbol {
            self.by_symbol.entry(symbol).or_default().append(&mut rows);
        }
    }
}

/// What one reader reads: a whole file, or one row group of a Parquet file,
/// so that a single large file is read on every core.
#[derive(Debug, Clone, Copy)]
struct Part {
    file: usize,
    row_group: Option<parquet_file::RowGroup>,
}

/// Reads every file (in parallel), calling `on_file_done` as each finishes.
/// A file that cannot be read at all is reported in its summary; the others go on.
pub fn import_files(
    paths: &[PathBuf],
    interval: Interval,
    ingested_at: i64,
    on_file_done: &(dyn Fn(&Path) + Sync),
) -> Imported {
    let parts: Vec<Part> = paths
        .par_iter()
        .enumerate()
        .map(|(file, path)| {
            match is_parquet(path)
                .then(|| parquet_file::row_groups(path))
                .flatten()
            {
                Some(groups) if groups.len() > 1 => groups
                    .into_iter()
                    .map(|group| Part {
                        file,
                        row_group: Some(group),
                    })
                    .collect(),
                _ => vec![Part {
                    file,
                    row_group: None,
                }],
            }
        })
        .flatten()
        .collect();
    let parts_left: Vec<AtomicUsize> = (0..paths.len()).map(|_| AtomicUsize::new(0)).collect();
    for part in &parts {
        parts_left[part.file].fetch_add(1, Ordering::Relaxed);
    }
    let results: Vec<(usize, Result<FileRows, SourceError>)> = parts
        .par_iter()
        .map(|part| {
            let path = &paths[part.file];
            let rows = read_part(path, *part);
            if parts_left[part.file].fetch_sub(1, Ordering::AcqRel) == 1 {
                on_file_done(path);
            }
            (part.file, rows)
        })
        .collect();

    // Parts come in file order, each file's in row order; a file with a part
    // that failed is a failed file, none of its rows imported.
    let mut per_file: Vec<Option<Result<FileRows, SourceError>>> =
        (0..paths.len()).map(|_| None).collect();
    for (file, result) in results {
        per_file[file] = Some(match (per_file[file].take(), result) {
            (None, result) => result,
            (Some(Ok(mut rows)), Ok(next)) => {
                rows.extend(next);
                Ok(rows)
            }
            (Some(Err(err)), _) | (Some(Ok(_)), Err(err)) => Err(err),
        });
    }

    let mut files = Vec::with_capacity(paths.len());
    let mut rejections = Vec::new();
    let mut by_symbol: BTreeMap<Symbol, Vec<Located>> = BTreeMap::new();
    for (path, result) in paths.iter().zip(per_file) {
        match result.expect("every file has a part") {
            Ok(mut rows) => {
                rows.end_run();
                files.push(FileSummary {
                    file: path.clone(),
                    rows_read: rows.rows_read,
                    rejected: rows.rejections.len(),
                    error: None,
                });
                rejections.extend(rows.rejections);
                for (symbol, mut located) in rows.by_symbol {
                    by_symbol.entry(symbol).or_default().append(&mut located);
                }
            }
            Err(err) => files.push(FileSummary {
                file: path.clone(),
                rows_read: 0,
                rejected: 0,
                error: Some(error_chain(&err)),
            }),
        }
    }

    let mut series: Vec<(Symbol, Vec<Located>)> = by_symbol.into_iter().collect();
    let duplicates: Vec<(Vec<Rejection>, usize)> = series
        .par_iter_mut()
        .map(|(symbol, rows)| keep_first_of_each_date(symbol, rows, interval, paths))
        .collect();
    let mut identical_duplicates = 0;
    for (mut rejected, identical) in duplicates {
        rejections.append(&mut rejected);
        identical_duplicates += identical;
    }
    for summary in &mut files {
        summary.rejected = rejections.iter().filter(|r| r.file == summary.file).count();
    }
    Imported {
        series,
        interval,
        ingested_at,
        files,
        rejections,
        identical_duplicates,
    }
}

/// Sorts one symbol's rows by date and keeps the first row of each date (the
/// first file's, then the first line's); the rows dropped with other values
/// than the kept one, as rejections, and the count of identical ones.
fn keep_first_of_each_date(
    symbol: &Symbol,
    rows: &mut Vec<Located>,
    interval: Interval,
    paths: &[PathBuf],
) -> (Vec<Rejection>, usize) {
    // Stable, so among equal dates files and lines keep their order.
    rows.sort_by_key(|r| r.bar.date);
    let mut rejections = Vec::new();
    let mut identical = 0;
    rows.dedup_by(|row, first| {
        if row.bar.date != first.bar.date {
            return false;
        }
        if row.bar == first.bar {
            identical += 1;
        } else {
            rejections.push(Rejection {
                file: paths[row.file].clone(),
                line: row.line,
                reason: format!(
                    "duplicate key ({symbol}, {interval}, {}) with values different from {}:{}",
                    row::format_date(row.bar.date),
                    paths[first.file].display(),
                    first.line
                ),
            });
        }
        true
    });
    (rejections, identical)
}

fn read_part(path: &Path, part: Part) -> Result<FileRows, SourceError> {
    match extension(path).as_deref() {
        Some("csv" | "txt") => csv_file::read(path, part.file),
        Some("parquet" | "pq") => parquet_file::read(path, part.file, part.row_group),
        _ => Err(SourceError::UnsupportedFile {
            path: path.to_path_buf(),
        }),
    }
}

fn is_parquet(path: &Path) -> bool {
    matches!(extension(path).as_deref(), Some("parquet" | "pq"))
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// The symbol a file without a `symbol` column holds: its name minus the extension
/// (`AAPL.csv` → AAPL, `002032.SZ.csv` → 002032.SZ).
fn symbol_from_file_name(path: &Path) -> Result<Symbol, SourceError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    Symbol::parse(stem).map_err(|e| SourceError::Layout {
        path: path.to_path_buf(),
        message: format!("no symbol column, and the file name does not name a symbol: {e}"),
    })
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

//! The only code that writes to the terminal: results to stdout, progress,
//! summaries, warnings and errors to stderr.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::args::OutputFormat;

/// Tables with only a rule under the header: easy to read and to `grep`.
const UTF8_HEADER_RULE: &str = "     ──            ";
const ASCII_HEADER_RULE: &str = "     --            ";

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
    quiet: bool,
    interactive: bool,
}

impl Printer {
    pub fn new(json: bool, quiet: bool) -> Self {
        Self {
            json,
            quiet,
            interactive: io::stdout().is_terminal() && io::stderr().is_terminal(),
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// A progress bar on stderr, hidden unless both streams are terminals and
    /// neither `--quiet` nor `--json` was asked for.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet || self.json || !self.interactive {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{spinner} {msg:<10} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A result table on stdout. Columns whose header is in `numeric` align right.
    pub fn table(
        &self,
        header: &[&str],
        numeric: &[&str],
        rows: Vec<Vec<String>>,
    ) -> io::Result<()> {
        let mut table = Table::new();
        table
            .load_preset(if self.interactive {
                UTF8_HEADER_RULE
            } else {
                ASCII_HEADER_RULE
            })
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.iter().map(Cell::new));
        for (index, name) in header.iter().enumerate() {
            if numeric.contains(name)
                && let Some(column) = table.column_mut(index)
            {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        for row in rows {
            table.add_row(row);
        }
        writeln!(io::stdout().lock(), "{table}")
    }

    /// A machine-readable result on stdout.
    pub fn json_value(&self, value: &impl Serialize) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value).map_err(|e| {
            e.io_error_kind()
                .map_or_else(|| io::Error::other(e), io::Error::from)
        })?;
        writeln!(out)
    }

    /// One event of a long-running command as one line of JSON on stdout.
    pub fn json_line(&self, value: &impl Serialize) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value).map_err(io::Error::other)?;
        writeln!(out)?;
        out.flush()
    }

    /// A plain result line on stdout.
    pub fn line(&self, text: &str) -> io::Result<()> {
        writeln!(io::stdout().lock(), "{text}")
    }

    /// The closing line of a command, on stderr; `--quiet` drops it.
    pub fn summary(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }

    pub fn warn(&self, text: &str) {
        let _ = writeln!(io::stderr().lock(), "warning: {text}");
    }

    /// A bad value of a flag that came from its environment variable.
    pub fn value_origin(variable: &str) {
        let _ = writeln!(
            io::stderr().lock(),
            "  the value came from {variable} (environment or .env), not the command line"
        );
    }

    /// An error with its causes, one per line, and the hint when there is one.
    pub fn error(error: &anyhow::Error) {
        let mut err = io::stderr().lock();
        let mut shown = error.to_string();
        let _ = writeln!(err, "error: {shown}");
        // Libraries often repeat their cause's text in their own; print each text once.
        for cause in error.chain().skip(1) {
            let text = cause.to_string();
            if !shown.contains(&text) {
                let _ = writeln!(err, "  caused by: {text}");
                shown.push_str(&text);
            }
        }
        if let Some(hint) = crate::hints::hint_for(error) {
            let _ = writeln!(err, "hint: {hint}");
        }
    }

    /// Query results in the chosen format.
    pub fn batches(
        &self,
        format: OutputFormat,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> io::Result<()> {
        match format {
            OutputFormat::Table => {
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let numeric: Vec<&str> = schema
                    .fields()
                    .iter()
                    .filter(|f| f.data_type().is_numeric())
                    .map(|f| f.name().as_str())
                    .collect();
                let rows = batch_rows(batches)?;
                let count = rows.len();
                self.table(&header, &numeric, rows)?;
                self.summary(&format!(
                    "{} row{}",
                    count_text(count),
                    if count == 1 { "" } else { "s" }
                ));
                Ok(())
            }
            OutputFormat::Csv => {
                // Each batch is encoded to memory first so that a closed pipe
                // surfaces as our own I/O error, not as an encoder error.
                let mut out = io::stdout().lock();
                let empty = [RecordBatch::new_empty(schema.clone())];
                let batches = if batches.is_empty() {
                    &empty[..]
                } else {
                    batches
                };
                for (index, batch) in batches.iter().enumerate() {
                    out.write_all(&csv_bytes(batch, index == 0)?)?;
                }
                Ok(())
            }
            OutputFormat::Json => {
                let mut buffer = json_array(batches)?;
                buffer.push(b'\n');
                io::stdout().lock().write_all(&buffer)
            }
        }
    }
}

/// A progress bar over a use case's items (symbols, files, series), fed
/// through [`bf_core::Progress`].
#[derive(Debug, Clone)]
pub struct StepProgress {
    bar: ProgressBar,
    what: &'static str,
}

impl bf_core::Progress for StepProgress {
    fn advance(&self, done: usize, total: usize, rows: Option<usize>) {
        if let Some(rows) = rows {
            self.bar
                .set_message(format!("{} {} rows", self.what, count_text(rows)));
        }
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Printer {
    /// [`Self::progress`] as a use case's progress.
    pub fn step_progress(&self, items: usize, what: &'static str) -> Arc<StepProgress> {
        Arc::new(StepProgress {
            bar: self.progress(items as u64, what),
            what,
        })
    }
}

/// A panic: a bug, said in one line with where it happened.
pub fn internal_error(text: &str) {
    let _ = writeln!(
        io::stderr().lock(),
        "error: internal error (a bug in bf or a library it uses): {text}"
    );
}

/// How many rows `bf sql` shows as a table; CSV and JSON stream every row.
#[derive(Debug, Clone, Copy)]
pub struct TableRowLimit(pub usize);

impl Printer {
    /// A query's rows as they arrive: CSV and JSON are written batch by batch
    /// (memory stays flat however many rows), a table shows at most `limit`
    /// rows and says when there were more.
    pub async fn query_rows(
        &self,
        format: OutputFormat,
        query: bf_lake::QueryStream,
        limit: TableRowLimit,
    ) -> anyhow::Result<()> {
        use futures::StreamExt;
        let bf_lake::QueryStream { schema, mut stream } = query;
        let mut out = io::stdout();
        match format {
            OutputFormat::Table => {
                let mut batches = Vec::new();
                let mut rows = 0;
                let mut more = false;
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    if rows + batch.num_rows() > limit.0 {
                        batches.push(batch.slice(0, limit.0 - rows));
                        more = true;
                        break;
                    }
                    rows += batch.num_rows();
                    batches.push(batch);
                }
                self.batches(OutputFormat::Table, &schema, &batches)?;
                if more {
                    self.warn(&format!(
                        "only the first {} rows are shown; --max-rows shows more, \
                         --format csv|json streams every row",
                        count_text(limit.0)
                    ));
                }
            }
            OutputFormat::Csv => {
                let mut first = true;
                while let Some(batch) = stream.next().await {
                    out.write_all(&csv_bytes(&batch?, first)?)?;
                    first = false;
                }
                if first {
                    out.write_all(&csv_bytes(&RecordBatch::new_empty(schema), true)?)?;
                }
            }
            OutputFormat::Json => {
                out.write_all(b"[")?;
                let mut first = true;
                while let Some(batch) = stream.next().await {
                    let mut lines = Vec::new();
                    datafusion::arrow::json::LineDelimitedWriter::new(&mut lines)
                        .write(&batch?)
                        .map_err(io::Error::other)?;
                    for object in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        if !first {
                            out.write_all(b",")?;
                        }
                        out.write_all(object)?;
                        first = false;
                    }
                }
                out.write_all(b"]\n")?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// One batch as CSV, encoded in memory so that a closed pipe surfaces as our
/// own I/O error, not as an encoder error.
fn csv_bytes(batch: &RecordBatch, header: bool) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    datafusion::arrow::csv::WriterBuilder::new()
        .with_header(header)
        .build(&mut buffer)
        .write(batch)
        .map_err(io::Error::other)?;
    Ok(buffer)
}

/// Rows as a JSON array of objects, one key per column.
fn json_array(batches: &[RecordBatch]) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut buffer);
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)?;
    if buffer.is_empty() {
        buffer.extend_from_slice(b"[]");
    }
    Ok(buffer)
}

/// Rows as JSON values, to embed in a larger JSON result.
pub fn batches_json(batches: &[RecordBatch]) -> io::Result<Vec<serde_json::Value>> {
    serde_json::from_slice(&json_array(batches)?).map_err(io::Error::other)
}

/// Every row of `batches` as display strings.
pub fn batch_rows(batches: &[RecordBatch]) -> io::Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// `1234567` → `1,234,567`.
pub fn count_text(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn seconds_text(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(super::count_text(0), "0");
        assert_eq!(super::count_text(999), "999");
        assert_eq!(super::count_text(1000), "1,000");
        assert_eq!(super::count_text(2_500_000), "2,500,000");
    }
}

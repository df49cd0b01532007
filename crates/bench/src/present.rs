//! The benchmark tables and summaries: stdout for figures, stderr for notes.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

/// Only a rule under the header, as `bf` prints its tables.
const HEADER_RULE: &str = "     --            ";

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    pub fn json_value(&self, value: &impl Serialize) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::other)?;
        writeln!(out)
    }

    /// A table of passes; columns named in `numeric` align right.
    pub fn table(
        &self,
        header: &[&str],
        numeric: &[&str],
        rows: Vec<Vec<String>>,
    ) -> io::Result<()> {
        let mut table = Table::new();
        table
            .load_preset(HEADER_RULE)
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

    pub fn summary(&self, text: &str) {
        let _ = writeln!(io::stderr().lock(), "{text}");
    }
}

/// `1234567` → `1,234,567`.
pub fn count_text(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

//! Reading a CSV file of bars, line by line, so each bad line can be named.

use std::collections::HashMap;
use std::path::Path;

use bf_core::Symbol;

use super::layout::Layout;
use super::row;
use super::{FileRows, Located, Rejection, symbol_from_file_name};
use crate::SourceError;
use crate::bars::{Bar, RawPrices};

pub(super) fn read(path: &Path, file_index: usize) -> Result<FileRows, SourceError> {
    let csv_error = |source| SourceError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(csv_error)?;
    let headers = reader.headers().map_err(csv_error)?.clone();
    let layout = Layout::from_headers(path, headers.iter())?;
    let file_symbol = match layout.symbol {
        Some(_) => None,
        None => Some(symbol_from_file_name(path)?),
    };

    let mut rows = FileRows::default();
    let mut symbols: HashMap<String, Result<Symbol, String>> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(source) => {
                // A malformed record (bad UTF-8, broken quoting) is one rejected line.
                let line = source.position().map_or(0, |p| p.line());
                rows.rows_read += 1;
                rows.rejections.push(Rejection {
                    file: path.to_path_buf(),
                    line,
                    reason: format!("unreadable CSV record: {source}"),
                });
                continue;
            }
        }
        rows.rows_read += 1;
        let line = record.position().map_or(0, |p| p.line());
        // A row of another length is misaligned (an unquoted "1,000", a missing
        // cell): which value belongs to which column cannot be known.
        if record.len() != headers.len() {
            rows.rejections.push(Rejection {
                file: path.to_path_buf(),
                line,
                reason: format!(
                    "{} fields, but the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let symbol = match (&file_symbol, layout.symbol) {
            (Some(symbol), _) => Ok(symbol.clone()),
            (None, Some(column)) => {
                let raw = record.get(column).unwrap_or("");
                match symbols.get(raw) {
                    Some(parsed) => parsed.clone(),
                    None => {
                        let parsed = Symbol::parse(raw).map_err(|e| e.to_string());
                        symbols.insert(raw.to_string(), parsed.clone());
                        parsed
                    }
                }
            }
            (None, None) => unreachable!("a file without a symbol column has a file symbol"),
        };
        match symbol.and_then(|symbol| parse_record(&record, &layout).map(|bar| (symbol, bar))) {
            Ok((symbol, bar)) => rows.push(
                &symbol,
                Located {
                    bar,
                    file: file_index,
                    line,
                },
            ),
            Err(reason) => rows.rejections.push(Rejection {
                file: path.to_path_buf(),
                line,
                reason,
            }),
        }
    }
    Ok(rows)
}

fn parse_record(record: &csv::StringRecord, layout: &Layout) -> Result<Bar, String> {
    let cell = |index: usize| record.get(index).unwrap_or("");
    let number = |name: &str, index: usize| row::parse_number(name, cell(index));
    let (date, ts) = row::parse_date(cell(layout.date))?;
    let prices = RawPrices {
        open: number("open", layout.open)?,
        high: number("high", layout.high)?,
        low: number("low", layout.low)?,
        close: number("close", layout.close)?,
        adj_close: layout
            .adj_close
            .map(|i| number("adj_close", i))
            .transpose()?,
        volume: number("volume", layout.volume)?,
    };
    Bar::checked(date, ts, prices)
}

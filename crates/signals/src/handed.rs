//! Signals of series a features build handed over, kept in temporary files
//! until they are stored: a run over every symbol of a large lake generates
//! millions of them, more than memory should hold while the build goes on.
//! Each handing is one Arrow IPC file with its symbol span, read back range
//! by range as the signals are stored.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom};

use bf_core::tables::col;
use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::compute::kernels::boolean::and;
use datafusion::arrow::compute::kernels::cmp::{gt, lt_eq};
use datafusion::arrow::compute::{cast, filter_record_batch, max_string, min_string};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

use crate::SignalsError;
use crate::error::arrow_error;

/// Every handed signal, on disk.
#[derive(Default)]
pub(crate) struct HandedSignals {
    spilled: Vec<Spilled>,
}

/// One handing's signals: a temporary file, deleted when dropped.
struct Spilled {
    file: File,
    low: String,
    high: String,
    rows: usize,
}

impl HandedSignals {
    /// Writes `batches` (the `signals` schema) to a temporary file.
    pub fn add(&mut self, batches: Vec<RecordBatch>) -> Result<(), SignalsError> {
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let (mut low, mut high) = symbol_span(first)?;
        for batch in &batches[1..] {
            let (batch_low, batch_high) = symbol_span(batch)?;
            low = low.min(batch_low);
            high = high.max(batch_high);
        }
        let file = tempfile::tempfile().map_err(SignalsError::Spill)?;
        let mut writer =
            StreamWriter::try_new(BufWriter::new(file), &first.schema()).map_err(arrow_error)?;
        for batch in &batches {
            writer.write(batch).map_err(arrow_error)?;
        }
        writer.finish().map_err(arrow_error)?;
        let file = writer
            .into_inner()
            .map_err(arrow_error)?
            .into_inner()
            .map_err(|e| SignalsError::Spill(e.into_error()))?;
        self.spilled.push(Spilled {
            file,
            low,
            high,
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
        });
        Ok(())
    }

    /// A pass over the signals in ascending symbol ranges; each store
    /// attempt makes its own.
    pub fn reader(&self) -> HandedReader<'_> {
        HandedReader {
            handed: self,
            after: None,
        }
    }
}

/// Where a pass over [`HandedSignals`] stands: every symbol up to `after`
/// has been taken.
pub(crate) struct HandedReader<'a> {
    handed: &'a HandedSignals,
    after: Option<String>,
}

impl<'a> HandedReader<'a> {
    /// The signals of symbols after the previous cut up to `cut`.
    pub fn take_up_to(&mut self, cut: &str) -> Result<Vec<RecordBatch>, SignalsError> {
        let after = self.after.as_deref();
        if after.is_some_and(|after| cut <= after) {
            return Ok(Vec::new());
        }
        let mut taken = Vec::new();
        for spilled in
            self.handed.spilled.iter().filter(|s| {
                s.low.as_str() <= cut && after.is_none_or(|after| s.high.as_str() > after)
            })
        {
            taken.extend(spilled.read(after, Some(cut))?);
        }
        self.after = Some(cut.to_string());
        Ok(taken)
    }

    /// What is left after the last cut, in groups of about `group_rows` over
    /// ascending symbol ranges, each read when [`HandedRange::read`] is
    /// called; a group ends only where no handing spans both sides.
    pub fn rest(self, group_rows: usize) -> Vec<HandedRange<'a>> {
        let after = self.after.as_deref();
        let mut left: Vec<&Spilled> = self
            .handed
            .spilled
            .iter()
            .filter(|s| after.is_none_or(|after| s.high.as_str() > after))
            .collect();
        left.sort_unstable_by(|a, b| (&a.low, &a.high).cmp(&(&b.low, &b.high)));
        let mut ranges: Vec<HandedRange> = Vec::new();
        let mut rows = 0;
        for spilled in left {
            match ranges.last_mut() {
                Some(range) if rows < group_rows || spilled.low <= range.up_to => {
                    range.spilled.push(spilled);
                    if spilled.high > range.up_to {
                        range.up_to = spilled.high.clone();
                    }
                }
                _ => {
                    ranges.push(HandedRange {
                        spilled: vec![spilled],
                        after: self.after.clone(),
                        up_to: spilled.high.clone(),
                    });
                    rows = 0;
                }
            }
            rows += spilled.rows;
        }
        ranges
    }
}

/// Handed signals of one symbol range, not read yet.
pub(crate) struct HandedRange<'a> {
    spilled: Vec<&'a Spilled>,
    after: Option<String>,
    /// The greatest symbol the range holds.
    pub up_to: String,
}

impl HandedRange<'_> {
    pub fn read(&self) -> Result<Vec<RecordBatch>, SignalsError> {
        let mut batches = Vec::new();
        for spilled in &self.spilled {
            batches.extend(spilled.read(self.after.as_deref(), None)?);
        }
        Ok(batches)
    }
}

impl Spilled {
    /// The rows of symbols after `after` up to `up_to` (`None`: no bound).
    fn read(
        &self,
        after: Option<&str>,
        up_to: Option<&str>,
    ) -> Result<Vec<RecordBatch>, SignalsError> {
        let whole = after.is_none_or(|after| self.low.as_str() > after)
            && up_to.is_none_or(|up_to| self.high.as_str() <= up_to);
        (&self.file)
            .seek(SeekFrom::Start(0))
            .map_err(SignalsError::Spill)?;
        let reader =
            StreamReader::try_new(BufReader::new(&self.file), None).map_err(arrow_error)?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(arrow_error)?;
            let batch = if whole {
                batch
            } else {
                filter_record_batch(&batch, &within(&batch, after, up_to)?).map_err(arrow_error)?
            };
            if batch.num_rows() > 0 {
                out.push(batch);
            }
        }
        Ok(out)
    }
}

/// Which rows of `batch` have a symbol after `after` up to `up_to`.
fn within(
    batch: &RecordBatch,
    after: Option<&str>,
    up_to: Option<&str>,
) -> Result<BooleanArray, SignalsError> {
    let symbols = symbols(batch)?;
    let mut keep = BooleanArray::from(vec![true; batch.num_rows()]);
    if let Some(after) = after {
        let above = gt(&symbols, &StringArray::new_scalar(after)).map_err(arrow_error)?;
        keep = and(&keep, &above).map_err(arrow_error)?;
    }
    if let Some(up_to) = up_to {
        let below = lt_eq(&symbols, &StringArray::new_scalar(up_to)).map_err(arrow_error)?;
        keep = and(&keep, &below).map_err(arrow_error)?;
    }
    Ok(keep)
}

/// The least and greatest symbol of a batch with rows.
fn symbol_span(batch: &RecordBatch) -> Result<(String, String), SignalsError> {
    let symbols = symbols(batch)?;
    let symbols = symbols.as_string::<i32>();
    match (min_string(symbols), max_string(symbols)) {
        (Some(low), Some(high)) => Ok((low.to_string(), high.to_string())),
        _ => Err(SignalsError::Query(
            ArrowError::InvalidArgumentError("signals without a symbol".into()).into(),
        )),
    }
}

fn symbols(batch: &RecordBatch) -> Result<datafusion::arrow::array::ArrayRef, SignalsError> {
    cast(
        batch.column_by_name(col::SYMBOL).expect("signals column"),
        &DataType::Utf8,
    )
    .map_err(arrow_error)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn of_symbols(symbols: &[&str]) -> RecordBatch {
        let schema = Schema::new(vec![Field::new(col::SYMBOL, DataType::Utf8, false)]);
        let column = StringArray::from(symbols.to_vec());
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(column)]).unwrap()
    }

    fn handed(handings: &[&[&str]]) -> HandedSignals {
        let mut handed = HandedSignals::default();
        for symbols in handings {
            handed.add(vec![of_symbols(symbols)]).unwrap();
        }
        handed
    }

    fn symbols_of(batches: &[RecordBatch]) -> Vec<String> {
        let mut out: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_rest_goes_in_ascending_ranges_that_never_split_a_handing() {
        let handed = handed(&[&["E", "F"], &["A", "B"], &["B", "C"], &[], &["D"]]);
        let ranges: Vec<(Vec<String>, String)> = handed
            .reader()
            .rest(2)
            .into_iter()
            .map(|range| (symbols_of(&range.read().unwrap()), range.up_to))
            .collect();
        // A..B and B..C overlap, so they stay together although the first is
        // already two rows; D alone is short of two, so E..F joins it.
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ranges,
            [
                (strings(&["A", "B", "B", "C"]), "C".to_string()),
                (strings(&["D", "E", "F"]), "F".to_string())
            ]
        );
    }

    #[test]
    fn cuts_take_each_symbol_once_and_the_rest_starts_after_the_last_cut() {
        let handed = handed(&[&["A", "C", "E"], &["B", "D", "F"]]);
        // Two passes over the same handings, as a store started over does.
        for _ in 0..2 {
            let mut reader = handed.reader();
            assert_eq!(symbols_of(&reader.take_up_to("B").unwrap()), ["A", "B"]);
            assert!(reader.take_up_to("B").unwrap().is_empty());
            assert_eq!(symbols_of(&reader.take_up_to("D").unwrap()), ["C", "D"]);
            let rest: Vec<String> = reader
                .rest(100)
                .iter()
                .flat_map(|range| symbols_of(&range.read().unwrap()))
                .collect();
            assert_eq!(rest, ["E", "F"]);
        }
    }
}

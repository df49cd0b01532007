//! Reading a Parquet file of bars; columns are matched by name as for CSV and cast
//! to the lake's types, and each row is checked like a CSV line.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Float64Type, TimeUnit, TimestampMicrosecondType};
use bf_core::Symbol;
use bf_core::dates::MICROS_PER_DAY;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::layout::Layout;
use super::row;
use super::{FileRows, Located, Rejection, symbol_from_file_name};
use crate::SourceError;
use crate::bars::{Bar, RawPrices};

/// One row group of a Parquet file, and the row number (from 1) of its first row.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowGroup {
    index: usize,
    first_row: u64,
}

/// The file's row groups; `None` when its footer cannot be read (reading the
/// whole file then says why).
pub(super) fn row_groups(path: &Path) -> Option<Vec<RowGroup>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).ok()?).ok()?;
    let mut first_row = 1;
    let groups = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .map(|(index, group)| {
            let group_start = first_row;
            first_row += group.num_rows().max(0) as u64;
            RowGroup {
                index,
                first_row: group_start,
            }
        })
        .collect();
    Some(groups)
}

/// Reads the file, or only `row_group` of it.
pub(super) fn read(
    path: &Path,
    file_index: usize,
    row_group: Option<RowGroup>,
) -> Result<FileRows, SourceError> {
    let parquet_error = |source| SourceError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let schema = builder.schema().clone();
    let layout = Layout::from_headers(path, schema.fields().iter().map(|f| f.name().as_str()))?;
    let file_symbol = match layout.symbol {
        Some(_) => None,
        None => Some(symbol_from_file_name(path)?),
    };
    let builder = match row_group {
        Some(group) => builder.with_row_groups(vec![group.index]),
        None => builder,
    };
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet_error)?;

    let mut rows = FileRows::default();
    let mut row_number: u64 = row_group.map_or(0, |group| group.first_row - 1);
    // The last symbol cell and what it parsed to: rows of a symbol come together.
    let mut last_symbol: Option<(String, Result<Symbol, String>)> = None;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(e.into()))?;
        let to = |index: usize, data_type: &DataType| -> Result<ArrayRef, SourceError> {
            cast(batch.column(index), data_type).map_err(|source| SourceError::Arrow {
                path: path.to_path_buf(),
                column: schema.field(index).name().clone(),
                source,
            })
        };
        let floats = |index: usize| to(index, &DataType::Float64);
        let (open, high, low, close, volume) = (
            floats(layout.open)?,
            floats(layout.high)?,
            floats(layout.low)?,
            floats(layout.close)?,
            floats(layout.volume)?,
        );
        let adj_close = layout.adj_close.map(floats).transpose()?;
        let symbols = layout.symbol.map(|i| to(i, &DataType::Utf8)).transpose()?;
        let dates = DateColumn::new(batch.column(layout.date), &to, layout.date)?;

        let value = |array: &ArrayRef, i: usize| {
            let array = array.as_primitive::<Float64Type>();
            array.is_valid(i).then(|| array.value(i))
        };
        for i in 0..batch.num_rows() {
            row_number += 1;
            rows.rows_read += 1;
            let symbol: Result<&Symbol, String> = match (&file_symbol, &symbols) {
                (Some(symbol), _) => Ok(symbol),
                (None, Some(array)) => {
                    let array = array.as_string::<i32>();
                    let raw = if array.is_valid(i) {
                        array.value(i)
                    } else {
                        ""
                    };
                    if last_symbol.as_ref().is_none_or(|(cell, _)| cell != raw) {
                        let parsed = Symbol::parse(raw).map_err(|e| e.to_string());
                        last_symbol = Some((raw.to_string(), parsed));
                    }
                    let (_, parsed) = last_symbol.as_ref().expect("set for this cell");
                    parsed.as_ref().map_err(Clone::clone)
                }
                (None, None) => unreachable!("a file without a symbol column has a file symbol"),
            };
            let parsed = symbol.and_then(|symbol| {
                let (date, ts) = dates.get(i)?;
                let prices = RawPrices {
                    open: value(&open, i),
                    high: value(&high, i),
                    low: value(&low, i),
                    close: value(&close, i),
                    adj_close: adj_close.as_ref().map(|a| value(a, i)),
                    volume: value(&volume, i),
                };
                Bar::checked(date, ts, prices).map(|bar| (symbol, bar))
            });
            match parsed {
                Ok((symbol, bar)) => rows.push(
                    symbol,
                    Located {
                        bar,
                        file: file_index,
                        line: row_number,
                    },
                ),
                Err(reason) => rows.rejections.push(Rejection {
                    file: path.to_path_buf(),
                    line: row_number,
                    reason,
                }),
            }
        }
    }
    Ok(rows)
}

/// A date column as stored: a date, a timestamp, or text to parse like CSV.
enum DateColumn {
    Date(ArrayRef),
    Timestamp(ArrayRef),
    Text(ArrayRef),
}

impl DateColumn {
    fn new(
        array: &ArrayRef,
        cast_to: &dyn Fn(usize, &DataType) -> Result<ArrayRef, SourceError>,
        index: usize,
    ) -> Result<Self, SourceError> {
        Ok(match array.data_type() {
            DataType::Date32 | DataType::Date64 => Self::Date(cast_to(index, &DataType::Date32)?),
            DataType::Timestamp(_, zone) => Self::Timestamp(cast_to(
                index,
                &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            )?),
            _ => Self::Text(cast_to(index, &DataType::Utf8)?),
        })
    }

    fn get(&self, i: usize) -> Result<(i32, i64), String> {
        match self {
            Self::Date(array) => {
                let array = array.as_primitive::<Date32Type>();
                if array.is_null(i) {
                    return Err("missing date".into());
                }
                let days = array.value(i);
                Ok((days, i64::from(days) * MICROS_PER_DAY))
            }
            Self::Timestamp(array) => {
                let array = array.as_primitive::<TimestampMicrosecondType>();
                if array.is_null(i) {
                    return Err("missing date".into());
                }
                let micros = array.value(i);
                Ok((micros.div_euclid(MICROS_PER_DAY) as i32, micros))
            }
            Self::Text(array) => {
                let array = array.as_string::<i32>();
                if array.is_null(i) {
                    return Err("missing date".into());
                }
                row::parse_date(array.value(i))
            }
        }
    }
}

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema};

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `batch` as a Parquet file, with the writer's default settings unless given.
fn write_parquet(
    path: &Path,
    batch: &RecordBatch,
    properties: Option<parquet::file::properties::WriterProperties>,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), properties).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// What an import read, with the rows it would store as one batch.
pub(super) struct Read {
    imported: Imported,
    pub bars: RecordBatch,
}

impl std::ops::Deref for Read {
    type Target = Imported;

    fn deref(&self) -> &Imported {
        &self.imported
    }
}

impl From<Imported> for Read {
    fn from(imported: Imported) -> Self {
        let groups: Vec<RecordBatch> = imported.bars(usize::MAX).map(|(bars, _)| bars).collect();
        let bars = match groups.as_slice() {
            [] => RecordBatch::new_empty(bf_core::tables::OHLCV.schema()),
            [one] => one.clone(),
            _ => unreachable!("one group of every symbol"),
        };
        Self { imported, bars }
    }
}

fn import(paths: &[PathBuf]) -> Read {
    import_files(paths, Interval::D1, 0, &|_| {}).into()
}

fn symbols_of(imported: &Read) -> Vec<String> {
    let column = imported
        .bars
        .column_by_name("symbol")
        .unwrap()
        .as_string::<i32>();
    column.iter().map(|s| s.unwrap().to_string()).collect()
}

fn floats(imported: &Read, name: &str) -> Vec<f64> {
    imported
        .bars
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

#[test]
fn yahoo_export_layout_takes_symbol_from_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Date,Open,High,Low,Close,Adj Close,Volume\n\
                2024-01-03,184.22,185.88,183.43,184.25,183.5,58414500\n\
                2024-01-02,187.15,188.44,183.89,185.64,184.9,82488700\n";
    let paths = [
        write(dir.path(), "AAPL.csv", text),
        write(dir.path(), "^GSPC.csv", text),
        write(dir.path(), "002032.SZ.csv", text),
    ];
    let imported = import(&paths);
    assert!(imported.rejections.is_empty(), "{:?}", imported.rejections);
    assert_eq!(
        symbols_of(&imported),
        ["002032.SZ", "002032.SZ", "AAPL", "AAPL", "^GSPC", "^GSPC"]
    );
    // Sorted by date within a symbol, adj close kept apart from close.
    assert_eq!(&floats(&imported, "close")[2..4], [185.64, 184.25]);
    assert_eq!(&floats(&imported, "adj_close")[2..4], [184.9, 183.5]);
    let dates = imported
        .bars
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(dates.value_as_date(2).unwrap().to_string(), "2024-01-02");
    let volume = imported
        .bars
        .column_by_name("volume")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(volume.value(2), 82_488_700);
}

#[test]
fn generic_layout_with_symbol_column_and_no_adj_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mixed.csv",
        "symbol,date,open,high,low,close,volume\n\
         msft,2024-01-02,10,11,9,10.5,100\n\
         IBM,2024-01-02,20,21,19,20.5,200\n",
    );
    let imported = import(&[path]);
    assert!(imported.rejections.is_empty(), "{:?}", imported.rejections);
    assert_eq!(symbols_of(&imported), ["IBM", "MSFT"]);
    assert_eq!(floats(&imported, "adj_close"), floats(&imported, "close"));
}

#[test]
fn every_bad_row_is_reported_with_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "BAD.csv",
        "date,open,high,low,close,adj_close,volume\n\
         2024-01-02,10,11,9,10.5,10.5,100\n\
         2024-01-03,abc,11,9,10.5,10.5,100\n\
         2024-01-04,null,11,9,10.5,10.5,100\n\
         2024-01-05,10,9,11,10,10,100\n\
         2024-01-08,10,11,9,10.5,10.5,-5\n\
         2024-01-09,0,11,9,10.5,10.5,100\n\
         2024-01-10,12,11,9,10.5,10.5,100\n\
         Jan 11th,10,11,9,10.5,10.5,100\n\
         2024-01-12,10,11,9,10.5,10.5,1.5\n\
         2024-01-02,10,11,9,10.6,10.6,100\n\
         2024-01-02,10,11,9,10.5,10.5,100\n",
    );
    let imported = import(&[path]);
    let reasons: Vec<(u64, &str)> = imported
        .rejections
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    let expect = [
        (3, "unparsable open \"abc\""),
        (4, "missing open"),
        (5, "high 9 < low 11"),
        (6, "negative volume -5"),
        (7, "non-positive open 0"),
        (8, "open 12 outside [low 9, high 11]"),
        (9, "unparsable date \"Jan 11th\""),
        (10, "volume 1.5 is not a whole number"),
        (
            11,
            "duplicate key (BAD, 1d, 2024-01-02) with values different from",
        ),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:#?}");
    for ((line, reason), (want_line, want)) in reasons.iter().zip(expect) {
        assert_eq!(*line, want_line, "{reason}");
        assert!(
            reason.starts_with(want),
            "line {line}: {reason:?} should start with {want:?}"
        );
    }
    assert!(imported.rejections[8].reason.ends_with("BAD.csv:2"));
    assert!(
        imported.rejections[0]
            .to_string()
            .contains("BAD.csv:3: unparsable open")
    );
    assert_eq!(imported.bars.num_rows(), 1);
    assert_eq!(imported.identical_duplicates, 1);
    assert_eq!(imported.files[0].rejected, 9);
}

#[test]
fn rows_of_another_length_and_decimal_commas_are_rejected_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "COMMA.csv",
        "date,open,high,low,close,volume\n\
         2024-01-02,10,11,9,10.5,1,000\n\
         2024-01-03,10,11,9,10.5\n\
         2024-01-04,10,11,9,\"10,5\",100\n\
         2024-01-05,10,11,9,\"1.234,5\",100\n\
         2024-01-08,10,11,9,10.5,\"1,234,567\"\n",
    );
    let imported = import(&[path]);
    let reasons: Vec<(u64, &str)> = imported
        .rejections
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert_eq!(reasons[0], (2, "7 fields, but the header has 6"));
    assert_eq!(reasons[1], (3, "5 fields, but the header has 6"));
    assert!(
        reasons[2]
            .1
            .starts_with("close \"10,5\" is not a plain number")
    );
    assert_eq!(reasons[2].0, 4);
    assert!(
        reasons[3]
            .1
            .starts_with("close \"1.234,5\" is not a plain number")
    );
    let volume = imported
        .bars
        .column_by_name("volume")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(volume.values().to_vec(), [1_234_567]);
}

#[test]
fn invalid_symbol_cell_is_a_rejection_not_a_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "many.csv",
        "ticker,date,open,high,low,close,volume\nA B,2024-01-02,1,1,1,1,1\nOK,2024-01-02,1,1,1,1,1\n",
    );
    let imported = import(&[path]);
    assert_eq!(imported.bars.num_rows(), 1);
    assert!(
        imported.rejections[0]
            .reason
            .contains("invalid symbol \"A B\"")
    );
}

#[test]
fn unknown_layout_and_unreadable_files_are_file_errors_that_do_not_stop_others() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "GOOD.csv",
        "date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n",
    );
    let no_close = write(
        dir.path(),
        "X.csv",
        "date,open,high,low,volume\n2024-01-02,1,1,1,1\n",
    );
    let missing = dir.path().join("MISSING.csv");
    let imported = import(&[good, no_close, missing]);
    assert_eq!(imported.bars.num_rows(), 1);
    let errors: Vec<String> = imported
        .failed_files()
        .map(|f| f.error.clone().unwrap())
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].contains("X.csv") && errors[0].contains("no close column"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("MISSING.csv"), "{}", errors[1]);
}

#[test]
fn yfinance_datetime_with_offset_keeps_local_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "SPY.csv",
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n\
         2024-01-02 00:00:00-05:00,1,2,1,2,10,0,0\n",
    );
    let imported = import(&[path]);
    let dates = imported
        .bars
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(dates.value_as_date(0).unwrap().to_string(), "2024-01-02");
}

#[test]
fn parquet_files_are_checked_like_csv() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("Date", DataType::Utf8, true),
        Field::new("Open", DataType::Float64, true),
        Field::new("High", DataType::Float64, true),
        Field::new("Low", DataType::Float64, true),
        Field::new("Close", DataType::Float64, true),
        Field::new("Volume", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["2024-01-02", "2024-01-03"])),
            Arc::new(Float64Array::from(vec![Some(1.0), None])),
            Arc::new(Float64Array::from(vec![2.0, 2.0])),
            Arc::new(Float64Array::from(vec![1.0, 1.0])),
            Arc::new(Float64Array::from(vec![1.5, 1.5])),
            Arc::new(Int64Array::from(vec![10, 10])),
        ],
    )
    .unwrap();
    let path = dir.path().join("QQQ.parquet");
    write_parquet(&path, &batch, None);

    let imported = import(&[path]);
    assert_eq!(symbols_of(&imported), ["QQQ"]);
    assert_eq!(imported.rejections.len(), 1);
    assert_eq!(
        (
            imported.rejections[0].line,
            imported.rejections[0].reason.as_str()
        ),
        (2, "missing open")
    );
}

#[test]
fn parquet_row_groups_are_read_apart_and_joined_in_row_order() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("date", DataType::Utf8, true),
        Field::new("open", DataType::Float64, true),
        Field::new("high", DataType::Float64, true),
        Field::new("low", DataType::Float64, true),
        Field::new("close", DataType::Float64, true),
        Field::new("volume", DataType::Int64, true),
    ]));
    // Rows 1-2, 3-4, 5-6 and 7 are four row groups. AAA's rows span three of
    // them, row 5 repeats row 1 with another close (a rejection naming row 1),
    // row 6 repeats row 3 exactly, row 7 has no open.
    let rows = [
        ("AAA", "2024-01-03", 1.0, 1.5),
        ("AAA", "2024-01-02", 1.0, 1.4),
        ("BBB", "2024-01-02", 1.0, 1.3),
        ("AAA", "2024-01-04", 1.0, 1.2),
        ("AAA", "2024-01-03", 1.0, 1.1),
        ("BBB", "2024-01-02", 1.0, 1.3),
        ("BBB", "2024-01-05", f64::NAN, 1.3),
    ];
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter(
                rows.iter().map(|r| (!r.2.is_nan()).then_some(r.2)),
            )),
            Arc::new(Float64Array::from(vec![2.0; rows.len()])),
            Arc::new(Float64Array::from(vec![1.0; rows.len()])),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(Int64Array::from(vec![10; rows.len()])),
        ],
    )
    .unwrap();
    let path = dir.path().join("bars.parquet");
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .build();
    write_parquet(&path, &batch, Some(properties));
    assert_eq!(parquet_file::row_groups(&path).unwrap().len(), 4);

    let imported = import(std::slice::from_ref(&path));
    assert_eq!(imported.files[0].rows_read, 7);
    assert_eq!(symbols_of(&imported), ["AAA", "AAA", "AAA", "BBB"]);
    assert_eq!(floats(&imported, "close"), [1.4, 1.5, 1.2, 1.3]);
    assert_eq!(imported.identical_duplicates, 1);
    let rejected: Vec<(u64, &str)> = imported
        .rejections
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, 7);
    assert_eq!(rejected[0].1, "missing open");
    assert_eq!(rejected[1].0, 5);
    assert!(
        rejected[1].1.ends_with("bars.parquet:1"),
        "{}",
        rejected[1].1
    );
}

#[test]
fn bars_come_in_groups_of_whole_symbols_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("symbol,date,open,high,low,close,volume\n");
    for (symbol, days) in [("CCC", 3), ("AAA", 2), ("BBB", 4)] {
        for day in 1..=days {
            text.push_str(&format!("{symbol},2024-01-0{day},1,1,1,1,1\n"));
        }
    }
    let imported = import(&[write(dir.path(), "many.csv", &text)]);
    let groups: Vec<(Vec<String>, String)> = imported
        .bars(6)
        .map(|(bars, last)| {
            let symbols = bars.column_by_name("symbol").unwrap().as_string::<i32>();
            let symbols = symbols.iter().map(|s| s.unwrap().to_string()).collect();
            (symbols, last.to_string())
        })
        .collect();
    let symbols = |runs: &[(&str, usize)]| -> Vec<String> {
        runs.iter()
            .flat_map(|(symbol, n)| vec![symbol.to_string(); *n])
            .collect()
    };
    assert_eq!(
        groups,
        [
            (symbols(&[("AAA", 2), ("BBB", 4)]), "BBB".to_string()),
            (symbols(&[("CCC", 3)]), "CCC".to_string()),
        ]
    );
    assert_eq!(imported.bars_count(), 9);
}

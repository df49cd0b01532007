//! Property tests of the file readers: whatever a file holds, the import never
//! panics, every row it read is either stored, rejected with a reason, or an
//! identical duplicate, and every stored bar is a valid bar. Failing inputs
//! proptest finds are kept in `proptest-regressions/` and replayed first.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Float64Type, Int64Type};
use bf_core::Interval;
use proptest::prelude::*;

use super::import_files;
use super::tests::Read;

/// Cells a vendor file has been seen to hold, good and bad.
const CELLS: &[&str] = &[
    "",
    " ",
    "null",
    "NaN",
    "-",
    "0",
    "-1",
    "1",
    "9.5",
    "10",
    "10.5",
    "11",
    "1e308",
    "1e-320",
    "inf",
    "-inf",
    "1,234",
    "10,5",
    "1.234,5",
    "1,2345",
    "\"",
    "'",
    "0x10",
    "+7",
    "9223372036854775807",
    "99999999999999999999",
    "2024-01-02",
    "2024-02-30",
    "0000-01-01",
    "9999-12-31",
    "2024-01-02 09:30:00-05:00",
    "2024-01-02T25:00:00",
    "20240102",
    "2024/01/02",
    "AAPL",
    "ä",
];

const HEADERS: &[&str] = &[
    "date,open,high,low,close,volume",
    "Date,Open,High,Low,Close,Adj Close,Volume",
    "symbol,date,open,high,low,close,adj_close,volume",
    "timestamp,o,h,l,c,v",
    "date,close",
    "",
];

fn import_text(text: &[u8]) -> Read {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("FUZZ.csv");
    std::fs::write(&path, text).unwrap();
    import_files(&[path], Interval::D1, 0, &|_| {}).into()
}

/// Every row read is accounted for, and every stored bar is valid.
fn assert_accounted_and_valid(imported: &Read) {
    let readable = imported.failed_files().count() == 0;
    if readable {
        assert_eq!(
            imported.rows_read(),
            imported.bars.num_rows() + imported.rejections.len() + imported.identical_duplicates,
            "{:?}",
            imported.rejections
        );
    }
    let column = |name: &str| {
        imported
            .bars
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .values()
            .to_vec()
    };
    let (open, high, low, close, adj) = (
        column("open"),
        column("high"),
        column("low"),
        column("close"),
        column("adj_close"),
    );
    let volume = imported
        .bars
        .column_by_name("volume")
        .unwrap()
        .as_primitive::<Int64Type>();
    for row in 0..imported.bars.num_rows() {
        for price in [open[row], high[row], low[row], close[row], adj[row]] {
            assert!(price.is_finite() && price > 0.0, "row {row}: price {price}");
        }
        assert!(low[row] <= open[row] && open[row] <= high[row], "row {row}");
        assert!(
            low[row] <= close[row] && close[row] <= high[row],
            "row {row}"
        );
        assert!(volume.value(row) >= 0, "row {row}");
    }
}

fn csv_text() -> impl Strategy<Value = String> {
    let row =
        prop::collection::vec(prop::sample::select(CELLS), 0..9).prop_map(|cells| cells.join(","));
    (
        prop::sample::select(HEADERS),
        prop::collection::vec(row, 0..12),
    )
        .prop_map(|(header, rows)| {
            let mut text = header.to_string();
            for row in rows {
                text.push('\n');
                text.push_str(&row);
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn csv_of_tricky_cells_is_stored_or_rejected_never_misread(text in csv_text()) {
        assert_accounted_and_valid(&import_text(text.as_bytes()));
    }

    #[test]
    fn csv_of_arbitrary_bytes_never_panics(
        header in prop::sample::select(HEADERS),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut text = header.as_bytes().to_vec();
        text.push(b'\n');
        text.extend(body);
        assert_accounted_and_valid(&import_text(&text));
    }

    #[test]
    fn parquet_of_any_column_types_never_panics(
        columns in prop::collection::vec(parquet_column(), 1..8),
        names in prop::collection::vec(prop::sample::select(&["date", "open", "high", "low", "close", "adj_close", "volume", "symbol", "ts", "other"][..]), 8),
    ) {
        let rows = columns[0].len();
        let mut seen = std::collections::HashSet::new();
        let columns: Vec<(&str, ArrayRef)> = columns
            .into_iter()
            .zip(names)
            .filter(|(array, name)| array.len() == rows && seen.insert(*name))
            .map(|(array, name)| (name, array))
            .collect();
        let batch = arrow::array::RecordBatch::try_from_iter(columns).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("FUZZ.parquet");
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        assert_accounted_and_valid(&import_files(&[path], Interval::D1, 0, &|_| {}).into());
    }
}

/// A column of three rows of one of the types vendors write.
fn parquet_column() -> impl Strategy<Value = ArrayRef> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![
                any::<f64>(),
                Just(10.0),
                Just(9.0),
                Just(11.0),
                Just(f64::NAN)
            ],
            3
        )
        .prop_map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
        prop::collection::vec(
            prop_oneof![
                any::<i64>(),
                Just(19_724),
                Just(1_704_153_600_000_000),
                Just(10)
            ],
            3
        )
        .prop_map(|v| Arc::new(Int64Array::from(v)) as ArrayRef),
        prop::collection::vec(prop::sample::select(CELLS), 3)
            .prop_map(|v| Arc::new(StringArray::from(v)) as ArrayRef),
        prop::collection::vec(any::<bool>(), 3)
            .prop_map(|v| Arc::new(BooleanArray::from(v)) as ArrayRef),
    ]
}

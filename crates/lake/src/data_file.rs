//! One data file of a table, written by bf instead of delta-rs's writer, and
//! its `add` action with the statistics delta-rs records.
//!
//! delta-rs 1.1 encodes each row group into a buffer that starts empty and
//! regrows for every row group before it is uploaded: every byte copied once
//! more, in fresh pages. Here the encoder writes the file's pages straight
//! into the file on local disk, and into upload parts on object stores.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Timelike};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::object_store::{ObjectStoreExt as _, WriteMultipart};
use deltalake::kernel::Add;
use deltalake::logstore::ObjectStoreRef;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::{LogicalType, TimeUnit};
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::file::statistics::Statistics;
use deltalake::protocol::{ColumnCountStat, ColumnValueStat, Stats};
use deltalake::{DeltaTable, DeltaTableError, Path};
use serde_json::Value;
use tokio::runtime::Handle;

use crate::lake::local_path;

/// Upload parts (5 MiB each) a file may have in flight on an object store.
const PARTS_IN_FLIGHT: usize = 8;

/// Where and how a table's data files are written.
#[derive(Clone)]
pub(crate) struct DataFiles {
    store: ObjectStoreRef,
    /// The table's folder when it is on local disk.
    folder: Option<PathBuf>,
    schema: SchemaRef,
    properties: WriterProperties,
    stats: StatsColumns,
}

impl DataFiles {
    pub(crate) fn new(
        table: &DeltaTable,
        schema: SchemaRef,
        properties: WriterProperties,
    ) -> Result<Self, DeltaTableError> {
        let stats = StatsColumns::from_configuration(table.snapshot()?.metadata().configuration())?;
        Ok(Self {
            store: table.object_store(),
            folder: local_path(table.table_url()),
            schema,
            properties,
            stats,
        })
    }

    /// Writes `batches` (the table's schema) as one file; its `add` action,
    /// `None` for no rows. Encoding runs on a blocking thread.
    pub(crate) async fn write(
        &self,
        batches: Vec<RecordBatch>,
    ) -> Result<Option<Add>, DeltaTableError> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let files = self.clone();
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || files.write_blocking(&handle, &batches))
            .await
            .map_err(|e| DeltaTableError::Generic(format!("file writer: {e}")))?
            .map(Some)
    }

    fn write_blocking(
        &self,
        runtime: &Handle,
        batches: &[RecordBatch],
    ) -> Result<Add, DeltaTableError> {
        let name = format!("part-00000-{}-c000.parquet", uuid::Uuid::new_v4());
        let path = Path::from(name.as_str());
        let sink = match &self.folder {
            Some(folder) => {
                let file = folder.join(&name);
                Sink::File(File::create(&file).map_err(|e| {
                    DeltaTableError::Generic(format!("cannot create {}: {e}", file.display()))
                })?)
            }
            None => Sink::Upload(WriteMultipart::new(
                runtime.block_on(self.store.put_multipart(&path))?,
            )),
        };
        let mut writer =
            ArrowWriter::try_new(sink, self.schema.clone(), Some(self.properties.clone()))?;
        let encoded = (|| -> Result<ParquetMetaData, DeltaTableError> {
            for batch in batches {
                writer.write(batch)?;
                if let Sink::Upload(upload) = writer.inner_mut() {
                    runtime.block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT))?;
                }
            }
            Ok(writer.finish()?)
        })();
        let size = writer.bytes_written();
        // After `finish` the encoder has flushed everything into the sink.
        let sink = std::mem::replace(writer.inner_mut(), Sink::Taken);
        drop(writer);
        let metadata = match encoded {
            Ok(metadata) => {
                sink.finish(runtime)?;
                metadata
            }
            Err(error) => {
                // Nothing refers to the file: remove what was written of it.
                sink.abandon(runtime);
                if let Some(folder) = &self.folder {
                    let _ = std::fs::remove_file(folder.join(&name));
                }
                return Err(error);
            }
        };
        let stats = self.stats.of(&metadata);
        Ok(Add {
            path: name,
            size: size as i64,
            partition_values: HashMap::new(),
            modification_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            data_change: true,
            stats: Some(serde_json::to_string(&stats)?),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }
}

/// Where a file's bytes go as they are encoded.
enum Sink {
    File(File),
    /// Parts of 5 MiB, each uploaded once full. (Gathering each part in one
    /// buffer allocated at its full size cost more system CPU in fresh pages.)
    Upload(WriteMultipart),
    /// Taken from the encoder once it finished the file.
    Taken,
}

impl Sink {
    fn finish(self, runtime: &Handle) -> Result<(), DeltaTableError> {
        match self {
            Self::File(file) => drop(file),
            Self::Upload(upload) => {
                runtime.block_on(upload.finish())?;
            }
            Self::Taken => {}
        }
        Ok(())
    }

    fn abandon(self, runtime: &Handle) {
        if let Self::Upload(upload) = self
            && let Err(error) = runtime.block_on(upload.abort())
        {
            tracing::warn!(%error, "cannot abort the upload of an abandoned data file");
        }
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::File(file) => file.write(bytes),
            Self::Upload(upload) => {
                upload.write(bytes);
                Ok(bytes.len())
            }
            Self::Taken => Err(io::Error::other("the data file is closed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::File(file) => file.flush(),
            Self::Upload(_) | Self::Taken => Ok(()),
        }
    }
}

/// The columns whose minimum, maximum and null count a file's `add` records,
/// from the table's `delta.dataSkippingStatsColumns` or
/// `delta.dataSkippingNumIndexedCols` (default: the first 32), as delta-rs
/// chooses them for a table without partitions or nested columns.
#[derive(Debug, Clone, PartialEq)]
enum StatsColumns {
    All,
    First(usize),
    Named(Vec<String>),
}

impl StatsColumns {
    fn from_configuration(
        configuration: &HashMap<String, String>,
    ) -> Result<Self, DeltaTableError> {
        if let Some(names) = configuration.get("delta.dataSkippingStatsColumns") {
            return Ok(Self::Named(
                names
                    .split(',')
                    .map(|name| name.trim().trim_matches('`').to_string())
                    .collect(),
            ));
        }
        match configuration.get("delta.dataSkippingNumIndexedCols") {
            None => Ok(Self::First(32)),
            Some(n) => match n.trim().parse::<i64>() {
                Ok(-1) => Ok(Self::All),
                Ok(n) if n >= 0 => Ok(Self::First(n as usize)),
                _ => Err(DeltaTableError::Generic(format!(
                    "delta.dataSkippingNumIndexedCols is {n}: valid values are -1 and above"
                ))),
            },
        }
    }

    fn includes(&self, index: usize, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::First(n) => index < *n,
            Self::Named(names) => names.iter().any(|n| n == name),
        }
    }

    /// The file's statistics as delta-rs writes them: per column, the
    /// minimum and maximum over its row groups' Parquet statistics and the
    /// nulls; nothing for a column written without statistics.
    fn of(&self, metadata: &ParquetMetaData) -> Stats {
        let mut stats = Stats {
            num_records: metadata.file_metadata().num_rows(),
            ..Stats::default()
        };
        let schema = metadata.file_metadata().schema_descr();
        for (index, column) in schema.columns().iter().enumerate() {
            let name = column.name();
            if !self.includes(index, name) || column.max_rep_level() > 0 {
                continue;
            }
            let logical = column.logical_type_ref();
            let mut found: Option<Extremes> = None;
            for group in metadata.row_groups() {
                if let Some(statistics) = group.column(index).statistics() {
                    let this = Extremes::of(statistics, logical);
                    found = Some(match found {
                        Some(earlier) => earlier.merge(this),
                        None => this,
                    });
                }
            }
            let Some(extremes) = found else { continue };
            if let Some(min) = extremes.min {
                stats
                    .min_values
                    .insert(name.to_string(), ColumnValueStat::Value(min.into()));
            }
            if let Some(max) = extremes.max {
                stats
                    .max_values
                    .insert(name.to_string(), ColumnValueStat::Value(max.into()));
            }
            stats.null_count.insert(
                name.to_string(),
                ColumnCountStat::Value(extremes.nulls as i64),
            );
        }
        stats
    }
}

/// A column's smallest and largest values and nulls over some row groups.
struct Extremes {
    min: Option<Scalar>,
    max: Option<Scalar>,
    nulls: u64,
}

impl Extremes {
    fn of(statistics: &Statistics, logical: Option<&LogicalType>) -> Self {
        Self {
            min: Scalar::of(statistics, logical, Bound::Min),
            max: Scalar::of(statistics, logical, Bound::Max),
            nulls: statistics.null_count_opt().unwrap_or_default(),
        }
    }

    fn merge(self, other: Self) -> Self {
        let pick =
            |a: Option<Scalar>, b: Option<Scalar>, keep_a: fn(&Scalar, &Scalar) -> bool| match (
                a, b,
            ) {
                (Some(a), Some(b)) => Some(if keep_a(&a, &b) { a } else { b }),
                (a, b) => a.or(b),
            };
        Self {
            min: pick(self.min, other.min, |a, b| a < b),
            max: pick(self.max, other.max, |a, b| a > b),
            nulls: self.nulls + other.nulls,
        }
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Min,
    Max,
}

/// A statistic's value, ordered as its column's type orders values. Types
/// bf's tables do not hold (decimals, binary) have none.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Scalar {
    Boolean(bool),
    Int(i64),
    Float(f64),
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since the Unix epoch; whether it is UTC.
    Timestamp(i64, bool),
    Text(String),
}

impl Scalar {
    fn of(statistics: &Statistics, logical: Option<&LogicalType>, bound: Bound) -> Option<Self> {
        fn pick<T: Copy>(min: Option<&T>, max: Option<&T>, bound: Bound) -> Option<T> {
            match bound {
                Bound::Min => min.copied(),
                Bound::Max => max.copied(),
            }
        }
        Some(match (statistics, logical) {
            (Statistics::Boolean(v), _) => Self::Boolean(pick(v.min_opt(), v.max_opt(), bound)?),
            (Statistics::Int32(v), Some(LogicalType::Date)) => {
                Self::Date(pick(v.min_opt(), v.max_opt(), bound)?)
            }
            (Statistics::Int32(_) | Statistics::Int64(_), Some(LogicalType::Decimal(_))) => {
                return None;
            }
            (Statistics::Int32(v), _) => Self::Int(pick(v.min_opt(), v.max_opt(), bound)?.into()),
            (Statistics::Int64(v), Some(LogicalType::Timestamp(timestamp))) => {
                let value = pick(v.min_opt(), v.max_opt(), bound)?;
                let micros = match timestamp.unit {
                    TimeUnit::MILLIS => value.checked_mul(1_000)?,
                    TimeUnit::MICROS => value,
                    TimeUnit::NANOS => value.div_euclid(1_000),
                };
                Self::Timestamp(micros, timestamp.is_adjusted_to_u_t_c)
            }
            (Statistics::Int64(v), _) => Self::Int(pick(v.min_opt(), v.max_opt(), bound)?),
            (Statistics::Float(v), _) => Self::Float(pick(v.min_opt(), v.max_opt(), bound)?.into()),
            (Statistics::Double(v), _) => Self::Float(pick(v.min_opt(), v.max_opt(), bound)?),
            (Statistics::ByteArray(v), Some(LogicalType::String)) => {
                let bytes = match bound {
                    Bound::Min => v.min_bytes_opt(),
                    Bound::Max => v.max_bytes_opt(),
                }?;
                Self::Text(String::from_utf8(bytes.to_vec()).ok()?)
            }
            _ => return None,
        })
    }
}

impl From<Scalar> for Value {
    fn from(scalar: Scalar) -> Self {
        match scalar {
            Scalar::Boolean(v) => v.into(),
            Scalar::Int(v) => v.into(),
            // Not finite: null, as delta-rs writes it.
            Scalar::Float(v) => v.into(),
            Scalar::Date(days) => DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .map_or(Value::Null, |t| t.format("%Y-%m-%d").to_string().into()),
            Scalar::Timestamp(micros, utc) => {
                let Some(time) = DateTime::from_timestamp_micros(micros) else {
                    return Value::Null;
                };
                // The Delta protocol's millisecond precision, the fraction
                // left out when it is zero, as delta-rs writes it.
                let whole = time.nanosecond() == 0;
                let format = match (utc, whole) {
                    (true, true) => "%Y-%m-%dT%H:%M:%SZ",
                    (true, false) => "%Y-%m-%dT%H:%M:%S%.3fZ",
                    (false, true) => "%Y-%m-%d %H:%M:%S",
                    (false, false) => "%Y-%m-%d %H:%M:%S%.3f",
                };
                time.naive_utc().format(format).to_string().into()
            }
            Scalar::Text(v) => v.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bf_core::tables::OHLCV;
    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray, TimestampMillisecondArray,
    };
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit as ArrowTimeUnit};
    use datafusion::object_store::local::LocalFileSystem;
    use deltalake::operations::write::writer::{DeltaWriter, WriterConfig};
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use deltalake::parquet::file::properties::EnabledStatistics;
    use deltalake::parquet::schema::types::ColumnPath;

    use super::*;
    use crate::test_rows::bars;
    use crate::upsert::writer_properties;

    /// Every type bf's tables hold, with nulls, NaN, zeros of both signs,
    /// timestamps with and without a fraction, and a column of nulls only.
    fn mixed_rows() -> RecordBatch {
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "symbol",
                Arc::new(StringArray::from(vec!["B", "A", "C", "A", "D", "B", "E"])),
            ),
            (
                "note",
                Arc::new(StringArray::from(vec!["z", "y", "x", "w", "v", "u", "t"])),
            ),
            (
                "date",
                Arc::new(Date32Array::from(vec![
                    19000, -3, 18000, 20500, 0, 19001, 7,
                ])),
            ),
            (
                "ts",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_700_000_000_123_456),
                        None,
                        Some(1_600_000_000_000_000),
                        Some(1_800_000_000_000_999),
                        Some(-86_400_000_000),
                        Some(1_700_000_000_000_001),
                        None,
                    ])
                    .with_timezone("UTC"),
                ),
            ),
            (
                "local_ts",
                Arc::new(TimestampMillisecondArray::from(vec![
                    1_700_000_000_123,
                    1_600_000_000_000,
                    5,
                    1_700_000_000_500,
                    9,
                    2,
                    1,
                ])),
            ),
            (
                "price",
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    None,
                    Some(f64::NAN),
                    Some(-0.0),
                    Some(3.25),
                    None,
                    Some(-2.0),
                ])),
            ),
            ("nothing", Arc::new(Float64Array::from(vec![None; 7]))),
            (
                "volume",
                Arc::new(Int64Array::from(vec![5, i64::MAX, -7, 0, 3, 2, 1])),
            ),
            (
                "count",
                Arc::new(Int32Array::from(vec![
                    Some(3),
                    None,
                    Some(-1),
                    Some(8),
                    None,
                    Some(2),
                    Some(0),
                ])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![
                    true, false, true, true, false, true, true,
                ])),
            ),
        ];
        let schema = Schema::new(
            columns
                .iter()
                .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            schema.field_with_name("local_ts").unwrap().data_type(),
            &DataType::Timestamp(ArrowTimeUnit::Millisecond, None)
        );
        RecordBatch::try_new(
            Arc::new(schema),
            columns.into_iter().map(|(_, array)| array).collect(),
        )
        .unwrap()
    }

    /// The `add` actions bf's writer and delta-rs's write for `batches`, and
    /// the rows bf's file holds.
    async fn both_adds(
        batches: Vec<RecordBatch>,
        properties: WriterProperties,
    ) -> (Add, Add, RecordBatch) {
        let dir = tempfile::tempdir().unwrap();
        let store: ObjectStoreRef = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let schema = batches[0].schema();
        let ours = DataFiles {
            store: store.clone(),
            folder: Some(dir.path().to_path_buf()),
            schema: schema.clone(),
            properties: properties.clone(),
            stats: StatsColumns::First(32),
        }
        .write(batches.clone())
        .await
        .unwrap()
        .expect("rows written");
        let config = WriterConfig::new(
            schema,
            Vec::new(),
            Some(properties),
            None,
            None,
            Default::default(),
            None,
        );
        let mut writer = DeltaWriter::new(store, config);
        for batch in &batches {
            writer.write(batch).await.unwrap();
        }
        let theirs = writer.close().await.unwrap().remove(0);
        let file = File::open(dir.path().join(&ours.path)).unwrap();
        assert_eq!(file.metadata().unwrap().len(), ours.size as u64, "size");
        let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let read = concat_batches(&read[0].schema(), &read).unwrap();
        (ours, theirs, read)
    }

    fn stats(add: &Add) -> Value {
        serde_json::from_str(add.stats.as_deref().expect("statistics")).unwrap()
    }

    #[tokio::test]
    async fn statistics_equal_delta_rs_over_row_groups_nulls_and_every_type() {
        let rows = mixed_rows();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .set_column_statistics_enabled(ColumnPath::from("note"), EnabledStatistics::None)
            .build();
        let batches = vec![rows.slice(0, 4), rows.slice(4, 3)];
        let (ours, theirs, read) = both_adds(batches, properties).await;
        assert_eq!(read, rows, "the file holds the rows");
        assert_eq!(stats(&ours), stats(&theirs));
        // What the comparison covers, spelled out.
        let ours = stats(&ours);
        assert_eq!(ours["numRecords"], 7);
        assert_eq!(ours["minValues"]["symbol"], "A");
        assert_eq!(ours["maxValues"]["date"], "2026-02-16");
        assert_eq!(ours["minValues"]["ts"], "1969-12-31T00:00:00Z");
        assert_eq!(ours["maxValues"]["ts"], "2027-01-15T08:00:00.000Z");
        assert_eq!(ours["minValues"]["price"], -2.0);
        assert_eq!(ours["nullCount"]["price"], 2);
        assert_eq!(ours["nullCount"]["nothing"], 7);
        assert!(ours["minValues"].get("nothing").is_none());
        assert!(
            ours["nullCount"].get("note").is_none(),
            "no statistics written"
        );
        assert_eq!(ours["maxValues"]["volume"], i64::MAX);
    }

    #[tokio::test]
    async fn an_ohlcv_file_equals_delta_rs_s_but_for_its_name() {
        let rows = concat_batches(&bars("AAA").schema(), &[bars("BBB"), bars("AAA")]).unwrap();
        let (ours, theirs, read) = both_adds(vec![rows.clone()], writer_properties(&OHLCV)).await;
        assert_eq!(read, rows);
        assert_eq!(stats(&ours), stats(&theirs));
        assert_eq!(ours.size, theirs.size);
        assert!(ours.data_change && ours.partition_values.is_empty());
    }

    #[test]
    fn the_table_s_settings_choose_the_columns_with_statistics() {
        let settings = |pairs: &[(&str, &str)]| {
            let configuration: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            StatsColumns::from_configuration(&configuration)
        };
        assert_eq!(settings(&[]).unwrap(), StatsColumns::First(32));
        assert_eq!(
            settings(&[("delta.dataSkippingNumIndexedCols", "-1")]).unwrap(),
            StatsColumns::All
        );
        let first_two = settings(&[("delta.dataSkippingNumIndexedCols", "2")]).unwrap();
        assert!(first_two.includes(1, "b") && !first_two.includes(2, "c"));
        let named = settings(&[
            ("delta.dataSkippingNumIndexedCols", "2"),
            ("delta.dataSkippingStatsColumns", "c, `d`"),
        ])
        .unwrap();
        assert!(named.includes(7, "d") && named.includes(2, "c") && !named.includes(0, "a"));
        assert!(settings(&[("delta.dataSkippingNumIndexedCols", "-2")]).is_err());
    }
}

use std::collections::HashMap;
use std::path::Path;

use bf_core::dates::date_from_days;
use bf_core::tables::{self, TableSpec};
use bf_core::{Interval, LastBar};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::log_check::{Damage, find_damage};
use crate::{LakeError, TableFiles};

/// The lake root and how to open its tables.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    /// Object-store settings for `s3://` lakes (empty on local disk).
    storage_options: HashMap<String, String>,
}

/// Rows of a query with their schema, which an empty result still has.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Lake {
    /// Opens the lake at `location`: a local folder (created if missing), a
    /// `file://` URL, or `s3://bucket/prefix` (see [`s3_options`]).
    pub fn open(location: &str) -> Result<Self, LakeError> {
        let location_error = |message: String| LakeError::Location {
            location: location.to_string(),
            message,
        };
        let mut storage_options = HashMap::new();
        let root = match Url::parse(location) {
            Ok(url) if url.scheme() == "file" => url,
            Ok(url) if url.scheme() == "s3" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(location_error("name the bucket: s3://bucket/prefix".into()));
                }
                storage_options = s3_options(std::env::vars());
                check_endpoint(&storage_options).map_err(location_error)?;
                url
            }
            Ok(url) if url.scheme().len() > 1 => {
                return Err(location_error(format!(
                    "the {} scheme is not supported; use a local folder or s3://bucket/prefix",
                    url.scheme()
                )));
            }
            // A bare path, or a Windows drive letter parsed as a scheme.
            _ => {
                let path = Path::new(location);
                std::fs::create_dir_all(path).map_err(|e| location_error(e.to_string()))?;
                let absolute =
                    std::fs::canonicalize(path).map_err(|e| location_error(e.to_string()))?;
                Url::from_directory_path(&absolute)
                    .map_err(|()| location_error("not an absolute path".into()))?
            }
        };
        let root = if root.path().ends_with('/') {
            root
        } else {
            Url::parse(&format!("{root}/")).map_err(|e| location_error(e.to_string()))?
        };
        Ok(Self {
            root,
            storage_options,
        })
    }

    /// A table at its latest version (or at `version`), with the lake's
    /// object-store settings.
    pub(crate) async fn open_table(
        &self,
        url: Url,
        version: Option<u64>,
    ) -> Result<DeltaTable, DeltaTableError> {
        let builder =
            DeltaTableBuilder::from_url(url)?.with_storage_options(self.storage_options.clone());
        let builder = match version {
            Some(version) => builder.with_version(version),
            None => builder,
        };
        builder.load().await
    }

    /// An unloaded handle on a table, for creating it.
    pub(crate) fn table_builder(&self, url: Url) -> Result<DeltaTableBuilder, DeltaTableError> {
        Ok(DeltaTableBuilder::from_url(url)?.with_storage_options(self.storage_options.clone()))
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub(crate) fn table_url(&self, spec: &TableSpec) -> Url {
        self.root
            .join(&format!("{}/", spec.name))
            .expect("table names are valid URL segments")
    }

    pub(crate) fn delta_error(&self, spec: &TableSpec, source: DeltaTableError) -> LakeError {
        if self.root.scheme() == "s3"
            && let Some(problem) = s3_problem(&format!("{source:?}"))
        {
            return LakeError::Store {
                bucket: self.root.host_str().unwrap_or_default().to_string(),
                endpoint: self
                    .storage_options
                    .get("AWS_ENDPOINT_URL")
                    .cloned()
                    .unwrap_or_else(|| "AWS S3 (no AWS_ENDPOINT_URL)".into()),
                problem: problem.to_string(),
            };
        }
        if let Some(problem) = storage_problem(&source) {
            return LakeError::Storage {
                location: self.table_url(spec).to_string(),
                problem,
            };
        }
        LakeError::Delta {
            table: spec.name.to_string(),
            location: self.table_url(spec).to_string(),
            source: Box::new(source),
        }
    }

    /// The table at its latest version, or `None` if nothing was written yet.
    pub async fn load(&self, spec: &TableSpec) -> Result<Option<DeltaTable>, LakeError> {
        let url = self.table_url(spec);
        if let Some(path) = local_path(&url)
            && !path.exists()
        {
            return Ok(None);
        }
        match self.open_table(url.clone(), None).await {
            Ok(table) => {
                let damage = find_damage(table.object_store().as_ref(), false).await;
                match damage {
                    Ok(Some(damage)) => Err(self.damaged(spec, damage)),
                    Ok(None) => Ok(Some(table)),
                    Err(e) => Err(self.delta_error(spec, e.into())),
                }
            }
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(source) => {
                // A log delta-rs cannot read: name the entry when one is damaged.
                let store = self
                    .table_builder(url)
                    .and_then(|builder| builder.build())
                    .map(|table| table.object_store());
                if let Ok(store) = store
                    && let Ok(Some(damage)) = find_damage(store.as_ref(), true).await
                {
                    return Err(self.damaged(spec, damage));
                }
                Err(self.delta_error(spec, source))
            }
        }
    }

    fn damaged(&self, spec: &TableSpec, damage: Damage) -> LakeError {
        LakeError::DamagedLog {
            table: spec.name.to_string(),
            entry: format!("{}{}", self.table_url(spec), damage.entry),
            version: damage.version,
            problem: damage.problem,
        }
    }

    /// The committed version of a table, `None` before its first write.
    pub async fn version(&self, spec: &TableSpec) -> Result<Option<u64>, LakeError> {
        Ok(self.load(spec).await?.and_then(|t| t.version()))
    }

    /// A DataFusion session with every existing lake table registered by name
    /// and every bf function (`bf_indicators::register`).
    pub async fn session(&self) -> Result<SessionContext, LakeError> {
        let ctx = SessionContext::new();
        bf_indicators::register(&ctx);
        // Loaded together: on object storage each load is several round trips.
        let tables = futures::future::try_join_all(tables::ALL.iter().map(|spec| self.load(spec)));
        for (spec, table) in tables::ALL.iter().zip(tables.await?) {
            if let Some(table) = table {
                register(&ctx, spec, &table).await?;
            }
        }
        Ok(ctx)
    }

    /// A session with only `spec` registered, and that version's files: one
    /// load of its log for readers that read some files on their own
    /// ([`register_data_files`](crate::register_data_files)). `None` before
    /// the table's first write.
    pub async fn table_session(
        &self,
        spec: &TableSpec,
    ) -> Result<Option<(SessionContext, TableFiles)>, LakeError> {
        let Some(table) = self.load(spec).await? else {
            return Ok(None);
        };
        let ctx = SessionContext::new();
        bf_indicators::register(&ctx);
        register(&ctx, spec, &table).await?;
        Ok(Some((ctx, self.files_of(spec, &table)?)))
    }

    /// Runs one SQL statement over the lake.
    pub async fn sql(&self, query: &str) -> Result<QueryResult, LakeError> {
        run_query(&self.session().await?, query).await
    }

    /// The last stored bar of every symbol at `interval`: where an incremental
    /// fetch starts, and what it checks for a re-adjusted history.
    pub async fn last_bars(
        &self,
        interval: Interval,
    ) -> Result<HashMap<String, LastBar>, LakeError> {
        use bf_core::tables::col;
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Date32Type, Float64Type, TimestampMicrosecondType};

        let spec = &tables::OHLCV;
        let Some(table) = self.load(spec).await? else {
            return Ok(HashMap::new());
        };
        let ctx = SessionContext::new();
        register(&ctx, spec, &table).await?;
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let in_interval = format!("\"{}\" = {}", col::INTERVAL, sql_literal(interval.as_str()));
        // `ts` orders bars of every interval (a daily bar's is its date). One
        // aggregation pass keeps a row per symbol: a join of the table with
        // its own maxima held the whole table (3.9 GB for 26 M bars).
        let query = format!(
            "SELECT {symbol}, last_value({date} ORDER BY {ts}), max({ts}), \
             last_value({close} ORDER BY {ts}), last_value({adj_close} ORDER BY {ts}) \
             FROM {table} WHERE {in_interval} GROUP BY {symbol}",
            symbol = col::SYMBOL,
            date = col::DATE,
            ts = col::TS,
            close = col::CLOSE,
            adj_close = col::ADJ_CLOSE,
            table = spec.name,
        );
        let batches = ctx
            .sql(&query)
            .await
            .map_err(scan_error)?
            .collect()
            .await
            .map_err(scan_error)?;
        let mut last = HashMap::new();
        for batch in batches {
            // DataFusion reads Delta strings as Utf8View.
            let symbols = datafusion::arrow::compute::cast(
                batch.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .map_err(|e| scan_error(e.into()))?;
            let symbols = symbols.as_string::<i32>();
            let dates = batch.column(1).as_primitive::<Date32Type>();
            let ts = batch.column(2).as_primitive::<TimestampMicrosecondType>();
            let close = batch.column(3).as_primitive::<Float64Type>();
            let adj_close = batch.column(4).as_primitive::<Float64Type>();
            for i in 0..batch.num_rows() {
                last.insert(
                    symbols.value(i).to_string(),
                    LastBar {
                        date: date_from_days(dates.value(i)),
                        ts: ts.value(i),
                        close: close.value(i),
                        adj_close: adj_close.value(i),
                    },
                );
            }
        }
        Ok(last)
    }
}

/// A write the storage refused (disk full, read-only, no permission), in
/// words: delta-rs reports such a failure of its Parquet writer as "Failed to
/// parse parquet".
fn storage_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use std::io::ErrorKind;
    let mut cause = Some(error);
    while let Some(current) = cause {
        let kind = current
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        let text = current.to_string();
        let problem = match kind {
            Some(ErrorKind::StorageFull) => Some("no space left on device"),
            Some(ErrorKind::ReadOnlyFilesystem) => Some("the file system is read-only"),
            Some(ErrorKind::PermissionDenied) => Some("permission denied"),
            Some(ErrorKind::QuotaExceeded) => Some("disk quota exceeded"),
            _ if text.contains("(os error 28)") => Some("no space left on device"),
            _ if text.contains("(os error 30)") => Some("the file system is read-only"),
            _ if text.contains("(os error 13)") => Some("permission denied"),
            _ if text.contains("(os error 122)") => Some("disk quota exceeded"),
            _ => None,
        };
        if let Some(problem) = problem {
            return Some(problem.to_string());
        }
        cause = current.source();
    }
    None
}

/// What went wrong talking to an S3 store, in words, when it is one of the
/// usual setup mistakes (the store's own message is long XML).
fn s3_problem(text: &str) -> Option<&'static str> {
    if text.contains("NoSuchBucket") {
        Some("the bucket does not exist; create it first (MinIO console, `mc mb`, `aws s3 mb`)")
    } else if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403 Forbidden",
    ]
    .iter()
    .any(|m| text.contains(m))
    {
        Some("access denied; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    } else if text.contains("NoSuchUpload") {
        Some(
            "the store lost an upload in progress (did it restart?); nothing was committed, run the command again",
        )
    } else if [
        "error sending request",
        "Connection refused",
        "dns error",
        "timed out",
    ]
    .iter()
    .any(|m| text.contains(m))
    {
        Some("cannot reach the endpoint; check AWS_ENDPOINT_URL and that the server runs")
    } else {
        None
    }
}

/// Object-store settings of an `s3://` lake, from the usual variables
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// any other `AWS_*`), plus what bf needs from every S3-compatible store:
/// conditional put with ETags, so that two writers can never both create the
/// same Delta log entry (the loser re-reads and retries); and plain HTTP allowed
/// when the endpoint is `http://` (a local MinIO).
pub fn s3_options(env: impl Iterator<Item = (String, String)>) -> HashMap<String, String> {
    let mut options: HashMap<String, String> =
        env.filter(|(key, _)| key.starts_with("AWS_")).collect();
    options
        .entry("AWS_CONDITIONAL_PUT".into())
        .or_insert_with(|| "etag".into());
    options
        .entry("AWS_REGION".into())
        .or_insert_with(|| "us-east-1".into());
    let plain_http = options
        .get("AWS_ENDPOINT_URL")
        .or_else(|| options.get("AWS_ENDPOINT"))
        .is_some_and(|endpoint| endpoint.starts_with("http://"));
    if plain_http {
        options
            .entry("AWS_ALLOW_HTTP".into())
            .or_insert_with(|| "true".into());
    }
    options
}

/// An endpoint object_store can use: it panics on one it cannot parse.
fn check_endpoint(options: &HashMap<String, String>) -> Result<(), String> {
    for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"] {
        let Some(endpoint) = options.get(variable) else {
            continue;
        };
        let valid = Url::parse(endpoint).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty())
        });
        if !valid {
            return Err(format!(
                "{variable} {endpoint:?} is not an http:// or https:// URL with a host \
                 (unset it for AWS S3, or set it like http://localhost:9000)"
            ));
        }
    }
    Ok(())
}

/// `it's` → `'it''s'`: a string literal for SQL that bf writes itself.
pub fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `WHERE symbol IN ('A', 'B')` for SQL over lake tables; empty for `None`
/// (every symbol). A list longer than [`PRUNED_IN_LIST`] also gets its range,
/// `AND symbol BETWEEN 'A' AND 'Z'`: scans skip files and row groups on that,
/// not on the list.
pub fn symbol_filter(symbols: Option<&[String]>) -> String {
    symbols.map_or_else(String::new, |symbols| {
        let symbol = tables::col::SYMBOL;
        let quoted: Vec<String> = symbols.iter().map(|s| sql_literal(s)).collect();
        let listed = format!("WHERE {symbol} IN ({})", quoted.join(", "));
        match symbol_span(symbols) {
            Some((low, high)) => format!("{listed} AND {}", symbol_range_condition(low, high)),
            None => listed,
        }
    })
}

/// The smallest and greatest of `symbols` when the list is too long for
/// scans to prune on (see [`symbol_filter`]); `None` for a shorter list.
pub fn symbol_span(symbols: &[String]) -> Option<(&str, &str)> {
    match (symbols.iter().min(), symbols.iter().max()) {
        (Some(low), Some(high)) if symbols.len() > PRUNED_IN_LIST => Some((low, high)),
        _ => None,
    }
}

/// `WHERE symbol BETWEEN 'A' AND 'Z'`: every symbol from `low` to `high`, a
/// comparison per row where an `IN` list costs a hash probe.
pub fn symbol_range_filter(low: &str, high: &str) -> String {
    format!("WHERE {}", symbol_range_condition(low, high))
}

fn symbol_range_condition(low: &str, high: &str) -> String {
    format!(
        "{} BETWEEN {} AND {}",
        tables::col::SYMBOL,
        sql_literal(low),
        sql_literal(high)
    )
}

/// The longest `IN` list DataFusion prunes Parquet files and row groups on
/// (`datafusion.execution.parquet.max_in_list_size`, 20 by default): at 25 M
/// rows each features group's read of 250 symbols scanned all of `ohlcv`.
const PRUNED_IN_LIST: usize = 20;

/// Runs one SQL statement bf wrote; errors carry DataFusion's message.
async fn run_query(ctx: &SessionContext, query: &str) -> Result<QueryResult, LakeError> {
    let frame = ctx.sql(query).await.map_err(LakeError::Query)?;
    let schema = SchemaRef::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(LakeError::Query)?;
    Ok(QueryResult { schema, batches })
}

/// The folder behind a `file://` URL; `None` for object stores.
pub(crate) fn local_path(url: &Url) -> Option<std::path::PathBuf> {
    (url.scheme() == "file")
        .then(|| url.to_file_path().ok())
        .flatten()
}

/// Registers a Delta table in a session under the table's name.
pub(crate) async fn register(
    ctx: &SessionContext,
    spec: &TableSpec,
    table: &DeltaTable,
) -> Result<(), LakeError> {
    let scan_error = |source| LakeError::Scan {
        table: spec.name.to_string(),
        source,
    };
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| scan_error(e.into()))?;
    let provider = table.table_provider().await.map_err(scan_error)?;
    ctx.register_table(spec.name, provider)
        .map_err(scan_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_symbol_lists_also_give_their_range() {
        let few: Vec<String> = vec!["B".into(), "A".into()];
        assert_eq!(symbol_filter(Some(&few)), "WHERE symbol IN ('B', 'A')");
        assert_eq!(symbol_filter(None), "");
        let many: Vec<String> = (0..=PRUNED_IN_LIST)
            .rev()
            .map(|i| format!("S{i:02}"))
            .collect();
        let filter = symbol_filter(Some(&many));
        assert!(
            filter.starts_with("WHERE symbol IN ('S20', 'S19'"),
            "{filter}"
        );
        assert!(
            filter.ends_with("'S00') AND symbol BETWEEN 'S00' AND 'S20'"),
            "{filter}"
        );
    }
}

use std::collections::HashMap;
use std::path::Path;

use bf_core::tables::{self, TableSpec};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use crate::LakeError;

/// The lake root and how to open its tables.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
}

/// Rows of a query with their schema, which an empty result still has.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Lake {
    /// Opens the lake at `location`: a local folder (created if missing) or a
    /// `file://` URL.
    pub fn open(location: &str) -> Result<Self, LakeError> {
        let location_error = |message: String| LakeError::Location {
            location: location.to_string(),
            message,
        };
        let root = match Url::parse(location) {
            Ok(url) if url.scheme() == "file" => url,
            Ok(url) if url.scheme().len() > 1 => {
                return Err(location_error(format!(
                    "the {} scheme is not supported; use a local folder",
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
        Ok(Self { root })
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
        match deltalake::open_table(url).await {
            Ok(table) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(source) => Err(self.delta_error(spec, source)),
        }
    }

    /// The committed version of a table, `None` before its first write.
    pub async fn version(&self, spec: &TableSpec) -> Result<Option<u64>, LakeError> {
        Ok(self.load(spec).await?.and_then(|t| t.version()))
    }

    /// A DataFusion session with every existing lake table registered by name.
    pub async fn session(&self) -> Result<SessionContext, LakeError> {
        let ctx = SessionContext::new();
        for spec in tables::ALL {
            if let Some(table) = self.load(spec).await? {
                register(&ctx, spec, &table).await?;
            }
        }
        Ok(ctx)
    }

    /// Runs one SQL statement over the lake.
    pub async fn sql(&self, query: &str) -> Result<QueryResult, LakeError> {
        run_query(&self.session().await?, query).await
    }

    /// The last stored bar of every symbol at `interval`: where an incremental
    /// fetch starts, and what it checks for a re-adjusted history.
    pub async fn last_bars(&self, interval: &str) -> Result<HashMap<String, LastBar>, LakeError> {
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
        let in_interval = format!("\"{}\" = '{}'", col::INTERVAL, interval.replace('\'', "''"));
        // `ts` orders bars of every interval (a daily bar's is its date).
        let query = format!(
            "SELECT o.{symbol}, o.{date}, o.{ts}, o.{close}, o.{adj_close} FROM {table} o \
             JOIN (SELECT {symbol}, max({ts}) AS last_ts FROM {table} WHERE {in_interval} GROUP BY {symbol}) m \
             ON o.{symbol} = m.{symbol} AND o.{ts} = m.last_ts WHERE o.{in_interval}",
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
                        date: dates.value(i),
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

/// A symbol's last stored bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastBar {
    /// Days since 1970-01-01.
    pub date: i32,
    /// Microseconds since the epoch, UTC.
    pub ts: i64,
    pub close: f64,
    pub adj_close: f64,
}

/// `WHERE symbol IN ('A', 'B')` for SQL over lake tables; empty for `None`
/// (every symbol).
pub fn symbol_filter(symbols: Option<&[String]>) -> String {
    symbols.map_or_else(String::new, |symbols| {
        let quoted: Vec<String> = symbols
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "''")))
            .collect();
        format!("WHERE {} IN ({})", tables::col::SYMBOL, quoted.join(", "))
    })
}

/// Runs one SQL statement in a session (for sessions with functions added, such
/// as bf's indicators); errors are the user's, with DataFusion's message.
pub async fn run_query(ctx: &SessionContext, query: &str) -> Result<QueryResult, LakeError> {
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

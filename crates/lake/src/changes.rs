//! Which series changed between two versions of a table, read from the Delta
//! log rather than from clocks: rows in files added since the old version that
//! are not identical to a row in a file removed since then.
//!
//! An append adds files holding only new rows; a MERGE removes the files it
//! touched and adds rewritten copies, whose unchanged rows cancel against the
//! removed originals; a compaction cancels out entirely.

use std::collections::HashMap;
use std::sync::Arc;

use bf_core::tables::{TableSpec, col};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;

use crate::upsert::file_paths;
use crate::{Lake, LakeError};

/// A (symbol, interval) pair.
pub type Series = (String, String);

/// Changed series with the first date (days since 1970-01-01) whose row was
/// added or changed: rows before it are as they were.
pub type ChangedSeries = HashMap<Series, i32>;

impl Lake {
    /// The (symbol, interval) series of `spec` whose rows were added or changed
    /// after `version` (key and value columns compared; provenance ignored), each
    /// with its first changed date.
    pub async fn changed_series_since(
        &self,
        spec: &TableSpec,
        version: u64,
    ) -> Result<ChangedSeries, LakeError> {
        let Some(now) = self.load(spec).await? else {
            return Ok(HashMap::new());
        };
        if now.version() == Some(version) {
            return Ok(HashMap::new());
        }
        let then = self
            .open_table(self.table_url(spec), Some(version))
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        let (now_files, then_files) = (file_paths(&now), file_paths(&then));
        let added: Vec<&String> = now_files.difference(&then_files).collect();
        let removed: Vec<&String> = then_files.difference(&now_files).collect();
        if added.is_empty() {
            return Ok(HashMap::new());
        }
        let scan_error = |source| LakeError::Scan {
            table: spec.name.to_string(),
            source,
        };
        let ctx = SessionContext::new();
        now.update_datafusion_session(&ctx.state())
            .map_err(|e| scan_error(e.into()))?;
        register_files(&ctx, spec, &now, "added", &added).map_err(scan_error)?;
        let columns: Vec<String> = spec
            .key
            .iter()
            .copied()
            .chain(spec.value_columns())
            .map(|c| format!("\"{c}\""))
            .collect();
        let columns = columns.join(", ");
        let series = format!("{}, \"{}\", min({})", col::SYMBOL, col::INTERVAL, col::DATE);
        let exact = format!(
            "SELECT {series} FROM (SELECT {columns} FROM added EXCEPT SELECT {columns} FROM removed) GROUP BY 1, 2"
        );
        let all_added = format!("SELECT {series} FROM added GROUP BY 1, 2");
        if removed.is_empty() {
            return series_of(&ctx, &all_added).await.map_err(scan_error);
        }
        register_files(&ctx, spec, &now, "removed", &removed).map_err(scan_error)?;
        match series_of(&ctx, &exact).await {
            Ok(changed) => Ok(changed),
            // Removed files can be gone (vacuum); then every series in the
            // added files counts as changed, which costs time but misses nothing.
            Err(error) => {
                tracing::warn!(table = spec.name, %error, "files removed since version {version} are unreadable; treating all rewritten series as changed");
                series_of(&ctx, &all_added).await.map_err(scan_error)
            }
        }
    }
}

/// Registers the given data files of a table as one Parquet table named `name`.
fn register_files(
    ctx: &SessionContext,
    spec: &TableSpec,
    table: &DeltaTable,
    name: &str,
    files: &[&String],
) -> Result<(), DataFusionError> {
    let root = table.table_url();
    let urls = files
        .iter()
        .map(|path| {
            let url = root
                .join(path)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            ListingTableUrl::parse(url.as_str())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
        .with_schema(spec.schema());
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

async fn series_of(ctx: &SessionContext, query: &str) -> Result<ChangedSeries, DataFusionError> {
    let mut series = HashMap::new();
    for batch in ctx.sql(query).await?.collect().await? {
        let symbols = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let intervals = datafusion::arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
        let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
        let first_dates = batch.column(2).as_primitive::<Date32Type>();
        for row in 0..batch.num_rows() {
            series.insert(
                (
                    symbols.value(row).to_string(),
                    intervals.value(row).to_string(),
                ),
                first_dates.value(row),
            );
        }
    }
    Ok(series)
}

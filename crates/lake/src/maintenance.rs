//! Table maintenance: compaction (optionally Z-ordered by symbol and date) and
//! vacuum of files no version within the retention still needs.

use bf_core::tables::{TableSpec, col};
use deltalake::operations::optimize::OptimizeType;

use crate::upsert::writer_properties;
use crate::{Lake, LakeError};

/// What `optimize` did to one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OptimizeReport {
    pub table: String,
    pub files_removed: u64,
    pub files_added: u64,
    /// The version after the compaction commit (unchanged if nothing to do).
    pub version: Option<u64>,
}

/// What `vacuum` did to one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VacuumReport {
    pub table: String,
    pub files_deleted: usize,
    pub dry_run: bool,
}

impl Lake {
    /// Rewrites the table's small files into large ones in one commit, sorted
    /// along a Z-order curve of (symbol, date) when `zorder`, so queries on a
    /// symbol or a date range skip more row groups. `None` if the table does
    /// not exist yet.
    pub async fn optimize(
        &self,
        spec: &TableSpec,
        zorder: bool,
    ) -> Result<Option<OptimizeReport>, LakeError> {
        let Some(table) = self.load(spec).await? else {
            return Ok(None);
        };
        let kind = if zorder {
            OptimizeType::ZOrder(vec![col::SYMBOL.to_string(), col::DATE.to_string()])
        } else {
            OptimizeType::Compact
        };
        let (table, metrics) = table
            .optimize()
            .with_type(kind)
            .with_writer_properties(writer_properties(spec))
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        Ok(Some(OptimizeReport {
            table: spec.name.to_string(),
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
            version: table.version(),
        }))
    }

    /// Deletes data files that no table version of the last `retain_hours`
    /// refers to (time travel to older versions ends there).
    pub async fn vacuum(
        &self,
        spec: &TableSpec,
        retain_hours: u64,
        dry_run: bool,
    ) -> Result<Option<VacuumReport>, LakeError> {
        let Some(table) = self.load(spec).await? else {
            return Ok(None);
        };
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retain_hours as i64))
            // The user chose the retention; Delta's 7-day floor is for
            // readers that bf does not have.
            .with_enforce_retention_duration(false)
            .with_dry_run(dry_run)
            .await
            .map_err(|e| self.delta_error(spec, e))?;
        Ok(Some(VacuumReport {
            table: spec.name.to_string(),
            files_deleted: metrics.files_deleted.len(),
            dry_run,
        }))
    }
}

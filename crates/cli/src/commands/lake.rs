//! `bf lake optimize | vacuum`.

use bf_core::tables;
use bf_lake::Lake;

use super::Outcome;
use crate::args::{GlobalArgs, LakeCommand};
use crate::present::{Printer, count_text};

pub async fn run(
    command: LakeCommand,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    match command {
        LakeCommand::Optimize { zorder } => {
            let mut reports = Vec::new();
            for spec in tables::ALL {
                reports.extend(lake.optimize(spec, zorder).await?);
            }
            if printer.json() {
                printer.json_value(&reports)?;
                return Ok(Outcome::Success);
            }
            let rows = reports
                .iter()
                .map(|r| {
                    vec![
                        r.table.clone(),
                        count_text(r.files_removed as usize),
                        count_text(r.files_added as usize),
                        r.version.map_or_else(String::new, |v| v.to_string()),
                    ]
                })
                .collect();
            printer.table(
                &["table", "files removed", "files added", "version"],
                &["files removed", "files added", "version"],
                rows,
            )?;
            printer.summary(if zorder {
                "compacted, Z-ordered by (symbol, date); old files stay until `bf lake vacuum`"
            } else {
                "compacted; old files stay until `bf lake vacuum`"
            });
        }
        LakeCommand::Vacuum {
            retain_hours,
            dry_run,
        } => {
            let mut reports = Vec::new();
            for spec in tables::ALL {
                reports.extend(lake.vacuum(spec, retain_hours, dry_run).await?);
            }
            if printer.json() {
                printer.json_value(&reports)?;
                return Ok(Outcome::Success);
            }
            let header = if dry_run {
                "files to delete"
            } else {
                "files deleted"
            };
            let rows = reports
                .iter()
                .map(|r| vec![r.table.clone(), count_text(r.files_deleted)])
                .collect();
            printer.table(&["table", header], &[header], rows)?;
            printer.summary(&format!(
                "kept every file a version of the last {retain_hours} hours uses{}",
                if dry_run {
                    " (dry run: nothing deleted)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(Outcome::Success)
}

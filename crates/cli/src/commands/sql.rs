//! `bf sql "SELECT …"`.

use bf_lake::Lake;

use super::Outcome;
use crate::args::{GlobalArgs, SqlArgs};
use crate::present::Printer;

pub async fn run(args: SqlArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    let result = lake.sql(&args.query).await?;
    let format = if printer.json() {
        crate::args::OutputFormat::Json
    } else {
        args.format
    };
    printer.batches(format, &result.schema, &result.batches)?;
    Ok(Outcome::Success)
}

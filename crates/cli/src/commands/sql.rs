//! `bf sql "SELECT …"` and `bf sql --functions`.

use bf_indicators::functions;
use bf_lake::{Lake, run_read_only};

use super::Outcome;
use crate::args::{GlobalArgs, OutputFormat, SqlArgs};
use crate::present::{Printer, TableRowLimit};

pub async fn run(args: SqlArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    if args.functions {
        return functions(printer);
    }
    let query = args
        .query
        .expect("clap requires a query without --functions");
    let lake = Lake::open(&global.lake)?;
    let rows = match super::cluster::connect(&args.cluster).await? {
        Some(cluster) => bf_cluster::sql::query(&cluster, &lake, &query).await?,
        None => run_read_only(&lake.session().await?, &query).await?,
    };
    let format = if printer.json() {
        OutputFormat::Json
    } else {
        args.format
    };
    printer
        .query_rows(format, rows, TableRowLimit(args.max_rows))
        .await?;
    Ok(Outcome::Success)
}

#[derive(Debug, serde::Serialize)]
struct FunctionDoc {
    function: String,
    description: &'static str,
}

fn functions(printer: &Printer) -> anyhow::Result<Outcome> {
    let (prev, prev_description) = bf_indicators::prev::USAGE;
    let docs: Vec<FunctionDoc> = functions::functions()
        .iter()
        .map(|f| FunctionDoc {
            function: f.usage(),
            description: f.description,
        })
        .chain(std::iter::once(FunctionDoc {
            function: prev.to_string(),
            description: prev_description,
        }))
        .collect();
    if printer.json() {
        printer.json_value(&docs)?;
        return Ok(Outcome::Success);
    }
    let rows = docs
        .into_iter()
        .map(|d| vec![d.function, d.description.to_string()])
        .collect();
    printer.table(&["function", "description"], &[], rows)?;
    printer.summary(
        "window functions: call as f(...) OVER (PARTITION BY symbol ORDER BY date); \
         parameters are constant positive integers; null where the lookback is not met",
    );
    Ok(Outcome::Success)
}

//! Signal generation: one DataFusion query builds the frame (features, any
//! extra series the strategies need, and the previous row of every column),
//! decides every strategy's side per row in a single pass, keeps the rows where
//! something fired, and only then computes strengths and inputs.

use std::collections::BTreeSet;
use std::sync::Arc;

use bf_core::tables::{FEATURE_COLUMNS, FEATURES, SIGNALS, col, side};
use bf_lake::{Lake, UpsertMetrics, symbol_filter};
use datafusion::arrow::array::{
    ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{cast, filter, is_not_null};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::ExprSchemable;
use datafusion::prelude::{SessionContext, col as column_expr, lit};

use crate::SignalsError;
use crate::strategy::{CompiledStrategy, ComputedSeries, Strategies};

const WINDOW: &str = "OVER (PARTITION BY symbol, \"interval\" ORDER BY date)";

/// Strategies checked against the features schema and ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    compiled: Vec<CompiledStrategy>,
    /// The strategies file, to name in errors found only at run time.
    path: String,
}

impl Plan {
    pub fn strategy_names(&self) -> Vec<&str> {
        self.compiled.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Checks every strategy before any work (syntax, unknown columns, conditions
/// that are not boolean), naming the strategy and file at fault.
pub async fn prepare(strategies: &Strategies) -> Result<Plan, SignalsError> {
    let ctx = SessionContext::new();
    bf_indicators::register(&ctx);
    let empty = MemTable::try_new(FEATURES.schema(), vec![vec![]]).map_err(SignalsError::Query)?;
    ctx.register_table(FEATURES.name, Arc::new(empty))
        .map_err(SignalsError::Query)?;
    let mut compiled = Vec::new();
    for strategy in &strategies.strategies {
        let mut one = strategy.compile();
        let fail = |message: String| strategies.error(&strategy.name, message);
        let frame = ctx
            .sql(&format!(
                "{} SELECT * FROM frame",
                frame_sql(std::slice::from_ref(&one), "", None)
            ))
            .await
            .map_err(|e| fail(first_line(&e.to_string())))?;
        let schema = frame.schema().clone();
        let mut referenced = BTreeSet::new();
        for (what, sql) in [
            ("buy", &one.buy),
            ("sell", &one.sell),
            ("strength", &one.buy_strength),
            ("strength", &one.sell_strength),
        ] {
            bf_lake::check_expression_size(sql).map_err(|e| fail(format!("{what}: {e}")))?;
            let expr = frame
                .parse_sql_expr(sql)
                .map_err(|e| fail(format!("{what}: {}", first_line(&e.to_string()))))?;
            let data_type = expr
                .get_type(&schema)
                .map_err(|e| fail(format!("{what}: {}", first_line(&e.to_string()))))?;
            let wanted_boolean = what != "strength";
            if wanted_boolean && data_type != DataType::Boolean {
                return Err(fail(format!("{what} is {data_type}, not a condition")));
            }
            if !wanted_boolean && !data_type.is_numeric() {
                return Err(fail(format!("strength is {data_type}, not a number")));
            }
            referenced.extend(
                expr.column_refs()
                    .into_iter()
                    .map(|c| c.name.trim_start_matches("prev_").to_string()),
            );
        }
        if one.inputs.is_empty() {
            one.inputs = referenced.iter().cloned().collect();
        }
        one.columns = referenced.into_iter().chain(one.inputs.clone()).collect();
        // The whole query must plan too (e.g. a condition using a window function).
        ctx.sql(&signals_sql(std::slice::from_ref(&one), ""))
            .await
            .map_err(|e| fail(first_line(&e.to_string())))?;
        compiled.push(one);
    }
    Ok(Plan {
        compiled,
        path: strategies.path.clone(),
    })
}

/// The run that produced a signal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunStamp {
    pub run_id: String,
    /// Microseconds since the Unix epoch, UTC.
    pub generated_at: i64,
}

impl RunStamp {
    /// A run starting now, named after its time.
    pub fn now() -> Self {
        let generated_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Self {
            run_id: format!("run-{generated_at:x}"),
            generated_at,
        }
    }
}

/// Stores the signals `generate` produced for `symbols` (all when `None`) under
/// `plan`, in one commit: new and changed signals are upserted, and stored
/// signals of these symbols and strategies that no longer fire (after a data
/// correction or a change of parameters) are deleted.
pub async fn store(
    lake: &Lake,
    plan: &Plan,
    symbols: Option<&[String]>,
    batches: Vec<RecordBatch>,
) -> Result<UpsertMetrics, SignalsError> {
    let names = plan.strategy_names().into_iter().map(lit).collect();
    let scope = column_expr(col::STRATEGY).in_list(names, false);
    let scope = match symbols {
        Some(symbols) => column_expr(col::SYMBOL)
            .in_list(symbols.iter().map(|s| lit(s.as_str())).collect(), false)
            .and(scope),
        None => scope,
    };
    Ok(lake.upsert_replacing(&SIGNALS, batches, scope).await?)
}

/// Signals of every strategy for the given symbols (all when `None`), as
/// batches in the `signals` schema.
pub async fn generate(
    lake: &Lake,
    plan: &Plan,
    symbols: Option<&[String]>,
    run: &RunStamp,
) -> Result<Vec<RecordBatch>, SignalsError> {
    generate_in_groups(lake, plan, symbols, run, GROUP_ROWS).await
}

/// [`generate`], reading at most about `group_rows` features rows per query.
async fn generate_in_groups(
    lake: &Lake,
    plan: &Plan,
    symbols: Option<&[String]>,
    run: &RunStamp,
    group_rows: usize,
) -> Result<Vec<RecordBatch>, SignalsError> {
    let ctx = lake.session().await?;
    if !ctx
        .table_exist(FEATURES.name)
        .map_err(SignalsError::Query)?
    {
        return Err(SignalsError::NoFeatures);
    }
    let names = plan.strategy_names();
    let mut out = Vec::new();
    for group in symbol_groups(lake, &ctx, symbols, group_rows).await? {
        let filter = symbol_filter(group.as_deref());
        let fired = match collect(&ctx, &signals_sql(&plan.compiled, &filter)).await {
            Ok(fired) => fired,
            Err(error) => return Err(blame(&ctx, plan, &filter, error).await),
        };
        for batch in &fired {
            out.extend(signal_batches(&names, batch, run)?);
        }
    }
    Ok(out)
}

/// Features rows one signals query reads at most. The query sorts its rows
/// and holds every column with its previous value: about 11 GB at 25 M rows
/// in one query, a few hundred MiB per group of this size.
pub const GROUP_ROWS: usize = 2_500_000;

/// The symbols of each signals query: `symbols` as given (every symbol when
/// `None`) while `features` holds at most `group_rows` rows, else whole
/// symbols packed into groups of about that many rows.
async fn symbol_groups(
    lake: &Lake,
    ctx: &SessionContext,
    symbols: Option<&[String]>,
    group_rows: usize,
) -> Result<Vec<Option<Vec<String>>>, SignalsError> {
    let one_query = vec![symbols.map(<[String]>::to_vec)];
    // The file statistics say the table's size without reading it.
    let stored = lake.table_files(&FEATURES).await?.map(|table| {
        table
            .files
            .iter()
            .map(|f| f.rows.map_or(usize::MAX, |n| n as usize))
            .fold(0usize, usize::saturating_add)
    });
    if stored.is_none_or(|rows| rows <= group_rows) {
        return Ok(one_query);
    }
    let query = format!(
        "SELECT {s}, count(*) FROM {t} {filter} GROUP BY {s} ORDER BY {s}",
        s = col::SYMBOL,
        t = FEATURES.name,
        filter = symbol_filter(symbols)
    );
    let counted = collect(ctx, &query).await.map_err(SignalsError::Query)?;
    let mut rows_per_symbol = Vec::new();
    for batch in &counted {
        let names = cast(batch.column(0), &DataType::Utf8).map_err(arrow_error)?;
        let counts = cast(batch.column(1), &DataType::Int64).map_err(arrow_error)?;
        let (names, counts) = (names.as_string::<i32>(), counts.as_primitive::<Int64Type>());
        for row in 0..batch.num_rows() {
            rows_per_symbol.push((names.value(row).to_string(), counts.value(row) as usize));
        }
    }
    Ok(bf_core::row_groups(rows_per_symbol, group_rows)
        .into_iter()
        .map(Some)
        .collect())
}

/// The query that finds, over a `features` table, the rows where any of the
/// plan's strategies fired, for `symbols` (all when `None`); its result
/// becomes signals through [`signal_batches`].
pub fn fired_rows_sql(plan: &Plan, symbols: Option<&[String]>) -> String {
    signals_sql(&plan.compiled, &symbol_filter(symbols))
}

/// The signals (the `signals` schema, one batch per strategy that fired) in a
/// batch of [`fired_rows_sql`]'s result; `names` are the plan's strategies
/// in order.
pub fn signal_batches<S: AsRef<str>>(
    names: &[S],
    fired: &RecordBatch,
    run: &RunStamp,
) -> Result<Vec<RecordBatch>, SignalsError> {
    let mut out = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let signals = strategy_rows(fired, index, name.as_ref(), run)?;
        if signals.num_rows() > 0 {
            out.push(signals);
        }
    }
    Ok(out)
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    ctx.sql(sql).await?.collect().await
}

/// A query that planned but failed on the data (a strength dividing by zero)
/// is run again strategy by strategy, so the error names the one at fault.
async fn blame(
    ctx: &SessionContext,
    plan: &Plan,
    filter: &str,
    error: DataFusionError,
) -> SignalsError {
    for strategy in &plan.compiled {
        if let Err(own) = collect(ctx, &signals_sql(std::slice::from_ref(strategy), filter)).await {
            return SignalsError::Strategy {
                path: plan.path.clone(),
                name: strategy.name.clone(),
                message: format!("fails on the lake's data: {}", first_line(&own.to_string())),
            };
        }
    }
    SignalsError::Query(error)
}

/// One strategy's fired rows of a result batch, in the `signals` schema.
fn strategy_rows(
    batch: &RecordBatch,
    index: usize,
    name: &str,
    run: &RunStamp,
) -> Result<RecordBatch, SignalsError> {
    let column = |name: &str| batch.column_by_name(name).expect("signals query column");
    let fired = is_not_null(column(&format!("side_{index}"))).map_err(arrow_error)?;
    let n = fired.true_count();
    let keep = |array: &ArrayRef, data_type: &DataType| -> Result<ArrayRef, SignalsError> {
        cast(&filter(array, &fired).map_err(arrow_error)?, data_type).map_err(arrow_error)
    };
    let columns = SIGNALS
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let data_type = field.data_type();
            let array: ArrayRef = match field.name().as_str() {
                col::STRATEGY => {
                    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(name, n)))
                }
                col::RUN_ID => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    run.run_id.as_str(),
                    n,
                ))),
                col::GENERATED_AT => Arc::new(
                    TimestampMicrosecondArray::from(vec![run.generated_at; n]).with_timezone("UTC"),
                ),
                col::SIDE => keep(column(&format!("side_{index}")), data_type)?,
                col::STRENGTH => keep(column(&format!("strength_{index}")), data_type)?,
                col::INPUTS => keep(column(&format!("inputs_{index}")), data_type)?,
                col::PRICE => keep(column("close"), data_type)?,
                other => keep(column(other), data_type)?,
            };
            Ok(array)
        })
        .collect::<Result<Vec<ArrayRef>, SignalsError>>()?;
    RecordBatch::try_new(SIGNALS.schema(), columns).map_err(arrow_error)
}

fn arrow_error(e: datafusion::arrow::error::ArrowError) -> SignalsError {
    SignalsError::Query(e.into())
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

/// The stored numeric columns of `features` the frame offers.
fn stored_columns() -> impl Iterator<Item = &'static str> {
    [
        col::ADJ_OPEN,
        col::ADJ_HIGH,
        col::ADJ_LOW,
        col::ADJ_CLOSE,
        col::VOLUME,
    ]
    .into_iter()
    .chain(FEATURE_COLUMNS)
}

/// The numeric columns of the frame: every stored value, `close`, and the
/// series strategies compute.
fn frame_columns(computed: &[ComputedSeries]) -> Vec<String> {
    std::iter::once("close")
        .chain(stored_columns())
        .map(str::to_string)
        .chain(computed.iter().map(|c| c.name.clone()))
        .collect()
}

/// `WITH base AS (…), frame AS (…)`: the features rows with `close`, the
/// computed series, and `prev_<column>` for every numeric column — or, given
/// `used`, only for those columns (each LAG costs a pass over every row).
fn frame_sql(
    strategies: &[CompiledStrategy],
    filter: &str,
    used: Option<&BTreeSet<String>>,
) -> String {
    let wanted = |name: &str| used.is_none_or(|used| used.contains(name));
    let mut computed: Vec<ComputedSeries> = Vec::new();
    for series in strategies.iter().flat_map(|s| &s.computed) {
        if !computed.iter().any(|c| c.name == series.name) {
            computed.push(series.clone());
        }
    }
    let stored: Vec<String> = stored_columns()
        .filter(|c| wanted(c))
        .map(str::to_string)
        .collect();
    let base: Vec<String> = ["symbol", "\"interval\"", "date", "adj_close AS close"]
        .into_iter()
        .map(str::to_string)
        .chain(stored)
        .chain(
            computed
                .iter()
                .filter(|c| wanted(&c.name))
                .map(|c| format!("{} {WINDOW} AS {}", c.call, c.name)),
        )
        .collect();
    let lags: Vec<String> = frame_columns(&computed)
        .iter()
        .filter(|c| wanted(c))
        .map(|c| format!("prev({c}) {WINDOW} AS prev_{c}"))
        .collect();
    format!(
        "WITH base AS (SELECT {} FROM {} {filter}), frame AS (SELECT *, {} FROM base)",
        base.join(", "),
        FEATURES.name,
        lags.join(", ")
    )
}

/// The whole query: each strategy's side per row (BUY or SELL when exactly
/// one of its conditions is true, else null), the rows where any fired, and
/// for those the clamped strength and the inputs as a JSON object.
fn signals_sql(strategies: &[CompiledStrategy], filter: &str) -> String {
    let used: BTreeSet<String> = strategies
        .iter()
        .flat_map(|s| s.columns.iter().cloned())
        .chain(["close".to_string()])
        .collect();
    let sides: Vec<String> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "CASE WHEN ({buy}) IS TRUE AND NOT (({sell}) IS TRUE) THEN '{b}' \
                 WHEN ({sell}) IS TRUE AND NOT (({buy}) IS TRUE) THEN '{s}' END AS side_{i}",
                buy = s.buy,
                sell = s.sell,
                b = side::BUY,
                s = side::SELL
            )
        })
        .collect();
    let any_fired: Vec<String> = (0..strategies.len())
        .map(|i| format!("side_{i} IS NOT NULL"))
        .collect();
    let outputs: Vec<String> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let strength = format!(
                "greatest(0.0, least(1.0, coalesce(CAST(CASE WHEN side_{i} = '{b}' THEN ({bs}) ELSE ({ss}) END AS DOUBLE), 0.0))) AS strength_{i}",
                b = side::BUY,
                bs = s.buy_strength,
                ss = s.sell_strength
            );
            format!("side_{i}, {strength}, {} AS inputs_{i}", inputs_json(&s.inputs))
        })
        .collect();
    format!(
        "{frame}, sides AS (SELECT *, {sides} FROM frame), fired AS (SELECT * FROM sides WHERE {any}) \
         SELECT symbol, \"interval\", date, close, {outputs} FROM fired",
        frame = frame_sql(strategies, filter, Some(&used)),
        sides = sides.join(", "),
        any = any_fired.join(" OR "),
        outputs = outputs.join(", ")
    )
}

/// `{"sma_20": 101.2, "prev_sma_20": 100.9, …}` built in SQL; nulls as null.
fn inputs_json(columns: &[String]) -> String {
    if columns.is_empty() {
        return "'{}'".into();
    }
    let parts: Vec<String> = columns
        .iter()
        .flat_map(|c| [c.clone(), format!("prev_{c}")])
        .map(|c| format!("'\"{c}\":', coalesce(CAST({c} AS VARCHAR), 'null')"))
        .collect();
    format!("concat('{{', {}, '}}')", parts.join(", ',', "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategies;

    async fn prepare_error(toml: &str) -> String {
        let strategies = Strategies::parse(toml, "mine.toml").unwrap();
        prepare(&strategies).await.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn signals_generated_in_groups_of_symbols_equal_one_query() {
        use bf_core::Symbol;
        use bf_core::tables::OHLCV;
        use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
        use bf_sources::{ActionsBuilder, BarsBuilder};
        use chrono::NaiveDate;

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
        let mut actions = ActionsBuilder::new(SOURCE_NAME, 1);
        for symbol in ["AAA", "BBB", "CCC"] {
            Synthetic::new(11).generate(
                &Symbol::parse(symbol).unwrap(),
                NaiveDate::from_ymd_opt(2018, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
                &mut bars,
                &mut actions,
            );
        }
        lake.upsert(&OHLCV, vec![bars.finish()]).await.unwrap();
        bf_features::build::build(&lake, &Default::default(), &())
            .await
            .unwrap();
        let plan = prepare(&Strategies::builtin()).await.unwrap();
        let run = RunStamp::now();
        let sorted = |batches: Vec<RecordBatch>| {
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let one = generate_in_groups(&lake, &plan, None, &run, usize::MAX)
            .await
            .unwrap();
        assert!(one.iter().map(RecordBatch::num_rows).sum::<usize>() > 100);
        // A budget below one symbol's rows: one query per symbol.
        let grouped = generate_in_groups(&lake, &plan, None, &run, 10)
            .await
            .unwrap();
        assert_eq!(sorted(one), sorted(grouped));
    }

    #[tokio::test]
    async fn builtins_prepare() {
        let plan = prepare(&Strategies::builtin()).await.unwrap();
        assert_eq!(plan.strategy_names().len(), 5);
    }

    #[tokio::test]
    async fn bad_user_strategies_fail_before_any_work() {
        let sql = |buy: &str| {
            format!(
                "[[strategy]]\nname = \"mine\"\nrule = \"sql\"\nbuy = \"{buy}\"\nsell = \"rsi_14 > 70\"\n"
            )
        };
        let syntax = prepare_error(&sql("rsi_14 <")).await;
        assert!(
            syntax.starts_with("strategies file mine.toml: strategy \"mine\": buy:"),
            "{syntax}"
        );
        let unknown = prepare_error(&sql("rsi_99 < 20")).await;
        assert!(unknown.contains("rsi_99"), "{unknown}");
        let number = prepare_error(&sql("rsi_14 + 1")).await;
        assert!(
            number.contains("buy is Float64, not a condition"),
            "{number}"
        );
    }

    #[tokio::test]
    async fn user_inputs_are_the_referenced_columns() {
        let toml = "[[strategy]]\nname = \"mine\"\nrule = \"sql\"\n\
                    buy = \"rsi_14 < 25 AND close > sma_200\"\n\
                    sell = \"prev_macd > prev_macd_signal AND macd <= macd_signal\"\n";
        let plan = prepare(&Strategies::parse(toml, "mine.toml").unwrap())
            .await
            .unwrap();
        assert_eq!(
            plan.compiled[0].inputs,
            ["close", "macd", "macd_signal", "rsi_14", "sma_200"]
        );
    }
}

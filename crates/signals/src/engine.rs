//! Signal generation: the frame's rows are read in (symbol, interval, date)
//! order, cut into whole series, and each strategy's conditions are evaluated
//! as DataFusion physical expressions over those arrays; strengths and inputs
//! are computed only on the rows where a strategy fired.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;
use std::sync::Arc;

use bf_core::tables::{FEATURES, SIGNALS, col, side};
use bf_lake::{
    Lake, Series, SymbolRange, TableFiles, register_data_files, sql_literal, symbol_filter,
};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, UInt32Array,
};
use datafusion::arrow::compute::kernels::boolean::and_not;
use datafusion::arrow::compute::{
    FilterBuilder, cast, concat_batches, filter_record_batch, prep_null_mask_filter, take,
};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_plan::{PhysicalExpr, execute_stream_partitioned};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::SignalsError;
use crate::crossing::Crossing;
use crate::error::arrow_error;
use crate::frame::{
    Frame, FrameRows, SeriesKey, WholeSeries, joined_series, series_in_date_order, series_ranges,
};
use crate::strategy::{CompiledStrategy, Strategies};

/// One strategy ready to run over frame batches.
#[derive(Debug, Clone)]
struct Evaluator {
    name: String,
    buy: Condition,
    sell: Condition,
    /// Over the fired columns.
    buy_strength: Arc<dyn PhysicalExpr>,
    sell_strength: Arc<dyn PhysicalExpr>,
    /// Frame columns recorded in `inputs`, with their previous-row values.
    inputs: Vec<String>,
    fired: FiredColumns,
}

/// The frame columns filtered in the rows where a strategy fired: the
/// signal's key and price, and its strengths' columns. Only these are
/// filtered, and the strengths are evaluated over them.
#[derive(Debug, Clone)]
struct FiredColumns {
    /// Their indices in the frame.
    columns: Vec<usize>,
    schema: SchemaRef,
}

impl FiredColumns {
    /// The columns `strengths` (over `frame`) need, and the strengths
    /// rewritten over those columns alone.
    fn new(
        frame: &SchemaRef,
        strengths: [Arc<dyn PhysicalExpr>; 2],
    ) -> Result<(Self, [Arc<dyn PhysicalExpr>; 2]), DataFusionError> {
        let mut read: Vec<bool> = frame
            .fields()
            .iter()
            .map(|field| {
                [col::SYMBOL, col::INTERVAL, col::DATE, "close"].contains(&field.name().as_str())
            })
            .collect();
        for column in strengths.iter().flat_map(collect_columns) {
            read[column.index()] = true;
        }
        let columns: Vec<usize> = (0..read.len()).filter(|&index| read[index]).collect();
        let schema = Arc::new(frame.project(&columns)?);
        let [buy, sell] = strengths.map(|strength| reassign_expr_columns(strength, &schema));
        Ok((Self { columns, schema }, [buy?, sell?]))
    }

    /// The frame's rows where `mask` holds.
    fn rows(&self, frame: &RecordBatch, mask: &BooleanArray) -> Result<RecordBatch, ArrowError> {
        let predicate = FilterBuilder::new(mask).optimize().build();
        let columns = self
            .columns
            .iter()
            .map(|&index| predicate.filter(frame.column(index)))
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// When a side fires: a crossing (the built-in rules) is evaluated directly,
/// any other condition as its SQL.
#[derive(Debug, Clone)]
enum Condition {
    Crossing(Crossing),
    Sql(Arc<dyn PhysicalExpr>),
}

impl Condition {
    /// Where it holds in frame rows (null counts as false).
    fn rows(&self, frame: &FrameRows) -> Result<BooleanArray, DataFusionError> {
        match self {
            Self::Crossing(crossing) => Ok(crossing.rows(frame)?),
            Self::Sql(condition) => is_true(condition, &frame.batch),
        }
    }
}

/// Strategies checked against the features schema and ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    strategies: Vec<Evaluator>,
    frame: Frame,
    /// The strategies file, to name in errors found only at run time.
    path: String,
}

impl Plan {
    pub fn strategy_names(&self) -> Vec<&str> {
        self.strategies.iter().map(|s| s.name.as_str()).collect()
    }

    /// The query reading the rows of `features` this plan needs for
    /// `symbols` (all when `None`), in any order; see [`Plan::signals_of`].
    pub fn read_sql(&self, symbols: Option<&[String]>) -> String {
        self.frame.read_sql(FEATURES.name, &symbol_filter(symbols))
    }

    /// The signals (the `signals` schema) of rows of [`Plan::read_sql`] in
    /// any order, all rows of each series among them.
    pub fn signals_of(
        &self,
        rows: &[RecordBatch],
        run: &RunStamp,
    ) -> Result<Vec<RecordBatch>, SignalsError> {
        match self.frame.sort_and_extend(rows).map_err(arrow_error)? {
            Some(frame) => self.frame_signals(&frame, run),
            None => Ok(Vec::new()),
        }
    }

    /// The signals of rows of [`Plan::read_sql`] holding whole series, each
    /// in date order.
    fn series_signals(
        &self,
        rows: &RecordBatch,
        run: &RunStamp,
    ) -> Result<Vec<RecordBatch>, SignalsError> {
        let frame = self.frame.extend(rows).map_err(arrow_error)?;
        self.frame_signals(&frame, run)
    }

    /// The signals of `features` rows (the `features` schema) just computed:
    /// whole series, each in date order; pieces of them evaluated on every
    /// core.
    pub fn features_signals(
        &self,
        features: &[RecordBatch],
        run: &RunStamp,
    ) -> Result<Vec<RecordBatch>, SignalsError> {
        let mut pieces: Vec<Vec<RecordBatch>> = vec![Vec::new()];
        let mut piece_rows = 0;
        for batch in features.iter().filter(|b| b.num_rows() > 0) {
            if piece_rows >= EVALUATED_ROWS {
                pieces.push(Vec::new());
                piece_rows = 0;
            }
            let rows = self.frame.rows_of_features(batch).map_err(arrow_error)?;
            pieces.last_mut().expect("one piece").push(rows);
            piece_rows += batch.num_rows();
        }
        self.signals_of_groups(pieces, run)
    }

    /// The signals of groups of frame rows, each group's rows together
    /// holding whole series in date order, the groups evaluated on every
    /// core.
    fn signals_of_groups(
        &self,
        groups: Vec<Vec<RecordBatch>>,
        run: &RunStamp,
    ) -> Result<Vec<RecordBatch>, SignalsError> {
        let evaluated: Vec<Vec<RecordBatch>> = groups
            .into_par_iter()
            .filter(|rows| !rows.is_empty())
            .map(|rows| {
                let rows = concat_batches(&rows[0].schema(), &rows).map_err(arrow_error)?;
                self.series_signals(&rows, run)
            })
            .collect::<Result<_, _>>()?;
        Ok(evaluated.into_iter().flatten().collect())
    }

    /// Every strategy's signals in frame rows.
    fn frame_signals(
        &self,
        frame: &FrameRows,
        run: &RunStamp,
    ) -> Result<Vec<RecordBatch>, SignalsError> {
        let mut out = Vec::new();
        for strategy in &self.strategies {
            let fail = |e: DataFusionError| SignalsError::Strategy {
                path: self.path.clone(),
                name: strategy.name.clone(),
                message: format!("fails on the lake's data: {}", first_line(&e.to_string())),
            };
            let buy = strategy.buy.rows(frame).map_err(fail)?;
            let sell = strategy.sell.rows(frame).map_err(fail)?;
            // A side fires when exactly one of the conditions holds.
            for (side, mask, strength) in [
                (side::BUY, and_not(&buy, &sell), &strategy.buy_strength),
                (side::SELL, and_not(&sell, &buy), &strategy.sell_strength),
            ] {
                let mask = mask.map_err(|e| fail(e.into()))?;
                if mask.true_count() == 0 {
                    continue;
                }
                let rows = strategy
                    .fired
                    .rows(&frame.batch, &mask)
                    .map_err(|e| fail(e.into()))?;
                let strength = strength
                    .evaluate(&rows)
                    .and_then(|v| v.into_array(rows.num_rows()))
                    .map_err(fail)?;
                let inputs = inputs_json(frame, &mask, &strategy.inputs)?;
                out.push(signal_rows(&rows, strategy, side, &strength, inputs, run)?);
            }
        }
        Ok(out)
    }
}

/// Checks every strategy before any work (syntax, unknown columns, conditions
/// that are not boolean, anything that is not a row-by-row expression),
/// naming the strategy and file at fault.
pub async fn prepare(strategies: &Strategies) -> Result<Plan, SignalsError> {
    let ctx = SessionContext::new();
    bf_indicators::register(&ctx);
    let mut compiled = Vec::new();
    // The columns whose previous row a strategy's SQL reads.
    let mut lagged = BTreeSet::new();
    for strategy in &strategies.strategies {
        let mut one = strategy.compile();
        let fail = |message: String| strategies.error(&strategy.name, message);
        let schema = Frame::new(&one.computed, None).df_schema();
        let mut referenced = BTreeSet::new();
        for (what, sql) in expressions(&one) {
            // Crossings find previous rows without `prev_` columns.
            let evaluated_as_sql = what == "strength" || one.crossings.is_none();
            bf_lake::check_expression_size(sql).map_err(|e| fail(format!("{what}: {e}")))?;
            let expr = ctx
                .parse_sql_expr(sql, &schema)
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
            for column in expr.column_refs() {
                let name = column.name.trim_start_matches("prev_");
                if evaluated_as_sql && name != column.name {
                    lagged.insert(name.to_string());
                }
                referenced.insert(name.to_string());
            }
        }
        if one.inputs.is_empty() {
            one.inputs = referenced.iter().cloned().collect();
        }
        one.columns = referenced.into_iter().chain(one.inputs.clone()).collect();
        compiled.push(one);
    }
    let used: BTreeSet<String> = compiled
        .iter()
        .flat_map(|s| s.columns.iter().cloned())
        .chain(["close".to_string()])
        .collect();
    let computed: Vec<_> = compiled.iter().flat_map(|s| s.computed.clone()).collect();
    let frame = Frame::new(&computed, Some(&used)).lagging_only(&lagged);
    let schema = frame.df_schema();
    let evaluators = compiled
        .into_iter()
        .map(|one| {
            let physical = |what: &str, sql: &str| {
                physical_expr(&ctx, &schema, sql).map_err(|e| {
                    strategies.error(&one.name, format!("{what}: {}", first_line(&e.to_string())))
                })
            };
            let (buy, sell) = match one.crossings {
                Some((buy, sell)) => (Condition::Crossing(buy), Condition::Crossing(sell)),
                None => (
                    Condition::Sql(physical("buy", &one.buy)?),
                    Condition::Sql(physical("sell", &one.sell)?),
                ),
            };
            let strengths = [
                physical("strength", &one.buy_strength)?,
                physical("strength", &one.sell_strength)?,
            ];
            let (fired, [buy_strength, sell_strength]) =
                FiredColumns::new(frame.schema(), strengths).map_err(|e| {
                    strategies.error(
                        &one.name,
                        format!("strength: {}", first_line(&e.to_string())),
                    )
                })?;
            Ok(Evaluator {
                buy,
                sell,
                fired,
                buy_strength,
                sell_strength,
                inputs: one.inputs,
                name: one.name,
            })
        })
        .collect::<Result<Vec<_>, SignalsError>>()?;
    Ok(Plan {
        strategies: evaluators,
        frame,
        path: strategies.path.clone(),
    })
}

fn expressions(strategy: &CompiledStrategy) -> [(&'static str, &String); 4] {
    [
        ("buy", &strategy.buy),
        ("sell", &strategy.sell),
        ("strength", &strategy.buy_strength),
        ("strength", &strategy.sell_strength),
    ]
}

/// A condition or strength as an expression over frame batches. Window and
/// aggregate functions and subqueries look beyond the row: refused.
fn physical_expr(
    ctx: &SessionContext,
    schema: &DFSchema,
    sql: &str,
) -> Result<Arc<dyn PhysicalExpr>, DataFusionError> {
    let expr = ctx.parse_sql_expr(sql, schema)?;
    let mut beyond_the_row = false;
    expr.apply(|e| {
        beyond_the_row |= matches!(
            e,
            Expr::WindowFunction(_)
                | Expr::AggregateFunction(_)
                | Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
        );
        Ok(TreeNodeRecursion::Continue)
    })?;
    if beyond_the_row {
        return Err(DataFusionError::Plan(
            "window and aggregate functions and subqueries are not allowed; \
             use prev_<column> for the previous row"
                .into(),
        ));
    }
    ctx.create_physical_expr(expr, schema)
}

/// Where a condition is true (null counts as false).
fn is_true(
    condition: &Arc<dyn PhysicalExpr>,
    frame: &RecordBatch,
) -> Result<BooleanArray, DataFusionError> {
    let value = condition.evaluate(frame)?.into_array(frame.num_rows())?;
    let value = value.as_boolean();
    Ok(if value.null_count() == 0 {
        value.clone()
    } else {
        prep_null_mask_filter(value)
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

/// Signals of every strategy for the given symbols (all when `None`) but the
/// series in `except`, handed to `each` group by group in ascending symbol
/// ranges, each with the greatest symbol it may hold (`None`: any).
pub async fn generate(
    lake: &Lake,
    plan: &Plan,
    symbols: Option<&[String]>,
    except: &[Series],
    run: &RunStamp,
    each: impl AsyncFnMut(Vec<RecordBatch>, Option<String>) -> Result<(), SignalsError>,
) -> Result<(), SignalsError> {
    generate_in_groups(lake, plan, symbols, except, run, GROUP_ROWS, each).await
}

/// [`generate`], reading at most about `group_rows` features rows per query.
async fn generate_in_groups(
    lake: &Lake,
    plan: &Plan,
    symbols: Option<&[String]>,
    except: &[Series],
    run: &RunStamp,
    group_rows: usize,
    mut each: impl AsyncFnMut(Vec<RecordBatch>, Option<String>) -> Result<(), SignalsError>,
) -> Result<(), SignalsError> {
    let (ctx, files) = scan_session(lake).await?;
    let cores = ctx.copied_config().target_partitions();
    let mut sorted = symbols.map(<[String]>::to_vec);
    if let Some(sorted) = &mut sorted {
        sorted.sort_unstable();
    }
    // Files are read whole, not filtered row by row: they hold whole series
    // in their symbol ranges, and a row filter costs more than the rest of
    // the read (the scan also evaluates a pushed-down filter twice).
    let outside = rows_filter(None, except);
    let reads = match files
        .symbol_ranges()
        .and_then(|ranges| range_reads(&ranges, sorted.as_deref(), group_rows, cores))
    {
        Some(groups) => groups
            .into_iter()
            .map(|group| GroupRead {
                parts: group
                    .parts
                    .into_iter()
                    .map(|files| Rows {
                        files: Some(files),
                        filter: outside.clone(),
                    })
                    .collect(),
                up_to: Some(group.up_to),
                in_pieces: group.in_pieces,
            })
            .collect(),
        // Without file ranges, or with ranges too large to read at once
        // (files overlapping after upserts), series may lie in pieces.
        None => symbol_groups(&ctx, &files, symbols, group_rows)
            .await?
            .into_iter()
            .map(|group| GroupRead {
                parts: vec![Rows {
                    files: None,
                    filter: rows_filter(group.as_deref(), except),
                }],
                up_to: group.and_then(|symbols| symbols.into_iter().max()),
                in_pieces: true,
            })
            .collect::<Vec<_>>(),
    };
    let wanted: Option<HashSet<&str>> = symbols.map(|s| s.iter().map(String::as_str).collect());
    for read in reads {
        let signals = if read.in_pieces {
            signals_of_pieces(&ctx, plan, &read.parts, run).await?
        } else {
            signals_in_stored_order(&ctx, plan, &read.parts, run).await?
        };
        let signals = match signals {
            Some(signals) => signals,
            None => signals_sorted(&ctx, plan, &read.whole(), run).await?,
        };
        // Whole files also hold symbols not asked for.
        let signals = match &wanted {
            Some(wanted) if read.reads_files() => only_wanted(signals, wanted)?,
            _ => signals,
        };
        each(signals, read.up_to).await?;
    }
    Ok(())
}

/// Features rows to read: those of some files (every file: `None`) that
/// match `filter` (empty or a `WHERE`).
#[derive(Debug, Clone)]
struct Rows {
    /// URLs of data files of the version the session read.
    files: Option<Vec<String>>,
    filter: String,
}

impl Rows {
    /// Every features row.
    #[cfg(test)]
    fn all() -> Self {
        Self {
            files: None,
            filter: String::new(),
        }
    }

    /// The query reading these rows as the frame's columns, in frame order
    /// when `ordered`; files are registered in `ctx` under a name of `part`.
    fn sql(
        &self,
        ctx: &SessionContext,
        frame: &Frame,
        part: usize,
        ordered: bool,
    ) -> Result<String, SignalsError> {
        let table = match &self.files {
            Some(urls) => {
                // The previous group's part of this name is planned already.
                let name = format!("{}_part_{part}", FEATURES.name);
                ctx.deregister_table(name.as_str())
                    .map_err(SignalsError::Query)?;
                register_data_files(ctx, scanned_features(), &name, urls)
                    .map_err(SignalsError::Query)?;
                name
            }
            None => FEATURES.name.to_string(),
        };
        Ok(if ordered {
            frame.sorted_read_sql(&table, &self.filter)
        } else {
            frame.read_sql(&table, &self.filter)
        })
    }
}

/// The `features` schema with texts as views, as a scan of the table gives
/// them: the frame keeps them so, and reading them so skips copying each
/// row's text.
fn scanned_features() -> SchemaRef {
    let fields: Vec<Field> = FEATURES
        .schema()
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// One query's worth of features rows, split into disjoint parts read
/// concurrently.
struct GroupRead {
    parts: Vec<Rows>,
    /// The greatest symbol the rows may hold (`None`: any).
    up_to: Option<String>,
    /// Whether a series' rows may lie in several files.
    in_pieces: bool,
}

impl GroupRead {
    /// Whether the group reads whole files rather than filtered rows.
    fn reads_files(&self) -> bool {
        self.parts.iter().any(|part| part.files.is_some())
    }

    /// All of the group's rows at once.
    fn whole(&self) -> Rows {
        let files = self
            .parts
            .iter()
            .map(|part| part.files.clone())
            .collect::<Option<Vec<_>>>()
            .map(|files| files.concat());
        Rows {
            files,
            filter: self.parts[0].filter.clone(),
        }
    }
}

/// The signals of `wanted` symbols only.
fn only_wanted(
    signals: Vec<RecordBatch>,
    wanted: &HashSet<&str>,
) -> Result<Vec<RecordBatch>, SignalsError> {
    signals
        .into_iter()
        .map(|batch| {
            let symbols = batch
                .column_by_name(col::SYMBOL)
                .expect("signals column")
                .as_string::<i32>();
            // A symbol's signals lie in runs: one set lookup per run.
            let mut last: Option<(&str, bool)> = None;
            let keep: BooleanArray = symbols
                .iter()
                .map(|symbol| {
                    Some(symbol.is_some_and(|s| match last {
                        Some((previous, kept)) if previous == s => kept,
                        _ => {
                            let kept = wanted.contains(s);
                            last = Some((s, kept));
                            kept
                        }
                    }))
                })
                .collect();
            if keep.true_count() == batch.num_rows() {
                Ok(batch)
            } else {
                filter_record_batch(&batch, &keep).map_err(arrow_error)
            }
        })
        .collect()
}

/// The files each query reads, split into at most `parts` parts of about the
/// same rows, with the greatest symbol they may hold.
#[derive(Debug, PartialEq)]
struct RangeRead {
    parts: Vec<Vec<String>>,
    up_to: String,
    /// Whether some range merges overlapping files.
    in_pieces: bool,
}

/// The files each query reads, for the features files' disjoint symbol
/// ranges that may hold `symbols` (sorted; all when `None`): whole ranges
/// packed into queries of about `group_rows` rows, so memory stays bounded
/// without counting the table's rows per symbol first. `None` when a range
/// alone holds more than `group_rows` rows (files overlapping after upserts).
fn range_reads(
    ranges: &[SymbolRange],
    symbols: Option<&[String]>,
    group_rows: usize,
    parts: usize,
) -> Option<Vec<RangeRead>> {
    let read: Vec<(&SymbolRange, usize)> = ranges
        .iter()
        .filter(|range| symbols.is_none_or(|s| range.holds_any(s)))
        .map(|range| (range, range.rows as usize))
        .collect();
    if read.iter().any(|(_, rows)| *rows > group_rows) {
        return None;
    }
    let files = |ranges: Vec<&SymbolRange>| -> Vec<String> {
        ranges
            .iter()
            .flat_map(|range| range.files.clone())
            .collect()
    };
    Some(
        bf_core::row_groups(read, group_rows)
            .into_iter()
            .map(|group| {
                let rows: u64 = group.iter().map(|range| range.rows).sum();
                let in_pieces = group.iter().any(|range| range.files.len() > 1);
                let up_to = group[group.len() - 1].high.clone();
                let per_part = (rows as usize).div_ceil(parts.max(1));
                let sized = group.into_iter().map(|range| (range, range.rows as usize));
                RangeRead {
                    parts: bf_core::row_groups(sized, per_part)
                        .into_iter()
                        .map(files)
                        .collect(),
                    up_to,
                    in_pieces,
                }
            })
            .collect(),
    )
}

/// `WHERE` rows of `symbols` (all when `None`) outside the `except` series.
fn rows_filter(symbols: Option<&[String]>, except: &[Series]) -> String {
    let by_symbol = symbol_filter(symbols);
    if except.is_empty() {
        return by_symbol;
    }
    let series: Vec<String> = except
        .iter()
        .map(|(symbol, interval)| {
            format!(
                "({} = {} AND \"{}\" = {})",
                col::SYMBOL,
                sql_literal(symbol),
                col::INTERVAL,
                sql_literal(interval)
            )
        })
        .collect();
    let outside = format!("NOT ({})", series.join(" OR "));
    if by_symbol.is_empty() {
        format!("WHERE {outside}")
    } else {
        format!("{by_symbol} AND {outside}")
    }
}

/// A session over the lake's `features` whose scans read whole files per
/// partition, in their order, in batches of up to [`EVALUATED_ROWS`]: a
/// reader hands at most a row group per batch, and only series split between
/// batches are copied to be joined, so the larger the batches the fewer rows
/// are copied. With the files of the version it reads.
async fn scan_session(lake: &Lake) -> Result<(SessionContext, TableFiles), SignalsError> {
    let (ctx, files) = lake
        .table_session(&FEATURES)
        .await?
        .ok_or(SignalsError::NoFeatures)?;
    for option in [
        "datafusion.optimizer.repartition_file_scans = false".to_string(),
        "datafusion.optimizer.enable_round_robin_repartition = false".to_string(),
        format!("datafusion.execution.batch_size = {EVALUATED_ROWS}"),
    ] {
        ctx.sql(&format!("SET {option}"))
            .await
            .map_err(SignalsError::Query)?;
    }
    Ok((ctx, files))
}

/// Signals of the rows of `parts` (disjoint), each partition of their scans
/// evaluated on its own task as stored: the features build writes each
/// series' rows together in date order. `None` when some series is not
/// stored so (files rewritten by an upsert), so the rows need sorting.
async fn signals_in_stored_order(
    ctx: &SessionContext,
    plan: &Plan,
    parts: &[Rows],
    run: &RunStamp,
) -> Result<Option<Vec<RecordBatch>>, SignalsError> {
    let mut tasks = Vec::new();
    for (index, rows) in parts.iter().enumerate() {
        let scan = ctx
            .sql(&rows.sql(ctx, &plan.frame, index, false)?)
            .await
            .map_err(SignalsError::Query)?
            .create_physical_plan()
            .await
            .map_err(SignalsError::Query)?;
        let partitions =
            execute_stream_partitioned(scan, ctx.task_ctx()).map_err(SignalsError::Query)?;
        tasks.extend(
            partitions
                .into_iter()
                .map(|rows| tokio::spawn(partition_signals(plan.clone(), rows, run.clone()))),
        );
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut in_order = true;
    for task in tasks {
        let done = task
            .await
            .map_err(|e| SignalsError::Query(DataFusionError::External(Box::new(e))))??;
        match done {
            Some((signals, series)) => {
                // A series split between partitions is not whole in either.
                for key in series {
                    in_order &= seen.insert(key);
                }
                out.extend(signals);
            }
            None => in_order = false,
        }
    }
    Ok(in_order.then_some(out))
}

/// One partition's signals and series, or `None` as soon as a series' rows
/// are found apart or out of date order.
async fn partition_signals(
    plan: Plan,
    rows: SendableRecordBatchStream,
    run: RunStamp,
) -> Result<Option<(Vec<RecordBatch>, Vec<SeriesKey>)>, SignalsError> {
    let (mut signals, mut series) = (Vec::new(), Vec::new());
    let in_order = each_whole_series(rows, |rows| {
        let ranges = series_ranges(&rows).map_err(arrow_error)?;
        let Some(found) = series_in_date_order(&rows, &ranges).map_err(arrow_error)? else {
            return Ok(false);
        };
        series.extend(found);
        let frame = plan
            .frame
            .extend_series(&rows, &ranges)
            .map_err(arrow_error)?;
        signals.extend(plan.frame_signals(&frame, &run)?);
        Ok(true)
    })
    .await?;
    Ok(in_order.then_some((signals, series)))
}

/// Signals of the rows of `parts` (disjoint) when a series may lie in
/// pieces, in several files: each part's rows are read whole,
/// then each series' pieces joined in date order and evaluated on every
/// core. `None` when two pieces of a series share a date, so the rows need
/// sorting.
async fn signals_of_pieces(
    ctx: &SessionContext,
    plan: &Plan,
    parts: &[Rows],
    run: &RunStamp,
) -> Result<Option<Vec<RecordBatch>>, SignalsError> {
    let mut out = Vec::new();
    for (index, rows) in parts.iter().enumerate() {
        let rows = ctx
            .sql(&rows.sql(ctx, &plan.frame, index, false)?)
            .await
            .map_err(SignalsError::Query)?
            .collect()
            .await
            .map_err(SignalsError::Query)?;
        let Some(groups) = joined_series(&rows, EVALUATED_ROWS).map_err(arrow_error)? else {
            return Ok(None);
        };
        out.extend(plan.signals_of_groups(groups, run)?);
    }
    Ok(Some(out))
}

/// Signals of `rows`, read in frame order.
async fn signals_sorted(
    ctx: &SessionContext,
    plan: &Plan,
    rows: &Rows,
    run: &RunStamp,
) -> Result<Vec<RecordBatch>, SignalsError> {
    let rows = ctx
        .sql(&rows.sql(ctx, &plan.frame, 0, true)?)
        .await
        .map_err(SignalsError::Query)?
        .execute_stream()
        .await
        .map_err(SignalsError::Query)?;
    let mut out = Vec::new();
    each_whole_series(rows, |rows| {
        out.extend(plan.series_signals(&rows, run)?);
        Ok(true)
    })
    .await?;
    Ok(out)
}

/// Hands `rows`, cut into batches of whole series, to `evaluate` until it
/// returns false; whether every row was handed.
async fn each_whole_series(
    mut rows: SendableRecordBatchStream,
    mut evaluate: impl FnMut(RecordBatch) -> Result<bool, SignalsError>,
) -> Result<bool, SignalsError> {
    let mut whole = WholeSeries::default();
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(SignalsError::Query)?;
        for ready in whole.push(batch).map_err(arrow_error)? {
            if !evaluate(ready)? {
                return Ok(false);
            }
        }
    }
    match whole.finish().map_err(arrow_error)? {
        Some(ready) => evaluate(ready),
        None => Ok(true),
    }
}

/// Rows evaluated together, from features handed over in memory or read in
/// one batch: enough to amortise each expression's evaluation, few enough to
/// stay in cache-sized pieces.
const EVALUATED_ROWS: usize = 65_536;

/// Features rows one signals query reads at most, so memory stays bounded
/// whatever the table's size.
pub const GROUP_ROWS: usize = 2_500_000;

/// The symbols of each signals query: `symbols` as given (every symbol when
/// `None`) while `features` holds at most `group_rows` rows, else whole
/// symbols packed into groups of about that many rows.
async fn symbol_groups(
    ctx: &SessionContext,
    files: &TableFiles,
    symbols: Option<&[String]>,
    group_rows: usize,
) -> Result<Vec<Option<Vec<String>>>, SignalsError> {
    let one_query = vec![symbols.map(<[String]>::to_vec)];
    // The file statistics say the table's size without reading it.
    let stored = files
        .files
        .iter()
        .map(|f| f.rows.map_or(usize::MAX, |n| n as usize))
        .fold(0usize, usize::saturating_add);
    if stored <= group_rows {
        return Ok(one_query);
    }
    let query = format!(
        "SELECT {s}, count(*) FROM {t} {filter} GROUP BY {s} ORDER BY {s}",
        s = col::SYMBOL,
        t = FEATURES.name,
        filter = symbol_filter(symbols)
    );
    let counted = ctx
        .sql(&query)
        .await
        .map_err(SignalsError::Query)?
        .collect()
        .await
        .map_err(SignalsError::Query)?;
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

/// One strategy's signals on one side: `rows` are the frame rows where it
/// fired, `strength` its strength expression's value on them.
fn signal_rows(
    rows: &RecordBatch,
    strategy: &Evaluator,
    side_value: &str,
    strength: &ArrayRef,
    inputs: ArrayRef,
    run: &RunStamp,
) -> Result<RecordBatch, SignalsError> {
    let n = rows.num_rows();
    let column = |name: &str| rows.column_by_name(name).expect("frame column").clone();
    let repeat = |value: &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(value, n)))
    };
    let columns = SIGNALS
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let array: ArrayRef = match field.name().as_str() {
                col::STRATEGY => repeat(&strategy.name),
                col::SIDE => repeat(side_value),
                col::RUN_ID => repeat(&run.run_id),
                col::GENERATED_AT => Arc::new(
                    TimestampMicrosecondArray::from(vec![run.generated_at; n]).with_timezone("UTC"),
                ),
                col::STRENGTH => clamped_strength(strength)?,
                col::INPUTS => inputs.clone(),
                col::PRICE => column("close"),
                other => column(other),
            };
            cast(&array, field.data_type()).map_err(arrow_error)
        })
        .collect::<Result<Vec<ArrayRef>, SignalsError>>()?;
    RecordBatch::try_new(SIGNALS.schema(), columns).map_err(arrow_error)
}

/// Strength clamped to [0, 1]; no value (null, NaN) is 0.
fn clamped_strength(strength: &ArrayRef) -> Result<ArrayRef, SignalsError> {
    let values = cast(strength, &DataType::Float64).map_err(arrow_error)?;
    let clamped: Float64Array = values
        .as_primitive::<Float64Type>()
        .iter()
        .map(|v| Some(v.filter(|v| !v.is_nan()).map_or(0.0, |v| v.clamp(0.0, 1.0))))
        .collect();
    Ok(Arc::new(clamped))
}

/// `{"sma_20":101.2,"prev_sma_20":100.9,…}` per row of `frame` where `fired`;
/// nulls (and the previous row of a series' first) as null.
fn inputs_json(
    frame: &FrameRows,
    fired: &BooleanArray,
    inputs: &[String],
) -> Result<ArrayRef, SignalsError> {
    /// A column's values as written into the JSON text.
    enum Values {
        /// Written as SQL's CAST(x AS VARCHAR) writes them, see [`float_text`].
        Floats(Float64Array),
        /// Other types, cast to text once for the whole column.
        Text(StringArray),
    }
    let fired = match fired.nulls() {
        Some(valid) => fired.values() & valid.inner(),
        None => fired.values().clone(),
    };
    let rows: UInt32Array = fired.set_indices().map(|row| row as u32).collect();
    let previous: UInt32Array = rows
        .values()
        .iter()
        .map(|&row| (row > 0 && !frame.starts.value(row as usize)).then(|| row - 1))
        .collect();
    let mut parts = Vec::new();
    for input in inputs {
        let column = frame.batch.column_by_name(input).expect("input column");
        for (name, at) in [(input.clone(), &rows), (format!("prev_{input}"), &previous)] {
            let column = take(column, at, None).map_err(arrow_error)?;
            let values = match column.as_primitive_opt::<Float64Type>() {
                Some(floats) => Values::Floats(floats.clone()),
                None => Values::Text(
                    cast(&column, &DataType::Utf8)
                        .map_err(arrow_error)?
                        .as_string::<i32>()
                        .clone(),
                ),
            };
            parts.push((format!("\"{name}\":"), values));
        }
    }
    let n = rows.len();
    // Sized up front: growing a buffer this size costs more than filling it.
    let bytes: usize = parts.iter().map(|(name, _)| n * (name.len() + 24)).sum();
    let mut json = StringBuilder::with_capacity(n, bytes + 2 * n);
    let mut float_buffer = zmij::Buffer::new();
    // Each row's text goes straight into the builder's buffer, ended by
    // appending an empty value.
    let write = |json: &mut StringBuilder, text: &str| {
        json.write_str(text)
            .expect("a string builder takes any text");
    };
    for row in 0..n {
        write(&mut json, "{");
        for (index, (name, values)) in parts.iter().enumerate() {
            if index > 0 {
                write(&mut json, ",");
            }
            write(&mut json, name);
            match values {
                Values::Floats(floats) if floats.is_valid(row) => {
                    let (mantissa, exponent) = float_text(&mut float_buffer, floats.value(row));
                    write(&mut json, mantissa);
                    write(&mut json, exponent);
                }
                Values::Text(text) if text.is_valid(row) => write(&mut json, text.value(row)),
                _ => write(&mut json, "null"),
            }
        }
        write(&mut json, "}");
        json.append_value("");
    }
    Ok(Arc::new(json.finish()))
}

/// `value`'s shortest round-trip text, as SQL's CAST(x AS VARCHAR) (ryu)
/// writes it, in two pieces to write one after the other. zmij writes the
/// same digits in about two thirds of ryu's time, but a positive exponent as
/// `e+21` where ryu writes `e21`: the `+` is left out between the pieces.
/// Below 1e15 neither writes a positive exponent, so only larger values are
/// searched for it.
fn float_text(buffer: &mut zmij::Buffer, value: f64) -> (&str, &str) {
    let text = buffer.format(value);
    if value.abs() < 1e15 {
        return (text, "");
    }
    match text.split_once('+') {
        Some((mantissa, exponent)) => (mantissa, exponent),
        None => (text, ""),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategies;

    #[test]
    fn only_the_wanted_symbols_signals_are_kept() {
        let batch = |symbols: Vec<&str>| {
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    col::SYMBOL,
                    DataType::Utf8,
                    false,
                )])),
                vec![Arc::new(StringArray::from(symbols))],
            )
            .unwrap()
        };
        let wanted = HashSet::from(["A", "C"]);
        let kept = only_wanted(
            vec![
                batch(vec!["A", "A", "B", "B", "A", "C"]),
                batch(vec!["A", "C"]),
            ],
            &wanted,
        )
        .unwrap();
        let symbols: Vec<Vec<&str>> = kept
            .iter()
            .map(|b| b.column(0).as_string::<i32>().iter().flatten().collect())
            .collect();
        assert_eq!(symbols, [vec!["A", "A", "A", "C"], vec!["A", "C"]]);
    }

    /// The signals [`generate_in_groups`] hands over, checking that each
    /// group holds only symbols after the previous group's and up to its own
    /// greatest symbol.
    async fn in_groups(
        lake: &Lake,
        plan: &Plan,
        symbols: Option<&[String]>,
        run: &RunStamp,
        group_rows: usize,
    ) -> Vec<RecordBatch> {
        let mut all = Vec::new();
        let (mut after, mut open_ended): (Option<String>, bool) = (None, false);
        generate_in_groups(
            lake,
            plan,
            symbols,
            &[],
            run,
            group_rows,
            async |signals, up_to| {
                for batch in &signals {
                    let symbols = batch
                        .column_by_name(col::SYMBOL)
                        .unwrap()
                        .as_string::<i32>();
                    for symbol in symbols.iter().flatten() {
                        assert!(
                            after.as_deref().is_none_or(|a| a < symbol),
                            "{symbol} after {after:?}"
                        );
                        assert!(
                            up_to.as_deref().is_none_or(|u| symbol <= u),
                            "{symbol} up to {up_to:?}"
                        );
                    }
                }
                assert!(!open_ended, "only the last group is open-ended");
                open_ended = up_to.is_none();
                after = up_to;
                all.extend(signals);
                Ok(())
            },
        )
        .await
        .unwrap();
        all
    }

    async fn prepare_error(toml: &str) -> String {
        let strategies = Strategies::parse(toml, "mine.toml").unwrap();
        prepare(&strategies).await.unwrap_err().to_string()
    }

    /// A lake whose features were built for `symbols` (synthetic bars).
    async fn lake_with_features(symbols: &[&str]) -> (Lake, tempfile::TempDir) {
        lake_built_in_steps(symbols, &[]).await
    }

    /// [`lake_with_features`], with the bars up to each of `cuts` stored and
    /// built first, as daily runs do.
    async fn lake_built_in_steps(
        symbols: &[&str],
        cuts: &[chrono::NaiveDate],
    ) -> (Lake, tempfile::TempDir) {
        use bf_core::Symbol;
        use bf_core::tables::OHLCV;
        use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
        use bf_sources::{ActionsBuilder, BarsBuilder};
        use chrono::NaiveDate;
        use datafusion::arrow::array::Date32Array;
        use datafusion::arrow::compute::kernels::cmp::lt_eq;

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
        let mut actions = ActionsBuilder::new(SOURCE_NAME, 1);
        for symbol in symbols {
            Synthetic::new(11).generate(
                &Symbol::parse(symbol).unwrap(),
                NaiveDate::from_ymd_opt(2018, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
                &mut bars,
                &mut actions,
            );
        }
        let bars = bars.finish();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for cut in cuts {
            let cut = Date32Array::new_scalar((*cut - epoch).num_days() as i32);
            let until = lt_eq(bars.column_by_name(col::DATE).unwrap(), &cut).unwrap();
            let until = filter_record_batch(&bars, &until).unwrap();
            lake.upsert(&OHLCV, vec![until]).await.unwrap();
            bf_features::build::build(&lake, &Default::default(), &())
                .await
                .unwrap();
        }
        lake.upsert(&OHLCV, vec![bars]).await.unwrap();
        bf_features::build::build(&lake, &Default::default(), &())
            .await
            .unwrap();
        (lake, dir)
    }

    fn sorted_lines(batches: Vec<RecordBatch>) -> Vec<String> {
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }

    #[tokio::test]
    async fn signals_generated_in_groups_of_symbols_equal_one_query() {
        let (lake, _dir) = lake_with_features(&["AAA", "BBB", "CCC"]).await;
        let plan = prepare(&Strategies::builtin()).await.unwrap();
        let run = RunStamp::now();
        let one = in_groups(&lake, &plan, None, &run, usize::MAX).await;
        assert!(one.iter().map(RecordBatch::num_rows).sum::<usize>() > 100);
        // A budget below one symbol's rows: one query per symbol.
        let grouped = in_groups(&lake, &plan, None, &run, 10).await;
        assert_eq!(sorted_lines(one), sorted_lines(grouped));
    }

    #[tokio::test]
    async fn rows_stored_out_of_order_are_sorted_first() {
        let (lake, _dir) = lake_with_features(&["AAA", "BBB"]).await;
        let (ctx, _) = scan_session(&lake).await.unwrap();
        let stored = ctx
            .sql("SELECT * FROM features")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let stored =
            datafusion::arrow::compute::concat_batches(&stored[0].schema(), &stored).unwrap();
        // Newest bar first: every series' rows backwards.
        let backwards = datafusion::arrow::array::UInt32Array::from_iter_values(
            (0..stored.num_rows() as u32).rev(),
        );
        let backwards = datafusion::arrow::compute::take_record_batch(&stored, &backwards).unwrap();
        // The scan gives string views; the table takes strings.
        let columns = backwards
            .columns()
            .iter()
            .zip(FEATURES.schema().fields())
            .map(|(column, field)| cast(column, field.data_type()).unwrap())
            .collect();
        let backwards = RecordBatch::try_new(FEATURES.schema(), columns).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let reversed = Lake::open(dir.path().to_str().unwrap()).unwrap();
        reversed
            .append(&FEATURES, vec![backwards], None)
            .await
            .unwrap();

        let plan = prepare(&Strategies::builtin()).await.unwrap();
        let run = RunStamp::now();
        let as_built = signals_in_stored_order(&ctx, &plan, &[Rows::all()], &run)
            .await
            .unwrap();
        let (reversed_ctx, _) = scan_session(&reversed).await.unwrap();
        let as_reversed = signals_in_stored_order(&reversed_ctx, &plan, &[Rows::all()], &run)
            .await
            .unwrap();
        assert!(as_built.is_some() && as_reversed.is_none());
        let expected = in_groups(&lake, &plan, None, &run, GROUP_ROWS).await;
        let got = in_groups(&reversed, &plan, None, &run, GROUP_ROWS).await;
        assert!(expected.iter().map(RecordBatch::num_rows).sum::<usize>() > 50);
        assert_eq!(sorted_lines(expected), sorted_lines(got));
    }

    #[tokio::test]
    async fn series_stored_in_pieces_are_joined_in_date_order() {
        let symbols = ["AAA", "BBB", "CCC"];
        let day = |month, day| chrono::NaiveDate::from_ymd_opt(2021, month, day).unwrap();
        // Built at once, and as three daily runs would: the last bars of
        // each series lie in files of their own.
        let (whole, _dir) = lake_with_features(&symbols).await;
        let (daily, _daily_dir) = lake_built_in_steps(&symbols, &[day(11, 30), day(12, 15)]).await;
        let files = daily.table_files(&FEATURES).await.unwrap().unwrap();
        let ranges = files.symbol_ranges().unwrap();
        assert!(
            ranges.iter().all(|range| range.files.len() == 3),
            "{ranges:?}"
        );

        let plan = prepare(&Strategies::builtin()).await.unwrap();
        let run = RunStamp::now();
        let (ctx, _) = scan_session(&daily).await.unwrap();
        let joined = signals_of_pieces(&ctx, &plan, &[Rows::all()], &run)
            .await
            .unwrap()
            .expect("pieces of distinct dates");
        let in_order = signals_in_stored_order(&ctx, &plan, &[Rows::all()], &run)
            .await
            .unwrap();
        assert!(in_order.is_none(), "no series is whole in one file");
        let expected = in_groups(&whole, &plan, None, &run, GROUP_ROWS).await;
        assert!(expected.iter().map(RecordBatch::num_rows).sum::<usize>() > 100);
        assert_eq!(sorted_lines(expected.clone()), sorted_lines(joined));
        // Through both ways of grouping the reads: file ranges, and symbols
        // counted when a range alone exceeds the budget.
        for group_rows in [GROUP_ROWS, 10] {
            let got = in_groups(&daily, &plan, None, &run, group_rows).await;
            assert_eq!(sorted_lines(expected.clone()), sorted_lines(got));
        }
    }

    #[tokio::test]
    async fn files_with_disjoint_symbols_are_read_on_separate_tasks() {
        let (lake, _dir) = lake_with_features(&["AAA", "BBB", "CCC"]).await;
        let (ctx, _) = scan_session(&lake).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let split = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for symbols in ["'AAA'", "'BBB', 'CCC'"] {
            let rows = ctx
                .sql(&format!(
                    "SELECT * FROM features WHERE symbol IN ({symbols})"
                ))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let rows = rows
                .iter()
                .map(|batch| {
                    let columns = batch
                        .columns()
                        .iter()
                        .zip(FEATURES.schema().fields())
                        .map(|(column, field)| cast(column, field.data_type()).unwrap())
                        .collect();
                    RecordBatch::try_new(FEATURES.schema(), columns).unwrap()
                })
                .collect();
            split.append(&FEATURES, rows, None).await.unwrap();
        }
        let ranges = split.table_files(&FEATURES).await.unwrap().unwrap();
        let ranges = ranges.symbol_ranges().unwrap();
        let reads = range_reads(&ranges, None, usize::MAX, 2).unwrap();
        assert!(!reads[0].in_pieces);
        let files: Vec<Vec<String>> = ranges.iter().map(|range| range.files.clone()).collect();
        assert_eq!(reads[0].parts, files, "one part per range");
        let parts: Vec<Rows> = files
            .into_iter()
            .map(|files| Rows {
                files: Some(files),
                filter: String::new(),
            })
            .collect();

        let plan = prepare(&Strategies::builtin()).await.unwrap();
        let run = RunStamp::now();
        let (split_ctx, _) = scan_session(&split).await.unwrap();
        let in_parts = signals_in_stored_order(&split_ctx, &plan, &parts, &run)
            .await
            .unwrap()
            .expect("each series whole in one part");
        let expected = in_groups(&lake, &plan, None, &run, GROUP_ROWS).await;
        assert!(expected.iter().map(RecordBatch::num_rows).sum::<usize>() > 100);
        assert_eq!(sorted_lines(expected.clone()), sorted_lines(in_parts));
        // Queries of one file range each, read in two groups.
        let largest = ranges.iter().map(|r| r.rows as usize).max().unwrap();
        let grouped = in_groups(&split, &plan, None, &run, largest).await;
        assert_eq!(sorted_lines(expected.clone()), sorted_lines(grouped));
        let some = ["CCC".to_string(), "AAA".to_string()];
        let grouped = in_groups(&split, &plan, Some(&some), &run, largest).await;
        let one_query = in_groups(&lake, &plan, Some(&some), &run, GROUP_ROWS).await;
        let symbols_of = |signals: &[RecordBatch]| -> BTreeSet<String> {
            signals
                .iter()
                .flat_map(|batch| {
                    let symbols = batch
                        .column_by_name(col::SYMBOL)
                        .unwrap()
                        .as_string::<i32>();
                    symbols
                        .iter()
                        .flatten()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        // Files holding BBB too are read whole; its signals are left out.
        assert_eq!(symbols_of(&grouped), BTreeSet::from(some.clone()));
        assert_eq!(sorted_lines(one_query), sorted_lines(grouped));
        // Parts that share a series: not whole in either, so sorted instead.
        let overlapping = ["WHERE symbol <= 'BBB'", "WHERE symbol >= 'BBB'"].map(|filter| Rows {
            files: None,
            filter: filter.into(),
        });
        let shared = signals_in_stored_order(&split_ctx, &plan, &overlapping, &run).await;
        assert!(shared.unwrap().is_none());
    }

    #[test]
    fn reads_go_by_file_ranges_in_groups_and_parts_of_about_equal_rows() {
        let range = |low: &str, high: &str, rows, files: &[&str]| SymbolRange {
            low: low.into(),
            high: high.into(),
            rows,
            files: files.iter().map(|name| name.to_string()).collect(),
        };
        let ranges = [
            range("A", "C", 50, &["a-c"]),
            range("D", "F", 50, &["d-f"]),
            range("G", "H", 100, &["g-h", "g-g"]),
        ];
        let read = |parts: &[&[&str]], up_to: &str, in_pieces| RangeRead {
            parts: parts
                .iter()
                .map(|files| files.iter().map(|name| name.to_string()).collect())
                .collect(),
            up_to: up_to.into(),
            in_pieces,
        };
        assert_eq!(
            range_reads(&ranges, None, 1000, 2).unwrap(),
            [read(&[&["a-c", "d-f"], &["g-h", "g-g"]], "H", true)]
        );
        let wanted = ["B".to_string(), "E".to_string()];
        assert_eq!(
            range_reads(&ranges, Some(&wanted), 1000, 4).unwrap(),
            [read(&[&["a-c"], &["d-f"]], "F", false)]
        );
        // A range holding none of the symbols is not read, even between two
        // that are.
        let wanted = ["B".to_string(), "H".to_string()];
        assert_eq!(
            range_reads(&ranges, Some(&wanted), 1000, 1).unwrap(),
            [read(&[&["a-c", "g-h", "g-g"]], "H", true)]
        );
        assert_eq!(
            range_reads(&ranges, None, 100, 2).unwrap(),
            [
                read(&[&["a-c"], &["d-f"]], "F", false),
                read(&[&["g-h", "g-g"]], "H", true)
            ]
        );
        assert_eq!(
            range_reads(&ranges, None, 60, 2),
            None,
            "G-H alone is too big"
        );
    }

    #[test]
    fn floats_are_written_as_sql_casts_them_to_text() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            0.1 + 0.2,
            1e15,
            9_999_999_999_999_998.0,
            1e16,
            -1.5e16,
            1e21,
            1.234e-5,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // And bit patterns spread over every exponent.
        let mut bits: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            bits = bits
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            values.push(f64::from_bits(bits));
        }
        let cast_text = cast(&Float64Array::from(values.clone()), &DataType::Utf8).unwrap();
        let mut buffer = zmij::Buffer::new();
        for (value, sql) in values.iter().zip(cast_text.as_string::<i32>()) {
            let (mantissa, exponent) = float_text(&mut buffer, *value);
            assert_eq!(format!("{mantissa}{exponent}"), sql.unwrap(), "{value:e}");
        }
    }

    #[test]
    fn inputs_are_written_as_sql_casts_them_to_text() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::buffer::BooleanBuffer;
        let batch = RecordBatch::try_from_iter([
            (
                "sma_20",
                Arc::new(Float64Array::from(vec![
                    Some(100.0),
                    Some(101.2),
                    None,
                    Some(1e21),
                    Some(7.0),
                ])) as ArrayRef,
            ),
            (
                "volume",
                Arc::new(Int64Array::from(vec![
                    None,
                    Some(5),
                    Some(5),
                    Some(6),
                    Some(7),
                ])) as ArrayRef,
            ),
        ])
        .unwrap();
        // Two series: rows 0-3 and row 4, whose previous row is of the other.
        let rows = FrameRows {
            batch,
            starts: BooleanBuffer::from(vec![true, false, false, false, true]),
        };
        let fired = BooleanArray::from(vec![Some(false), Some(true), None, Some(true), Some(true)]);
        let json = inputs_json(&rows, &fired, &["sma_20".into(), "volume".into()]).unwrap();
        let json: Vec<&str> = json.as_string::<i32>().iter().flatten().collect();
        assert_eq!(
            json,
            [
                r#"{"sma_20":101.2,"prev_sma_20":100.0,"volume":5,"prev_volume":null}"#,
                r#"{"sma_20":1e21,"prev_sma_20":null,"volume":6,"prev_volume":5}"#,
                r#"{"sma_20":7.0,"prev_sma_20":null,"volume":7,"prev_volume":null}"#,
            ]
        );
        // The same text as a CAST in SQL.
        let cast_text = cast(rows.batch.column(0), &DataType::Utf8).unwrap();
        assert_eq!(cast_text.as_string::<i32>().value(3), "1e21");
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
    async fn strengths_are_evaluated_on_the_rows_that_fired() {
        use std::collections::HashMap;

        use datafusion::arrow::datatypes::Date32Type;

        let (lake, _dir) = lake_with_features(&["AAA", "BBB"]).await;
        // The frame holds the conditions' columns before `rsi_14`, which
        // alone of them the strength reads.
        let toml = "[[strategy]]\nname = \"mine\"\nrule = \"sql\"\n\
                    buy = \"sma_20 > sma_50 AND rsi_14 < 45\"\n\
                    sell = \"sma_20 < sma_50 AND rsi_14 > 55\"\n\
                    strength = \"rsi_14 / 100\"\n";
        let plan = prepare(&Strategies::parse(toml, "mine.toml").unwrap())
            .await
            .unwrap();
        let signals = in_groups(&lake, &plan, None, &RunStamp::now(), usize::MAX).await;
        let (ctx, _) = scan_session(&lake).await.unwrap();
        let features = ctx
            .sql("SELECT symbol, date, rsi_14 FROM features")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut expected = HashMap::new();
        for batch in &features {
            let symbols = cast(batch.column(0), &DataType::Utf8).unwrap();
            let symbols = symbols.as_string::<i32>();
            let dates = batch.column(1).as_primitive::<Date32Type>();
            let rsi = batch.column(2).as_primitive::<Float64Type>();
            for row in 0..batch.num_rows() {
                // No value (inside the lookback) is strength 0.
                let strength = if rsi.is_valid(row) {
                    rsi.value(row) / 100.0
                } else {
                    0.0
                };
                let key = (symbols.value(row).to_string(), dates.value(row));
                expected.insert(key, strength);
            }
        }
        let mut sides = BTreeSet::new();
        let mut checked = 0;
        for batch in &signals {
            let column = |name: &str| batch.column_by_name(name).unwrap();
            let symbols = column(col::SYMBOL).as_string::<i32>();
            let dates = column(col::DATE).as_primitive::<Date32Type>();
            let strengths = column(col::STRENGTH).as_primitive::<Float64Type>();
            let side_values = column(col::SIDE).as_string::<i32>();
            for row in 0..batch.num_rows() {
                let key = (symbols.value(row).to_string(), dates.value(row));
                assert_eq!(strengths.value(row), expected[&key], "{key:?}");
                sides.insert(side_values.value(row).to_string());
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked} signals");
        assert_eq!(
            sides,
            BTreeSet::from(["BUY".to_string(), "SELL".to_string()])
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
            plan.strategies[0].inputs,
            ["close", "macd", "macd_signal", "rsi_14", "sma_200"]
        );
    }
}

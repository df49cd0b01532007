//! Strategies evaluated without a window operator: the frame is read once,
//! sorted by (symbol, interval, date); each `prev_<column>` is the column
//! shifted by one row, null where a series starts; every strategy's SQL is
//! planned once into DataFusion physical expressions and evaluated over the
//! whole frame, and strengths and inputs only over the rows that fired.
//! The SQL is the same text the window query runs, so the signals are the
//! same; strategies that compute series of their own (periods the features
//! table does not store) still need that query.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{
    and, concat, concat_batches, filter_record_batch, not, nullif, or,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
use datafusion::prelude::SessionContext;

use crate::engine::{inputs_json, side_sql, strength_sql};
use crate::strategy::CompiledStrategy;

/// Whether every strategy reads only stored columns (the frame this module builds).
pub fn applies(strategies: &[CompiledStrategy]) -> bool {
    strategies.iter().all(|s| s.computed.is_empty())
}

/// The frame's base query: the key columns, `close`, and the used stored
/// columns, in series order.
pub fn frame_query(used: &[String], features: &str, filter: &str) -> String {
    let columns: Vec<String> = used
        .iter()
        .filter(|c| c.as_str() != "close")
        .cloned()
        .collect();
    let extra = if columns.is_empty() {
        String::new()
    } else {
        format!(", {}", columns.join(", "))
    };
    format!(
        "SELECT symbol, \"interval\", date, adj_close AS close{extra} FROM {features} {filter} \
         ORDER BY symbol, \"interval\", date"
    )
}

/// The fired rows of every strategy from the sorted frame, with the columns
/// the window query's result has: `symbol`, `interval`, `date`, `close`,
/// and per strategy `side_i`, `strength_i`, `inputs_i`.
pub fn evaluate(
    ctx: &SessionContext,
    frame: &[RecordBatch],
    used: &[String],
    strategies: &[CompiledStrategy],
) -> Result<Option<RecordBatch>, DataFusionError> {
    let Some(first) = frame.first() else {
        return Ok(None);
    };
    let batch = concat_batches(&first.schema(), frame)?;
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let batch = with_previous_rows(&batch, used)?;
    let state = ctx.state();
    let evaluate_sql = |batch: &RecordBatch, sql: &str| -> Result<ArrayRef, DataFusionError> {
        let schema = Arc::new(DFSchema::try_from(batch.schema())?);
        let logical = state.create_logical_expr(sql, &schema)?;
        // As the optimizer would: some functions (coalesce) only run rewritten.
        let context = SimplifyContext::builder()
            .with_schema(Arc::clone(&schema))
            .with_config_options(Arc::clone(state.config_options()))
            .build();
        let simplifier = ExprSimplifier::new(context);
        let logical = simplifier.simplify(simplifier.coerce(logical, &schema)?)?;
        let physical = state.create_physical_expr(logical, &schema)?;
        physical.evaluate(batch)?.into_array(batch.num_rows())
    };
    let mut sides = Vec::with_capacity(strategies.len());
    for strategy in strategies {
        sides.push(evaluate_sql(&batch, &side_sql(strategy))?);
    }
    let mut fired: Option<BooleanArray> = None;
    for side in &sides {
        let this = datafusion::arrow::compute::is_not_null(side)?;
        fired = Some(match fired {
            Some(any) => or(&any, &this)?,
            None => this,
        });
    }
    let fired = fired.expect("at least one strategy");
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (index, side) in sides.into_iter().enumerate() {
        fields.push(Arc::new(Field::new(
            format!("side_{index}"),
            side.data_type().clone(),
            true,
        )));
        columns.push(side);
    }
    let with_sides = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let rows = filter_record_batch(&with_sides, &fired)?;

    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for name in ["symbol", "interval", "date", "close"] {
        let (index, field) = rows
            .schema()
            .column_with_name(name)
            .map(|(i, f)| (i, f.clone()))
            .expect("frame column");
        fields.push(Arc::new(field));
        columns.push(Arc::clone(rows.column(index)));
    }
    for (index, strategy) in strategies.iter().enumerate() {
        let side = Arc::clone(
            rows.column_by_name(&format!("side_{index}"))
                .expect("side column"),
        );
        let strength = evaluate_sql(&rows, &strength_sql(strategy, index))?;
        let inputs = evaluate_sql(&rows, &inputs_json(&strategy.inputs))?;
        for (name, array) in [("side", side), ("strength", strength), ("inputs", inputs)] {
            fields.push(Arc::new(Field::new(
                format!("{name}_{index}"),
                array.data_type().clone(),
                true,
            )));
            columns.push(array);
        }
    }
    Ok(Some(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?))
}

/// The batch with `prev_<column>` for every used column: the value one row
/// up, null on the first row of each (symbol, interval).
fn with_previous_rows(
    batch: &RecordBatch,
    used: &[String],
) -> Result<RecordBatch, DataFusionError> {
    let rows = batch.num_rows();
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("the frame has no column {name}")))
    };
    let up = |array: &ArrayRef| -> Result<ArrayRef, DataFusionError> {
        let head = new_null_array(array.data_type(), 1);
        Ok(concat(&[head.as_ref(), array.slice(0, rows - 1).as_ref()])?)
    };
    let same_as_above = |array: &ArrayRef| -> Result<BooleanArray, DataFusionError> {
        let above = up(array)?;
        Ok(eq(array, &above)?)
    };
    // Null on a series' first row: there the key differs from the row above
    // (or the row above is the null before the first row).
    let same = and(
        &same_as_above(&column("symbol")?)?,
        &same_as_above(&column("interval")?)?,
    )?;
    let starts = not(&same)?;
    let starts = BooleanArray::from_iter(starts.iter().map(|v| Some(v.unwrap_or(true))));
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for name in used {
        let current = column(name)?;
        let previous = nullif(&up(&current)?, &starts)?;
        fields.push(Arc::new(Field::new(
            format!("prev_{name}"),
            current.data_type().clone(),
            true,
        )));
        columns.push(previous);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

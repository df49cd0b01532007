//! Strategies evaluated without a window operator: the frame streams in
//! sorted by (symbol, interval, date); each `prev_<column>` is the column
//! shifted by one row (the last row of the batch before carried over), null
//! where a series starts; every strategy's SQL is planned once into DataFusion
//! physical expressions and evaluated batch by batch, strengths and inputs
//! only over the rows that fired. The SQL is the same text the window query
//! runs, so the signals are the same; strategies that compute series of
//! their own (periods the features table does not store) still need that query.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{
    and, concat, concat_batches, filter_record_batch, is_not_null, not, nullif, or,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
use datafusion::physical_expr::PhysicalExpr;

use crate::engine::{inputs_json, side_sql, strength_sql};
use crate::strategy::CompiledStrategy;

/// Whether every strategy reads only stored columns (the frame this module builds).
pub fn applies(strategies: &[CompiledStrategy]) -> bool {
    strategies.iter().all(|s| s.computed.is_empty())
}

/// The frame's query: the key columns, `close`, and the used stored
/// columns, in series order.
pub fn frame_query(used: &[String], features: &str, filter: &str) -> String {
    let extra: String = used
        .iter()
        .filter(|c| c.as_str() != "close")
        .map(|c| format!(", {c}"))
        .collect();
    format!(
        "SELECT symbol, \"interval\", date, adj_close AS close{extra} FROM {features} {filter} \
         ORDER BY symbol, \"interval\", date"
    )
}

type Expression = Arc<dyn PhysicalExpr>;

/// The strategies planned for one frame schema, and the row carried over
/// from the last batch.
pub struct Evaluation {
    used: Vec<String>,
    frame: SchemaRef,
    sides: Vec<Expression>,
    with_sides: SchemaRef,
    /// Strength and inputs of each strategy, over the fired rows.
    outputs: Vec<(Expression, Expression)>,
    output: SchemaRef,
    carry: Option<RecordBatch>,
}

impl Evaluation {
    /// Plans every strategy against `input` (the frame query's schema).
    pub fn new(
        state: &SessionState,
        input: &Schema,
        used: &[String],
        strategies: &[CompiledStrategy],
    ) -> Result<Self, DataFusionError> {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        for name in used {
            let (_, field) = input
                .column_with_name(name)
                .ok_or_else(|| DataFusionError::Plan(format!("the frame has no column {name}")))?;
            fields.push(Field::new(
                format!("prev_{name}"),
                field.data_type().clone(),
                true,
            ));
        }
        let frame = Arc::new(Schema::new(fields.clone()));
        let sides = strategies
            .iter()
            .map(|s| plan(state, &frame, &side_sql(s)))
            .collect::<Result<Vec<_>, _>>()?;
        for (index, side) in sides.iter().enumerate() {
            fields.push(Field::new(
                format!("side_{index}"),
                side.data_type(&frame)?,
                true,
            ));
        }
        let with_sides = Arc::new(Schema::new(fields));
        let outputs = strategies
            .iter()
            .enumerate()
            .map(|(index, s)| {
                Ok((
                    plan(state, &with_sides, &strength_sql(s, index))?,
                    plan(state, &with_sides, &inputs_json(&s.inputs))?,
                ))
            })
            .collect::<Result<Vec<_>, DataFusionError>>()?;
        let mut output: Vec<Field> = ["symbol", "interval", "date", "close"]
            .iter()
            .map(|name| {
                with_sides
                    .field_with_name(name)
                    .map(|f| f.clone())
                    .map_err(DataFusionError::from)
            })
            .collect::<Result<_, _>>()?;
        for (index, (strength, inputs)) in outputs.iter().enumerate() {
            output.push(
                with_sides
                    .field_with_name(&format!("side_{index}"))?
                    .clone(),
            );
            output.push(Field::new(
                format!("strength_{index}"),
                strength.data_type(&with_sides)?,
                true,
            ));
            output.push(Field::new(
                format!("inputs_{index}"),
                inputs.data_type(&with_sides)?,
                true,
            ));
        }
        Ok(Self {
            used: used.to_vec(),
            frame,
            sides,
            with_sides,
            outputs,
            output: Arc::new(Schema::new(output)),
            carry: None,
        })
    }

    /// The fired rows of the next batch of the sorted frame, with the columns
    /// of the window query's result: `symbol`, `interval`, `date`, `close`,
    /// and per strategy `side_i`, `strength_i`, `inputs_i`.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, DataFusionError> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(None);
        }
        // The previous batch's last row goes first, for the first row's prev_.
        let (joined, skip) = match &self.carry {
            Some(carry) => (concat_batches(&batch.schema(), [carry, batch])?, 1),
            None => (batch.clone(), 0),
        };
        self.carry = Some(batch.slice(rows - 1, 1));
        let frame = self.with_previous_rows(&joined)?.slice(skip, rows);

        let mut columns = frame.columns().to_vec();
        let mut fired: Option<BooleanArray> = None;
        for side in &self.sides {
            let side = side.evaluate(&frame)?.into_array(rows)?;
            let this = is_not_null(&side)?;
            fired = Some(match fired {
                Some(any) => or(&any, &this)?,
                None => this,
            });
            columns.push(side);
        }
        let Some(fired) = fired.filter(|f| f.true_count() > 0) else {
            return Ok(None);
        };
        let with_sides = RecordBatch::try_new(Arc::clone(&self.with_sides), columns)?;
        let fired = filter_record_batch(&with_sides, &fired)?;
        let n = fired.num_rows();
        let column = |name: &str| -> Result<ArrayRef, DataFusionError> {
            fired
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| DataFusionError::Plan(format!("no column {name}")))
        };
        let mut output = vec![
            column("symbol")?,
            column("interval")?,
            column("date")?,
            column("close")?,
        ];
        for (index, (strength, inputs)) in self.outputs.iter().enumerate() {
            output.push(column(&format!("side_{index}"))?);
            output.push(strength.evaluate(&fired)?.into_array(n)?);
            output.push(inputs.evaluate(&fired)?.into_array(n)?);
        }
        Ok(Some(RecordBatch::try_new(
            Arc::clone(&self.output),
            output,
        )?))
    }

    /// `batch` with `prev_<column>` for every used column: the value one row
    /// up, null on the first row of each (symbol, interval) and of `batch`.
    fn with_previous_rows(&self, batch: &RecordBatch) -> Result<RecordBatch, DataFusionError> {
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
            Ok(eq(array, &up(array)?)?)
        };
        let same = and(
            &same_as_above(&column("symbol")?)?,
            &same_as_above(&column("interval")?)?,
        )?;
        // A null comparison (the first row) counts as a start.
        let starts: BooleanArray = not(&same)?
            .iter()
            .map(|v| Some(v.unwrap_or(true)))
            .collect();
        let mut columns = batch.columns().to_vec();
        for name in &self.used {
            columns.push(nullif(&up(&column(name)?)?, &starts)?);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.frame), columns)?)
    }
}

/// One SQL expression over `schema`, as the optimizer would plan it (some
/// functions, such as coalesce, only run rewritten).
fn plan(
    state: &SessionState,
    schema: &SchemaRef,
    sql: &str,
) -> Result<Expression, DataFusionError> {
    let schema = Arc::new(DFSchema::try_from(Arc::clone(schema))?);
    let logical = state.create_logical_expr(sql, &schema)?;
    let context = SimplifyContext::builder()
        .with_schema(Arc::clone(&schema))
        .with_config_options(Arc::clone(state.config_options()))
        .build();
    let simplifier = ExprSimplifier::new(context);
    let logical = simplifier.simplify(simplifier.coerce(logical, &schema)?)?;
    state.create_physical_expr(logical, &schema)
}

//! `prev(x) OVER (PARTITION BY … ORDER BY …)`: the previous row's value, null
//! on a partition's first row. The same as `lag(x)`, but shifts the whole
//! partition's array at once; DataFusion's `lag` builds a scalar per row, which
//! made it the most expensive step of signal generation.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, new_null_array};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Prev {
    signature: Signature,
}

/// How `bf sql --functions` lists `prev`.
pub const USAGE: (&str, &str) = (
    "prev(value)",
    "the previous row's value in the partition; null on its first row",
);

/// The `prev` window function.
pub fn prev_function() -> WindowUDF {
    WindowUDF::new_from_impl(Prev {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl WindowUDFImpl for Prev {
    fn name(&self) -> &str {
        "prev"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Shift))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        match field_args.input_fields().first() {
            Some(input) => Ok(Arc::new(Field::new(
                field_args.name(),
                input.data_type().clone(),
                true,
            ))),
            None => plan_err!("prev takes one argument"),
        }
    }
}

#[derive(Debug)]
struct Shift;

impl PartitionEvaluator for Shift {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let values = &values[0];
        if num_rows == 0 {
            return Ok(Arc::clone(values));
        }
        let first = new_null_array(values.data_type(), 1);
        Ok(concat(&[
            first.as_ref(),
            values.slice(0, num_rows - 1).as_ref(),
        ])?)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Float64Array, Int32Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Float64Type, Schema};
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn shifts_within_each_partition() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int32, false),
            Field::new("t", DataType::Int32, false),
            Field::new("x", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 1, 2, 1, 2])),
                Arc::new(Int32Array::from(vec![3, 1, 1, 2, 2])),
                Arc::new(Float64Array::from(vec![13.0, 11.0, 21.0, 12.0, 22.0])),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_udwf(prev_function());
        ctx.register_batch("t", batch).unwrap();
        let result = ctx
            .sql("SELECT prev(x) OVER (PARTITION BY g ORDER BY t) AS p, lag(x) OVER (PARTITION BY g ORDER BY t) AS l FROM t ORDER BY g, t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let p: Vec<Option<f64>> = result[0]
            .column(0)
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        let l: Vec<Option<f64>> = result[0]
            .column(1)
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        assert_eq!(p, [None, Some(11.0), Some(12.0), None, Some(21.0)]);
        assert_eq!(p, l);
    }
}

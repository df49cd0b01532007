//! bf's indicators: TA-Lib-exact kernels (`kernels/`, one TA-Lib function per
//! module) and the same kernels as DataFusion window functions (`functions`),
//! plus `prev`, the previous row of a partition. The lake registers every one
//! of them in each session it makes, so `bf sql`, the signal engine and (later)
//! the cluster's scheduler and executors all know the same functions.

pub mod functions;
pub mod kernels;
pub mod prev;

use datafusion::arrow::array::Float64Array;
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use datafusion::logical_expr::WindowUDF;
use datafusion::prelude::SessionContext;

/// Every bf window function: the indicators and `prev`.
pub fn window_functions() -> Vec<WindowUDF> {
    functions::functions()
        .into_iter()
        .map(WindowUDF::new_from_impl)
        .chain(std::iter::once(prev::prev_function()))
        .collect()
}

/// Registers every bf window function in a session.
pub fn register(ctx: &SessionContext) {
    for function in window_functions() {
        ctx.register_udwf(function);
    }
}

/// A kernel's output as an Arrow array: NaN (inside TA-Lib's lookback) is null,
/// so nothing non-finite is ever stored or returned.
pub fn nullable(values: Vec<f64>) -> Float64Array {
    let len = values.len();
    let nulls = values
        .iter()
        .any(|v| v.is_nan())
        .then(|| NullBuffer::new(BooleanBuffer::collect_bool(len, |i| !values[i].is_nan())));
    Float64Array::new(ScalarBuffer::from(values), nulls)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Array as _;

    use super::*;

    #[test]
    fn nan_becomes_null() {
        let array = nullable(vec![f64::NAN, 1.0]);
        assert!(array.is_null(0));
        assert_eq!(array.value(1), 1.0);
        assert_eq!(nullable(vec![2.0]).null_count(), 0);
    }
}

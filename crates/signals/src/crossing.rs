//! Crossings, the conditions of the built-in rules: one operand passing
//! another (a frame column or a constant) from one row of a series to the
//! next. Each is written as SQL, which the strategy check and the user see,
//! and evaluated natively: one branch-free comparison pass over the
//! operands' columns packed into a bitmap, its negation for the previous
//! row's comparison, the null masks ANDed into both, and that negation
//! shifted one row down (the previous row, none at a series'
//! start), where DataFusion evaluates the same SQL as four comparisons and
//! three conjunctions over `prev_` columns copied from the operands.

use datafusion::arrow::array::{Array, AsArray, BooleanArray, Float64Array};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::error::ArrowError;

use crate::frame::FrameRows;

/// What a crossing compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Column(String),
    Value(f64),
}

impl Operand {
    fn sql(&self, previous: bool) -> String {
        match (self, previous) {
            (Self::Column(name), false) => name.clone(),
            (Self::Column(name), true) => format!("prev_{name}"),
            (Self::Value(value), _) => format!("{value:?}"),
        }
    }
}

/// `a` crossing `b` upwards (previous row `a <= b`, this row `a > b`) or
/// downwards (`a >= b`, then `a < b`).
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    upwards: bool,
    a: Operand,
    b: Operand,
}

impl Crossing {
    pub fn above(a: Operand, b: Operand) -> Self {
        Self {
            upwards: true,
            a,
            b,
        }
    }

    pub fn below(a: Operand, b: Operand) -> Self {
        Self {
            upwards: false,
            a,
            b,
        }
    }

    /// The crossing as SQL over the signal frame.
    pub fn sql(&self) -> String {
        let (before, now) = if self.upwards {
            ("<=", ">")
        } else {
            (">=", "<")
        };
        format!(
            "({} {before} {} AND {} {now} {})",
            self.a.sql(true),
            self.b.sql(true),
            self.a.sql(false),
            self.b.sql(false)
        )
    }

    /// Where the crossing holds in frame rows: exactly where its SQL is true
    /// (a null operand makes it false).
    pub fn rows(&self, frame: &FrameRows) -> Result<BooleanArray, ArrowError> {
        let n = frame.batch.num_rows();
        let (a, b) = (Values::of(&self.a, frame)?, Values::of(&self.b, frame)?);
        let now = if self.upwards {
            compared(&a, &b, n, |a, b| a > b)
        } else {
            compared(&a, &b, n, |a, b| a < b)
        };
        // The order is total, so the previous row's comparison is the
        // negation of this one: one pass over the operands, not two.
        let before = !&now;
        let (before, now) = [&a, &b]
            .into_iter()
            .filter_map(Values::validity)
            .fold((before, now), |(before, now), valid| {
                (&before & valid, &now & valid)
            });
        Ok(BooleanArray::new(&frame.held_before(&before) & &now, None))
    }
}

/// One operand over a frame batch.
enum Values {
    Column(Float64Array),
    Value(f64),
}

impl Values {
    fn of(operand: &Operand, frame: &FrameRows) -> Result<Self, ArrowError> {
        Ok(match operand {
            Operand::Value(value) => Self::Value(*value),
            Operand::Column(name) => {
                let column = frame.batch.column_by_name(name).ok_or_else(|| {
                    ArrowError::SchemaError(format!("no column {name} in the frame"))
                })?;
                let column = cast(column, &DataType::Float64)?;
                Self::Column(column.as_primitive::<Float64Type>().clone())
            }
        })
    }

    /// Where the operand is not null (`None`: everywhere).
    fn validity(&self) -> Option<&BooleanBuffer> {
        match self {
            Self::Column(column) => column.nulls().map(|nulls| nulls.inner()),
            Self::Value(_) => None,
        }
    }
}

/// Where `holds` is true of the two operands' [`sql_key`]s, row by row,
/// whatever lies under a null. One branch-free pass for each pairing of
/// columns and constants, so the compiler can vectorise it.
fn compared(a: &Values, b: &Values, n: usize, holds: impl Fn(i64, i64) -> bool) -> BooleanBuffer {
    use Values::{Column, Value};
    match (a, b) {
        (Column(a), Column(b)) => {
            let (a, b) = (a.values(), b.values());
            BooleanBuffer::collect_bool(n, |i| holds(sql_key(a[i]), sql_key(b[i])))
        }
        (Column(a), Value(b)) => {
            let (a, b) = (a.values(), sql_key(*b));
            BooleanBuffer::collect_bool(n, |i| holds(sql_key(a[i]), b))
        }
        (Value(a), Column(b)) => {
            let (a, b) = (sql_key(*a), b.values());
            BooleanBuffer::collect_bool(n, |i| holds(a, sql_key(b[i])))
        }
        (Value(a), Value(b)) => {
            let holds = holds(sql_key(*a), sql_key(*b));
            BooleanBuffer::collect_bool(n, |_| holds)
        }
    }
}

/// An integer ordered as SQL compares floats here: DataFusion makes -0.0
/// equal to 0.0, then Arrow's kernels use the IEEE total order (NaN above
/// infinity), which is `f64::total_cmp`'s order of these integers.
fn sql_key(x: f64) -> i64 {
    let bits = if x == 0.0 { 0 } else { x.to_bits() as i64 };
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::common::DFSchema;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// Values that sort the same or differently under SQL's rules.
    const AWKWARD: [Option<f64>; 8] = [
        None,
        Some(-0.0),
        Some(0.0),
        Some(1.0),
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(30.0),
    ];

    /// Every combination of the awkward values in the four positions a
    /// crossing reads, each a series of two rows, with the `prev_` columns
    /// its SQL reads.
    fn frame() -> FrameRows {
        let mut columns: [Vec<Option<f64>>; 4] = Default::default();
        let mut starts = Vec::new();
        for a0 in AWKWARD {
            for b0 in AWKWARD {
                for a1 in AWKWARD {
                    for b1 in AWKWARD {
                        let rows = [[a0, b0, None, None], [a1, b1, a0, b0]];
                        for row in rows {
                            for (column, value) in columns.iter_mut().zip(row) {
                                column.push(value);
                            }
                        }
                        starts.extend([true, false]);
                    }
                }
            }
        }
        let names = ["a", "b", "prev_a", "prev_b"];
        let schema = Schema::new(
            names
                .iter()
                .map(|name| Field::new(*name, DataType::Float64, true))
                .collect::<Vec<_>>(),
        );
        let columns = columns
            .into_iter()
            .map(|values| Arc::new(Float64Array::from(values)) as ArrayRef)
            .collect();
        FrameRows {
            batch: RecordBatch::try_new(Arc::new(schema), columns).unwrap(),
            starts: BooleanBuffer::from(starts),
        }
    }

    /// Where DataFusion finds `sql` true.
    fn true_in_datafusion(sql: &str, frame: &RecordBatch) -> Vec<bool> {
        let ctx = SessionContext::new();
        let schema = DFSchema::try_from(frame.schema().as_ref().clone()).unwrap();
        let expr = ctx.parse_sql_expr(sql, &schema).unwrap();
        let physical = ctx.create_physical_expr(expr, &schema).unwrap();
        let value = physical
            .evaluate(frame)
            .unwrap()
            .into_array(frame.num_rows())
            .unwrap();
        value.as_boolean().iter().map(|v| v == Some(true)).collect()
    }

    #[test]
    fn crossings_hold_exactly_where_their_sql_is_true() {
        let whole = frame();
        let column = |name: &str| Operand::Column(name.to_string());
        for crossing in [
            Crossing::above(column("a"), column("b")),
            Crossing::below(column("a"), column("b")),
            Crossing::above(column("a"), Operand::Value(30.0)),
            Crossing::below(column("a"), Operand::Value(-0.0)),
            Crossing::above(Operand::Value(1.0), column("b")),
        ] {
            // A slice starts its arrays and null masks off a byte boundary
            // (at a series' start, as frame rows always do).
            let slice = FrameRows {
                batch: whole.batch.slice(6, 3001),
                starts: whole.starts.slice(6, 3001),
            };
            for frame in [whole.clone(), slice] {
                let native: Vec<bool> = crossing.rows(&frame).unwrap().iter().flatten().collect();
                let expected = true_in_datafusion(&crossing.sql(), &frame.batch);
                assert_eq!(native, expected, "{}", crossing.sql());
                assert!(native.contains(&true), "{} never holds", crossing.sql());
            }
        }
    }

    #[test]
    fn sql_names_the_previous_row_and_keeps_constants() {
        let rsi = Operand::Column("rsi_14".into());
        assert_eq!(
            Crossing::below(rsi, Operand::Value(30.0)).sql(),
            "(prev_rsi_14 >= 30.0 AND rsi_14 < 30.0)"
        );
    }
}

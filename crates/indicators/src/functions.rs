//! The indicator kernels as DataFusion window functions, so SQL can compute
//! them: `rsi(close, 14) OVER (PARTITION BY symbol ORDER BY date)`. Each call
//! sees one whole partition in order and returns the same values as the
//! `features` table (nulls where the lookback is not met).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, Volatility, WindowUDFImpl};

use crate::kernels::{
    adx::adx, atr::atr, bbands::bbands, ema::ema, macd::macd, obv::obv, returns, rsi::rsi,
    sma::sma, stddev::stddev, stoch::stoch, volatility::volatility, volume_z::volume_z,
};
use crate::nullable;

type Kernel = fn(&[Vec<f64>], &[usize]) -> Vec<f64>;

/// One window function: its series arguments, then its integer parameters.
#[derive(Debug)]
pub struct IndicatorFunction {
    pub name: &'static str,
    pub series: &'static [&'static str],
    pub params: &'static [&'static str],
    pub description: &'static str,
    kernel: Kernel,
    signature: Signature,
}

impl IndicatorFunction {
    fn new(
        name: &'static str,
        series: &'static [&'static str],
        params: &'static [&'static str],
        description: &'static str,
        kernel: Kernel,
    ) -> Self {
        Self {
            name,
            series,
            params,
            description,
            kernel,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// The function over one whole series in date order (`series` as its
    /// series arguments, `params` its integer parameters); null where undefined.
    pub fn compute(&self, series: &[Vec<f64>], params: &[usize]) -> Float64Array {
        nullable((self.kernel)(series, params))
    }

    /// `rsi(close, period)`.
    pub fn usage(&self) -> String {
        let args: Vec<&str> = self.series.iter().chain(self.params).copied().collect();
        format!("{}({})", self.name, args.join(", "))
    }
}

/// Every indicator function, in the order `bf sql --functions` lists them.
pub fn functions() -> Vec<IndicatorFunction> {
    use IndicatorFunction as F;
    vec![
        F::new(
            "ret",
            &["price"],
            &[],
            "simple one-row return, (p − p₋₁) / p₋₁ (TA-Lib ROCP 1)",
            |s, _| returns::simple_return(&s[0]),
        ),
        F::new(
            "log_ret",
            &["price"],
            &[],
            "log one-row return, ln(p / p₋₁)",
            |s, _| returns::log_return(&s[0]),
        ),
        F::new(
            "sma",
            &["value"],
            &["period"],
            "simple moving average (TA-Lib SMA)",
            |s, p| sma(&s[0], p[0]),
        ),
        F::new(
            "ema",
            &["value"],
            &["period"],
            "exponential moving average seeded with the SMA (TA-Lib EMA)",
            |s, p| ema(&s[0], p[0]),
        ),
        F::new(
            "macd",
            &["value"],
            &["fast", "slow", "signal"],
            "MACD line (TA-Lib MACD)",
            |s, p| macd(&s[0], p[0], p[1], p[2]).macd,
        ),
        F::new(
            "macd_signal",
            &["value"],
            &["fast", "slow", "signal"],
            "MACD signal line (TA-Lib MACD)",
            |s, p| macd(&s[0], p[0], p[1], p[2]).signal,
        ),
        F::new(
            "macd_hist",
            &["value"],
            &["fast", "slow", "signal"],
            "MACD histogram (TA-Lib MACD)",
            |s, p| macd(&s[0], p[0], p[1], p[2]).hist,
        ),
        F::new(
            "rsi",
            &["value"],
            &["period"],
            "relative strength index, Wilder smoothing (TA-Lib RSI)",
            |s, p| rsi(&s[0], p[0]),
        ),
        F::new(
            "bb_upper",
            &["value"],
            &["period", "deviations"],
            "upper Bollinger band over an SMA (TA-Lib BBANDS)",
            |s, p| bbands(&s[0], p[0], p[1] as f64, p[1] as f64).upper,
        ),
        F::new(
            "bb_middle",
            &["value"],
            &["period"],
            "middle Bollinger band, the SMA (TA-Lib BBANDS)",
            |s, p| bbands(&s[0], p[0], 2.0, 2.0).middle,
        ),
        F::new(
            "bb_lower",
            &["value"],
            &["period", "deviations"],
            "lower Bollinger band over an SMA (TA-Lib BBANDS)",
            |s, p| bbands(&s[0], p[0], p[1] as f64, p[1] as f64).lower,
        ),
        // Not `stddev`: DataFusion's aggregate of that name would shadow it.
        F::new(
            "rolling_stddev",
            &["value"],
            &["period"],
            "population standard deviation over period rows (TA-Lib STDDEV)",
            |s, p| stddev(&s[0], p[0]),
        ),
        F::new(
            "atr",
            &["high", "low", "close"],
            &["period"],
            "average true range, Wilder smoothing (TA-Lib ATR)",
            |s, p| atr(&s[0], &s[1], &s[2], p[0]),
        ),
        F::new(
            "adx",
            &["high", "low", "close"],
            &["period"],
            "average directional index (TA-Lib ADX)",
            |s, p| adx(&s[0], &s[1], &s[2], p[0]),
        ),
        F::new(
            "stoch_k",
            &["high", "low", "close"],
            &["fast_k", "slow_k", "slow_d"],
            "slow %K with SMA smoothing (TA-Lib STOCH)",
            |s, p| stoch(&s[0], &s[1], &s[2], p[0], p[1], p[2]).k,
        ),
        F::new(
            "stoch_d",
            &["high", "low", "close"],
            &["fast_k", "slow_k", "slow_d"],
            "slow %D with SMA smoothing (TA-Lib STOCH)",
            |s, p| stoch(&s[0], &s[1], &s[2], p[0], p[1], p[2]).d,
        ),
        F::new(
            "obv",
            &["price", "volume"],
            &[],
            "on-balance volume, starting at the first volume (TA-Lib OBV)",
            |s, _| obv(&s[0], &s[1]),
        ),
        F::new(
            "volatility",
            &["price"],
            &["period"],
            "sample stddev of log returns over period rows × √252",
            |s, p| volatility(&s[0], p[0]),
        ),
        F::new(
            "volume_z",
            &["volume"],
            &["period"],
            "(volume − SMA) / population stddev over period rows; 0 when constant",
            |s, p| volume_z(&s[0], p[0]),
        ),
    ]
}

// Identity is the name: two functions with one name cannot be registered anyway.
impl PartialEq for IndicatorFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for IndicatorFunction {}

impl Hash for IndicatorFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl WindowUDFImpl for IndicatorFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.series.len() + self.params.len() {
            return plan_err!(
                "{} takes {} arguments: {}",
                self.name,
                self.series.len() + self.params.len(),
                self.usage()
            );
        }
        for (index, data_type) in arg_types.iter().enumerate() {
            if !data_type.is_numeric() && !data_type.is_null() {
                let argument = self
                    .series
                    .iter()
                    .chain(self.params)
                    .nth(index)
                    .expect("checked count");
                return plan_err!(
                    "{}: {argument} must be numeric, got {data_type} ({})",
                    self.name,
                    self.usage()
                );
            }
        }
        Ok((0..arg_types.len())
            .map(|i| {
                if i < self.series.len() {
                    DataType::Float64
                } else {
                    DataType::Int64
                }
            })
            .collect())
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Evaluator {
            name: self.name,
            params: self.params,
            series: self.series.len(),
            kernel: self.kernel,
        }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

#[derive(Debug)]
struct Evaluator {
    name: &'static str,
    params: &'static [&'static str],
    series: usize,
    kernel: Kernel,
}

impl PartitionEvaluator for Evaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let series: Vec<Vec<f64>> = values[..self.series]
            .iter()
            .map(|array| {
                let array = array.as_primitive::<Float64Type>();
                // A null input has no value: the kernels carry it as NaN, which
                // comes back out as null.
                (0..array.len())
                    .map(|i| {
                        if array.is_null(i) {
                            f64::NAN
                        } else {
                            array.value(i)
                        }
                    })
                    .collect()
            })
            .collect();
        let mut params = Vec::with_capacity(self.params.len());
        for (name, array) in self.params.iter().zip(&values[self.series..]) {
            let array = array.as_primitive::<Int64Type>();
            let value = (!array.is_empty() && array.null_count() == 0)
                .then(|| array.value(0))
                .filter(|&v| v > 0 && array.values().iter().all(|&x| x == v));
            match value {
                Some(v) => params.push(v as usize),
                None => {
                    return exec_err!("{}: {name} must be a constant positive integer", self.name);
                }
            }
        }
        Ok(Arc::new(nullable((self.kernel)(&series, &params))))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[test]
    fn every_function_has_a_unique_name() {
        let mut names: Vec<&str> = functions().iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), functions().len());
    }

    /// SQL resolves DataFusion's built-ins first: a bf function of the same
    /// name would be listed by `bf sql --functions` and never called.
    #[test]
    fn no_function_is_shadowed_by_a_datafusion_built_in() {
        use datafusion::execution::FunctionRegistry as _;
        let state = SessionContext::new().state();
        for function in crate::window_functions() {
            let name = function.name();
            assert!(
                !state.udfs().contains(name)
                    && !state.udafs().contains(name)
                    && !state.udwfs().contains(name),
                "{name} is a DataFusion built-in"
            );
        }
    }

    #[tokio::test]
    async fn every_function_can_be_called_in_sql() {
        let ctx = SessionContext::new();
        crate::register(&ctx);
        for function in functions() {
            let arguments: Vec<String> = function
                .series
                .iter()
                .map(|_| "x".to_string())
                .chain(function.params.iter().map(|_| "2".to_string()))
                .collect();
            let sql = format!(
                "SELECT {}({}) OVER (ORDER BY x) FROM (VALUES (1.0), (2.0), (3.0)) t(x)",
                function.name,
                arguments.join(", ")
            );
            let frame = ctx.sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            frame
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

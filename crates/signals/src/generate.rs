//! The signals stage in one step: check the strategies, generate their
//! signals for some symbols and store them, counting what fired.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bf_core::tables::{col, side};
use bf_lake::{Lake, Series, UpsertMetrics};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use serde::Serialize;

use crate::SignalsError;
use crate::engine::{Plan, RunStamp, generate, prepare, store};
use crate::strategy::Strategies;

/// Signals one strategy produced in a run, by side.
#[derive(Debug, Serialize)]
pub struct StrategyCount {
    pub strategy: String,
    pub buy: usize,
    pub sell: usize,
}

#[derive(Debug, Serialize)]
pub struct GenerateReport {
    pub run_id: String,
    pub strategies_file: String,
    pub strategies: Vec<StrategyCount>,
    pub signals: UpsertMetrics,
    pub seconds: f64,
}

/// Generates the signals of `strategies` for `symbols` and stores them in one
/// commit (signals that no longer fire are removed).
pub async fn generate_and_store(
    lake: &Lake,
    strategies: &Strategies,
    symbols: &[String],
) -> Result<GenerateReport, SignalsError> {
    SignalsRun::start(strategies)
        .await?
        .finish(lake, symbols, symbols)
        .await
}

/// A signals run fed with features as a build computes them, which then
/// reads the other series from the lake and stores everything in one commit.
pub struct SignalsRun {
    plan: Plan,
    run: RunStamp,
    strategies_file: String,
    /// Time spent on this run's own work, not counting the build feeding it.
    spent: Duration,
    signals: Vec<RecordBatch>,
    handed: HashSet<Series>,
}

impl SignalsRun {
    /// Checks the strategies; nothing is read yet.
    pub async fn start(strategies: &Strategies) -> Result<Self, SignalsError> {
        let started = Instant::now();
        let plan = prepare(strategies).await?;
        Ok(Self {
            plan,
            run: RunStamp::now(),
            strategies_file: strategies.path.clone(),
            spent: started.elapsed(),
            signals: Vec::new(),
            handed: HashSet::new(),
        })
    }

    /// The signals of features just computed (the `features` schema, one
    /// whole series per batch in date order); they are not read back.
    pub fn add_features(&mut self, features: &[RecordBatch]) -> Result<(), SignalsError> {
        let started = Instant::now();
        for batch in features.iter().filter(|b| b.num_rows() > 0) {
            let key = |name: &str| -> Result<String, SignalsError> {
                let column = batch.column_by_name(name).expect("features column");
                ScalarValue::try_from_array(column, 0)
                    .map(|value| value.to_string())
                    .map_err(SignalsError::Query)
            };
            self.handed.insert((key(col::SYMBOL)?, key(col::INTERVAL)?));
        }
        self.signals
            .extend(self.plan.features_signals(features, &self.run)?);
        self.spent += started.elapsed();
        Ok(())
    }

    /// Reads the series of `unread` not handed over, and stores the signals
    /// of the run as the whole content of `symbols` for its strategies.
    pub async fn finish(
        mut self,
        lake: &Lake,
        symbols: &[String],
        unread: &[String],
    ) -> Result<GenerateReport, SignalsError> {
        let started = Instant::now();
        let spent = self.spent;
        let seconds = || (spent + started.elapsed()).as_secs_f64();
        if !unread.is_empty() {
            let unread_set: HashSet<&String> = unread.iter().collect();
            let except: Vec<Series> = self
                .handed
                .iter()
                .filter(|(symbol, _)| unread_set.contains(symbol))
                .cloned()
                .collect();
            let read = generate(lake, &self.plan, Some(unread), &except, &self.run).await?;
            self.signals.extend(read);
        }
        tracing::debug!(
            seconds = seconds(),
            rows = self
                .signals
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            "signals computed"
        );
        let counts = count_by_strategy(&self.plan.strategy_names(), &self.signals)?;
        let stored = store(lake, &self.plan, Some(symbols), self.signals).await?;
        tracing::debug!(seconds = seconds(), "signals stored");
        Ok(GenerateReport {
            run_id: self.run.run_id,
            strategies_file: self.strategies_file,
            strategies: counts,
            signals: stored,
            seconds: seconds(),
        })
    }
}

fn count_by_strategy(
    names: &[&str],
    batches: &[RecordBatch],
) -> Result<Vec<StrategyCount>, SignalsError> {
    let mut counts: BTreeMap<&str, (usize, usize)> = names.iter().map(|n| (*n, (0, 0))).collect();
    let as_text = |batch: &RecordBatch, name: &str| {
        let column = batch.column_by_name(name).expect("signals column");
        cast(column, &DataType::Utf8).map_err(|e| SignalsError::Query(e.into()))
    };
    for batch in batches {
        let (strategies, sides) = (as_text(batch, col::STRATEGY)?, as_text(batch, col::SIDE)?);
        for (strategy, side_value) in strategies
            .as_string::<i32>()
            .iter()
            .zip(sides.as_string::<i32>())
        {
            if let (Some(strategy), Some(side_value)) = (strategy, side_value)
                && let Some(count) = counts.get_mut(strategy)
            {
                if side_value == side::BUY {
                    count.0 += 1;
                } else {
                    count.1 += 1;
                }
            }
        }
    }
    Ok(names
        .iter()
        .map(|n| StrategyCount {
            strategy: n.to_string(),
            buy: counts[n].0,
            sell: counts[n].1,
        })
        .collect())
}

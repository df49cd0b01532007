//! The signals stage in one step: check the strategies, generate their
//! signals for some symbols and store them, counting what fired.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bf_core::tables::{SIGNALS, col, side};
use bf_lake::{Lake, Series, UpsertMetrics};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::prelude::{col as column, lit};
use serde::Serialize;

use crate::SignalsError;
use crate::engine::{Plan, RunStamp, generate, prepare};
use crate::error::arrow_error;
use crate::handed::HandedSignals;
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
    signals: HandedSignals,
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
            signals: HandedSignals::default(),
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
            .add(self.plan.features_signals(features, &self.run)?)?;
        self.spent += started.elapsed();
        Ok(())
    }

    /// Reads the series of `unread` not handed over, and stores the signals
    /// of the run as the whole content of `symbols` for its strategies, range
    /// by range as they are computed, in one commit: started over when
    /// another writer committed to `signals` first.
    pub async fn finish(
        self,
        lake: &Lake,
        symbols: &[String],
        unread: &[String],
    ) -> Result<GenerateReport, SignalsError> {
        let started = Instant::now();
        let mut conflicts = 0;
        let (counts, mut stored) = loop {
            match self.store(lake, symbols, unread).await {
                Err(SignalsError::Lake(error))
                    if error.is_conflict() && conflicts < MAX_CONFLICTS =>
                {
                    conflicts += 1;
                    tracing::info!(
                        conflicts,
                        "another writer committed signals first; generating again"
                    );
                }
                done => break done?,
            }
        };
        stored.conflicts_retried = conflicts;
        let seconds = (self.spent + started.elapsed()).as_secs_f64();
        tracing::debug!(seconds, "signals stored");
        Ok(GenerateReport {
            run_id: self.run.run_id,
            strategies_file: self.strategies_file,
            strategies: counts.by_strategy(),
            signals: stored,
            seconds,
        })
    }

    /// One attempt of [`SignalsRun::finish`].
    async fn store(
        &self,
        lake: &Lake,
        symbols: &[String],
        unread: &[String],
    ) -> Result<(Counts, UpsertMetrics), SignalsError> {
        let names = self.plan.strategy_names();
        let scope = column(col::STRATEGY).in_list(names.iter().map(|n| lit(*n)).collect(), false);
        let mut replace = lake
            .replace_by_range(&SIGNALS, scope, Some(symbols))
            .await?;
        let mut counts = Counts::new(&names);
        let mut handed = self.signals.reader();
        if !unread.is_empty() {
            let unread_set: HashSet<&String> = unread.iter().collect();
            let except: Vec<Series> = self
                .handed
                .iter()
                .filter(|(symbol, _)| unread_set.contains(symbol))
                .cloned()
                .collect();
            generate(
                lake,
                &self.plan,
                Some(unread),
                &except,
                &self.run,
                async |mut signals, up_to| {
                    if let Some(cut) = &up_to {
                        signals.extend(handed.take_up_to(cut)?);
                    }
                    counts.add(&signals)?;
                    Ok(replace.push(signals, up_to.as_deref()).await?)
                },
            )
            .await?;
        }
        // Handed in ranges, as read-back signals are, so each range's files
        // are written on their own instead of all signals in one write.
        for range in handed.rest(GROUP_ROWS) {
            let group = range.read()?;
            counts.add(&group)?;
            replace.push(group, Some(&range.up_to)).await?;
        }
        let stored = replace.commit().await?;
        Ok((counts, stored))
    }
}

/// Concurrent signals runs a run outlasts before it gives up.
const MAX_CONFLICTS: usize = 5;

/// Signals per range handed over at once: about 150 MB.
const GROUP_ROWS: usize = 500_000;

/// Signals per strategy (in the plan's order) and side.
struct Counts {
    names: Vec<String>,
    counts: BTreeMap<String, (usize, usize)>,
}

impl Counts {
    fn new(names: &[&str]) -> Self {
        Self {
            names: names.iter().map(|n| n.to_string()).collect(),
            counts: names.iter().map(|n| (n.to_string(), (0, 0))).collect(),
        }
    }

    fn add(&mut self, batches: &[RecordBatch]) -> Result<(), SignalsError> {
        let as_text = |batch: &RecordBatch, name: &str| {
            let column = batch.column_by_name(name).expect("signals column");
            cast(column, &DataType::Utf8).map_err(arrow_error)
        };
        for batch in batches {
            let (strategies, sides) = (as_text(batch, col::STRATEGY)?, as_text(batch, col::SIDE)?);
            // Signals come in runs of one strategy and side: one lookup per run.
            let mut run: Option<(&str, &str, usize)> = None;
            for pair in strategies
                .as_string::<i32>()
                .iter()
                .zip(sides.as_string::<i32>())
            {
                let (Some(strategy), Some(side_value)) = pair else {
                    continue;
                };
                match &mut run {
                    Some((s, v, rows)) if *s == strategy && *v == side_value => *rows += 1,
                    _ => {
                        if let Some((s, v, rows)) = run.replace((strategy, side_value, 1)) {
                            self.tally(s, v, rows);
                        }
                    }
                }
            }
            if let Some((strategy, side_value, rows)) = run {
                self.tally(strategy, side_value, rows);
            }
        }
        Ok(())
    }

    fn tally(&mut self, strategy: &str, side_value: &str, rows: usize) {
        if let Some(count) = self.counts.get_mut(strategy) {
            if side_value == side::BUY {
                count.0 += rows;
            } else {
                count.1 += rows;
            }
        }
    }

    fn by_strategy(self) -> Vec<StrategyCount> {
        self.names
            .into_iter()
            .map(|strategy| {
                let (buy, sell) = self.counts[&strategy];
                StrategyCount {
                    strategy,
                    buy,
                    sell,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn signals(rows: &[(&str, &str)]) -> RecordBatch {
        let column = |values: Vec<&str>| Arc::new(StringArray::from(values)) as _;
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new(col::STRATEGY, DataType::Utf8, false),
                Field::new(col::SIDE, DataType::Utf8, false),
            ])),
            vec![
                column(rows.iter().map(|r| r.0).collect()),
                column(rows.iter().map(|r| r.1).collect()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn counts_add_up_runs_and_scattered_rows_per_strategy_and_side() {
        let mut counts = Counts::new(&["a", "b"]);
        let (buy, sell) = (side::BUY, side::SELL);
        counts
            .add(&[
                signals(&[("a", buy), ("a", buy), ("a", sell), ("b", buy), ("a", buy)]),
                signals(&[("unknown", buy), ("b", sell), ("b", sell)]),
                signals(&[]),
            ])
            .unwrap();
        let got: Vec<(String, usize, usize)> = counts
            .by_strategy()
            .into_iter()
            .map(|c| (c.strategy, c.buy, c.sell))
            .collect();
        assert_eq!(got, [("a".into(), 3, 1), ("b".into(), 1, 2)]);
    }
}

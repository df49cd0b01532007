//! The signals stage in one step: check the strategies, generate their
//! signals for some symbols and store them, counting what fired.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bf_core::tables::{SIGNALS, col, side};
use bf_lake::{Lake, Series, UpsertMetrics, take_symbols_up_to};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, max_string, min_string};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::prelude::{col as column, lit};
use serde::Serialize;

use crate::SignalsError;
use crate::engine::{Plan, RunStamp, generate, prepare};
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
        let mut handed = self.signals.clone();
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
                        signals.extend(take_symbols_up_to(&mut handed, cut).map_err(arrow_error)?);
                    }
                    counts.add(&signals)?;
                    Ok(replace.push(signals, up_to.as_deref()).await?)
                },
            )
            .await?;
        }
        // Handed in ranges, as read-back signals are, so each range's files
        // are written on their own instead of all signals in one write.
        for (group, up_to) in in_symbol_ranges(&handed, GROUP_ROWS)? {
            counts.add(&group)?;
            replace.push(group, Some(&up_to)).await?;
        }
        let stored = replace.commit().await?;
        Ok((counts, stored))
    }
}

/// Concurrent signals runs a run outlasts before it gives up.
const MAX_CONFLICTS: usize = 5;

/// Signals per range handed over at once: about 150 MB.
const GROUP_ROWS: usize = 500_000;

/// `batches` in groups of about `group_rows` rows over ascending symbol
/// ranges, each with its greatest symbol; a group ends only where no batch
/// holds symbols on both sides.
fn in_symbol_ranges(
    batches: &[RecordBatch],
    group_rows: usize,
) -> Result<Vec<(Vec<RecordBatch>, String)>, SignalsError> {
    let mut ranged = Vec::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let symbols = cast(
            batch.column_by_name(col::SYMBOL).expect("signals column"),
            &DataType::Utf8,
        )
        .map_err(arrow_error)?;
        let symbols = symbols.as_string::<i32>();
        let (Some(low), Some(high)) = (min_string(symbols), max_string(symbols)) else {
            continue;
        };
        ranged.push((low.to_string(), high.to_string(), batch));
    }
    ranged.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut groups: Vec<(Vec<RecordBatch>, String)> = Vec::new();
    let mut rows = 0;
    for (low, high, batch) in ranged {
        match groups.last_mut() {
            Some((group, up_to)) if rows < group_rows || low.as_str() <= up_to.as_str() => {
                group.push(batch.clone());
                if high > *up_to {
                    *up_to = high;
                }
            }
            _ => {
                groups.push((vec![batch.clone()], high));
                rows = 0;
            }
        }
        rows += batch.num_rows();
    }
    Ok(groups)
}

fn arrow_error(e: datafusion::arrow::error::ArrowError) -> SignalsError {
    SignalsError::Query(e.into())
}

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
            for (strategy, side_value) in strategies
                .as_string::<i32>()
                .iter()
                .zip(sides.as_string::<i32>())
            {
                if let (Some(strategy), Some(side_value)) = (strategy, side_value)
                    && let Some(count) = self.counts.get_mut(strategy)
                {
                    if side_value == side::BUY {
                        count.0 += 1;
                    } else {
                        count.1 += 1;
                    }
                }
            }
        }
        Ok(())
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

    fn of_symbols(symbols: &[&str]) -> RecordBatch {
        let schema = Schema::new(vec![Field::new(col::SYMBOL, DataType::Utf8, false)]);
        let column = StringArray::from(symbols.to_vec());
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(column)]).unwrap()
    }

    #[test]
    fn symbol_ranges_are_ascending_and_never_split_a_batch_s_symbols() {
        let batches = [
            of_symbols(&["E", "F"]),
            of_symbols(&["A", "B"]),
            of_symbols(&["B", "C"]),
            of_symbols(&[]),
            of_symbols(&["D"]),
        ];
        let groups: Vec<(usize, String)> = in_symbol_ranges(&batches, 2)
            .unwrap()
            .into_iter()
            .map(|(group, up_to)| (group.iter().map(RecordBatch::num_rows).sum(), up_to))
            .collect();
        // A..B and B..C overlap, so they stay together although the first is
        // already two rows; D alone is short of two, so E..F joins it.
        assert_eq!(groups, [(4, "C".to_string()), (3, "F".to_string())]);
    }
}

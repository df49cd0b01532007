//! A seeded generator of realistic daily bars, for demos, tests and benchmarks
//! without a network.
//!
//! Each symbol follows a geometric Brownian motion with its own drift and
//! volatility, simulated on weekdays from a fixed epoch, so a bar depends only on
//! (seed, symbol, date): asking for a later range never changes an earlier bar.
//! Some symbols pay quarterly dividends and expensive ones sometimes split; both
//! are reported as corporate actions, and `adj_close` is back-adjusted for every
//! action up to the end of the requested range, the way Yahoo adjusts as of today.

use async_trait::async_trait;
use bf_core::dates::days_since_epoch;
use bf_core::tables::action_kind;
use bf_core::{Interval, Symbol};
use chrono::{Datelike, NaiveDate, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::bars::{ActionsBuilder, Bar, BarsBuilder};
use crate::{FetchWindow, OnDone, Source, SourceError, SymbolBars, SymbolRequest};

/// The first simulated day; requests before it start here.
pub const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1990, 1, 1).expect("valid date");

/// The last simulated day. Far beyond it, decades of dividends shrink the
/// back-adjustment factor until adjusted closes round to zero.
pub const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).expect("valid date");

pub const SOURCE_NAME: &str = "synthetic";

const TRADING_DAYS_PER_YEAR: f64 = 252.0;
/// Splits only happen to expensive stocks, as in real markets.
const SPLIT_PRICE_THRESHOLD: f64 = 400.0;
const SPLIT_PROBABILITY_PER_DAY: f64 = 0.004;
const DIVIDEND_EVERY_DAYS: usize = 63;

/// What one symbol's fetch produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    pub bars: usize,
    /// A new split or dividend re-adjusted history, so all of it was produced again.
    pub readjusted: bool,
}

/// The generator; cheap to copy, holds only the seed.
#[derive(Debug, Clone, Copy)]
pub struct Synthetic {
    pub seed: u64,
}

/// Per-symbol character of the random walk, drawn once from the symbol's stream.
#[derive(Debug, Clone, Copy)]
struct Profile {
    start_price: f64,
    drift: f64,
    volatility: f64,
    base_volume: f64,
    dividend_yield: Option<f64>,
    dividend_phase: usize,
}

/// A simulated day before adjustment; a split or dividend takes effect on it.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: i64,
    pub split: Option<f64>,
    pub dividend: Option<f64>,
}

impl Synthetic {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// Daily bars and corporate actions of `symbol` from `start` to `end` inclusive,
    /// appended to the builders. Returns the number of bars added.
    pub fn generate(
        &self,
        symbol: &Symbol,
        start: NaiveDate,
        end: NaiveDate,
        bars: &mut BarsBuilder,
        actions: &mut ActionsBuilder,
    ) -> usize {
        let mut generated = Vec::new();
        let count = self
            .fetch(symbol, start, end, None, &mut generated, actions)
            .bars;
        for bar in &generated {
            bars.push(symbol.as_str(), Interval::D1, bar);
        }
        count
    }

    /// Like [`Self::generate`], for a lake that already holds the symbol up to
    /// `stored_through`: only bars from that day on (one bar of overlap) are
    /// produced, unless a split or dividend after it re-adjusts the whole history,
    /// in which case everything from `start` is produced again.
    pub fn fetch(
        &self,
        symbol: &Symbol,
        start: NaiveDate,
        end: NaiveDate,
        stored_through: Option<NaiveDate>,
        bars: &mut Vec<Bar>,
        actions: &mut ActionsBuilder,
    ) -> Fetched {
        if end < start.max(EPOCH) {
            return Fetched::default();
        }
        let days = self.simulate(symbol, end);
        let adjustment = back_adjustment(&days);
        let readjusted = stored_through.is_some_and(|through| {
            days.iter()
                .any(|d| d.date > through && (d.split.is_some() || d.dividend.is_some()))
        });
        let from = match stored_through {
            Some(through) if !readjusted => start.max(through),
            _ => start,
        };
        let mut added = 0;
        for (day, factor) in days.iter().zip(adjustment) {
            if day.date < from {
                continue;
            }
            let date = days_since_epoch(day.date);
            bars.push(Bar {
                date,
                ts: 0,
                open: day.open,
                high: day.high,
                low: day.low,
                close: day.close,
                adj_close: round_to(day.close * factor, 6),
                volume: day.volume,
            });
            added += 1;
            if let Some(ratio) = day.split {
                actions.push(symbol.as_str(), date, action_kind::SPLIT, ratio);
            }
            if let Some(amount) = day.dividend {
                actions.push(symbol.as_str(), date, action_kind::DIVIDEND, amount);
            }
        }
        Fetched {
            bars: added,
            readjusted,
        }
    }

    /// Every simulated weekday of `symbol` up to `end`, unadjusted, with the
    /// factor that turns each close into its adjusted close as of `end` (for a
    /// server that plays a vendor, such as the local Yahoo server).
    pub fn history(&self, symbol: &Symbol, end: NaiveDate) -> (Vec<Day>, Vec<f64>) {
        let days = self.simulate(symbol, end);
        let factors = back_adjustment(&days);
        (days, factors)
    }

    fn rng(&self, symbol: &Symbol) -> ChaCha8Rng {
        // FNV-1a: stable across Rust releases, unlike the std hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for byte in symbol.as_str().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        ChaCha8Rng::seed_from_u64(hash)
    }

    fn simulate(&self, symbol: &Symbol, end: NaiveDate) -> Vec<Day> {
        let mut rng = self.rng(symbol);
        let profile = Profile {
            start_price: 10f64.powf(rng.random_range(1.0..2.7)),
            drift: rng.random_range(-0.05..0.25),
            volatility: rng.random_range(0.15..0.60),
            base_volume: 10f64.powf(rng.random_range(5.0..7.5)),
            dividend_yield: rng.random_bool(0.6).then(|| rng.random_range(0.005..0.04)),
            dividend_phase: rng.random_range(0..DIVIDEND_EVERY_DAYS),
        };
        let dt = 1.0 / TRADING_DAYS_PER_YEAR;
        let sigma_day = profile.volatility * dt.sqrt();
        let mu_day = (profile.drift - 0.5 * profile.volatility * profile.volatility) * dt;

        let mut days = Vec::with_capacity(weekdays_between(EPOCH, end));
        let mut prev_close = round_to(profile.start_price, 2);
        let mut date = EPOCH;
        let mut index = 0usize;
        while date <= end {
            if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                date = date.succ_opt().expect("date in range");
                continue;
            }
            let z: f64 = StandardNormal.sample(&mut rng);
            let gap: f64 = StandardNormal.sample(&mut rng);
            let up: f64 = StandardNormal.sample(&mut rng);
            let down: f64 = StandardNormal.sample(&mut rng);
            let noise: f64 = StandardNormal.sample(&mut rng);
            let split_draw: f64 = rng.random();

            let split = (prev_close > SPLIT_PRICE_THRESHOLD
                && split_draw < SPLIT_PROBABILITY_PER_DAY)
                .then(|| [2.0, 3.0, 4.0][(split_draw * 1e6) as usize % 3]);
            let dividend = profile
                .dividend_yield
                .filter(|_| index % DIVIDEND_EVERY_DAYS == profile.dividend_phase)
                .map(|annual| round_to(prev_close * annual / 4.0, 2))
                .filter(|amount| *amount > 0.0);
            let mut reference = prev_close / split.unwrap_or(1.0) - dividend.unwrap_or(0.0);
            reference = reference.max(0.01);

            let open = round_to(reference * (0.3 * sigma_day * gap).exp(), 2).max(0.01);
            let close = round_to(reference * (mu_day + sigma_day * z).exp(), 2).max(0.01);
            let high = round_to(open.max(close) * (0.5 * sigma_day * up.abs()).exp(), 2);
            let low = round_to(open.min(close) * (-0.5 * sigma_day * down.abs()).exp(), 2)
                .clamp(0.01, open.min(close));
            let volume = (profile.base_volume * (0.4 * noise + 0.5 * z.abs()).exp()).round() as i64;

            days.push(Day {
                date,
                open,
                high,
                low,
                close,
                volume,
                split,
                dividend,
            });
            prev_close = close;
            index += 1;
            date = date.succ_opt().expect("date in range");
        }
        days
    }
}

/// The factor that turns each day's close into its adjusted close, as of the last
/// simulated day: each split divides earlier prices by its ratio, each dividend
/// scales them by (1 − amount / previous close), the CRSP convention Yahoo uses.
fn back_adjustment(days: &[Day]) -> Vec<f64> {
    let mut factors = vec![1.0; days.len()];
    let mut factor = 1.0;
    for i in (0..days.len()).rev() {
        factors[i] = factor;
        if i == 0 {
            break;
        }
        if let Some(ratio) = days[i].split {
            factor /= ratio;
        }
        if let Some(amount) = days[i].dividend {
            // The previous close in post-split terms, as the ex-date's price sees it.
            let prev_close = days[i - 1].close / days[i].split.unwrap_or(1.0);
            factor *= 1.0 - amount / prev_close;
        }
    }
    factors
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn weekdays_between(start: NaiveDate, end: NaiveDate) -> usize {
    let days = (end - start).num_days().max(0) as usize + 1;
    days * 5 / 7 + 2
}

#[async_trait]
impl Source for Synthetic {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    /// Generates every symbol in parallel on the blocking pool.
    async fn fetch_all(
        &self,
        requests: Vec<SymbolRequest>,
        window: FetchWindow,
        ingested_at: i64,
        on_done: OnDone,
    ) -> Result<Vec<Result<SymbolBars, SourceError>>, SourceError> {
        if window.interval != Interval::D1 {
            return Err(SourceError::SyntheticInterval(window.interval));
        }
        if window.end > LAST_DAY {
            return Err(SourceError::SyntheticEnd {
                end: window.end,
                last: LAST_DAY,
            });
        }
        let generator = *self;
        let generate = move || {
            requests
                .par_iter()
                .map(|request| {
                    // Sized for the weekdays to produce: a vector grown by
                    // doubling keeps its slack, up to twice the memory, which
                    // the fetch holds until stored.
                    let from = request
                        .stored
                        .map_or(window.start, |last| last.date.max(window.start));
                    let capacity = weekdays_between(from, window.end);
                    let mut bars = Vec::with_capacity(capacity);
                    let mut actions = ActionsBuilder::new(SOURCE_NAME, ingested_at);
                    let fetched = generator.fetch(
                        &request.symbol,
                        window.start,
                        window.end,
                        request.stored.map(|last| last.date),
                        &mut bars,
                        &mut actions,
                    );
                    on_done(&request.symbol, fetched.bars);
                    Ok(SymbolBars {
                        symbol: request.symbol.clone(),
                        bars,
                        actions: actions.finish(),
                        null_rows: 0,
                        invalid: Vec::new(),
                        readjusted: fetched.readjusted,
                        session: None,
                    })
                })
                .collect()
        };
        tokio::task::spawn_blocking(generate)
            .await
            .map_err(|e| SourceError::Worker(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::{Date32Type, Float64Type};

    fn generate(
        seed: u64,
        symbol: &str,
        start: (i32, u32, u32),
        end: (i32, u32, u32),
    ) -> (RecordBatch, RecordBatch) {
        let mut bars = BarsBuilder::new(SOURCE_NAME, 0, 0);
        let mut actions = ActionsBuilder::new(SOURCE_NAME, 0);
        let date = |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        Synthetic::new(seed).generate(
            &Symbol::parse(symbol).unwrap(),
            date(start),
            date(end),
            &mut bars,
            &mut actions,
        );
        (bars.finish(), actions.finish())
    }

    fn f64_col<'a>(batch: &'a RecordBatch, name: &str) -> &'a [f64] {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .values()
    }

    #[test]
    fn same_seed_same_bars_and_ranges_agree() {
        let (a, _) = generate(7, "AAA", (2000, 1, 1), (2010, 12, 31));
        let (b, _) = generate(7, "AAA", (2000, 1, 1), (2010, 12, 31));
        assert_eq!(a, b);
        let (other_seed, _) = generate(8, "AAA", (2000, 1, 1), (2010, 12, 31));
        assert_ne!(f64_col(&a, "close"), f64_col(&other_seed, "close"));
        // A later start yields a suffix of the same raw bars.
        let (later, _) = generate(7, "AAA", (2005, 1, 1), (2010, 12, 31));
        let n = later.num_rows();
        assert_eq!(
            f64_col(&later, "close"),
            &f64_col(&a, "close")[a.num_rows() - n..]
        );
    }

    #[test]
    fn bars_are_consistent_weekdays_only() {
        let (bars, _) = generate(1, "BBB", (1995, 1, 1), (2020, 12, 31));
        let dates = bars
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>();
        let (open, high, low, close) = (
            f64_col(&bars, "open"),
            f64_col(&bars, "high"),
            f64_col(&bars, "low"),
            f64_col(&bars, "close"),
        );
        for i in 0..bars.num_rows() {
            let date = dates.value_as_date(i).unwrap();
            assert!(
                !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                "{date}"
            );
            assert!(low[i] > 0.0 && low[i] <= open[i].min(close[i]), "row {i}");
            assert!(high[i] >= open[i].max(close[i]), "row {i}");
            if i > 0 {
                assert!(dates.value(i) > dates.value(i - 1));
            }
        }
    }

    #[test]
    fn adj_close_reflects_every_later_action() {
        // Search a few symbols for one that both splits and pays dividends.
        let (bars, actions) = (0..200)
            .map(|i| generate(3, &format!("S{i}"), (1990, 1, 1), (2024, 12, 31)))
            .find(|(_, actions)| {
                let kinds = actions.column_by_name("kind").unwrap().as_string::<i32>();
                kinds.iter().any(|k| k == Some("split"))
                    && kinds.iter().any(|k| k == Some("dividend"))
            })
            .expect("some symbol splits and pays dividends");
        let close = f64_col(&bars, "close");
        let adj = f64_col(&bars, "adj_close");
        let last = bars.num_rows() - 1;
        assert_eq!(adj[last], close[last], "the last bar is unadjusted");

        let dates = bars
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>()
            .values();
        let action_dates = actions
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>()
            .values();
        let kinds = actions.column_by_name("kind").unwrap().as_string::<i32>();
        let values = f64_col(&actions, "value");
        // Between consecutive rows, the factor adj/close changes exactly by the
        // action on the later row, and stays put otherwise.
        for i in 1..bars.num_rows() {
            let step = (adj[i] / close[i]) / (adj[i - 1] / close[i - 1]);
            let mut expected = 1.0;
            for a in (0..actions.num_rows()).filter(|&a| action_dates[a] == dates[i]) {
                if kinds.value(a) == "split" {
                    expected *= values[a];
                } else {
                    let prev_close = close[i - 1] / actions_split_ratio(&actions, dates[i]);
                    expected /= 1.0 - values[a] / prev_close;
                }
            }
            assert!(
                (step / expected - 1.0).abs() < 1e-5,
                "row {i}: step {step}, expected {expected}"
            );
        }
    }

    #[test]
    fn incremental_fetch_starts_at_the_stored_day_unless_history_was_readjusted() {
        let synthetic = Synthetic::new(5);
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let run = |symbol: &Symbol, through| {
            let mut bars = Vec::new();
            let mut actions = ActionsBuilder::new(SOURCE_NAME, 0);
            synthetic.fetch(
                symbol,
                date(2000, 1, 1),
                date(2020, 1, 10),
                through,
                &mut bars,
                &mut actions,
            )
        };
        let mut quiet = 0;
        let mut readjusted = 0;
        for i in 0..50 {
            let symbol = Symbol::parse(&format!("Q{i}")).unwrap();
            let full = run(&symbol, None);
            let tail = run(&symbol, Some(date(2020, 1, 6)));
            if tail.readjusted {
                assert_eq!(tail.bars, full.bars);
                readjusted += 1;
            } else {
                assert_eq!(tail.bars, 5, "Jan 6 to Jan 10, 2020");
                quiet += 1;
            }
        }
        assert!(
            quiet > 0 && readjusted > 0,
            "{quiet} quiet, {readjusted} readjusted"
        );
    }

    fn actions_split_ratio(actions: &RecordBatch, date: i32) -> f64 {
        let dates = actions
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>()
            .values();
        let kinds = actions.column_by_name("kind").unwrap().as_string::<i32>();
        (0..actions.num_rows())
            .find(|&a| dates[a] == date && kinds.value(a) == "split")
            .map_or(1.0, |a| f64_col(actions, "value")[a])
    }
}

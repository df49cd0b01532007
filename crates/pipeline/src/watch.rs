//! `bf data watch`: live intraday bars. Each symbol is polled while its
//! exchange's regular session is open (as the source reports it, in the
//! exchange's own time zone) and once more after the close for the final bar;
//! outside the session it waits for the next open. Every poll upserts what is
//! new into `ohlcv` in one commit, through the same fetch as `bf data fetch`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use bf_core::{Clock, Symbol};
use bf_lake::Lake;
use bf_sources::TradingSession;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::PipelineError;
use crate::fetch::{FetchReport, FetchRequest, fetch_as_of};

/// What to watch: `fetch` names the symbols, interval, first date and source;
/// `every` is the time between polls of an open exchange.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub fetch: FetchRequest,
    pub every: TimeDelta,
}

/// What happened, as it happens.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// One poll of the symbols that were due, committed.
    Polled {
        at: DateTime<Utc>,
        report: &'a FetchReport,
    },
    /// A poll that stored nothing; the symbols are tried again at the next poll.
    Failed {
        at: DateTime<Utc>,
        error: &'a PipelineError,
    },
    /// Nothing is due before `until`; `closed` are the exchanges waiting for
    /// their next session.
    Waiting {
        until: DateTime<Utc>,
        closed: Vec<ClosedExchange>,
    },
}

/// An exchange whose session is over (or not begun), and when it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedExchange {
    pub zone: Tz,
    pub symbols: usize,
    pub opens: DateTime<Utc>,
}

/// The totals of a watch that was stopped.
#[derive(Debug, Default)]
pub struct WatchSummary {
    pub polls: usize,
    pub failed_polls: usize,
    pub bars_inserted: usize,
    pub bars_updated: usize,
    /// Symbols whose last poll failed, with the reason.
    pub failing: BTreeMap<String, String>,
}

/// Polls until `stop` resolves (looked at between polls, so a poll in
/// progress ends with its commit).
/// The first poll's errors (a range the source cannot serve, a lake that
/// cannot be written) end the watch; later ones are reported and retried.
pub async fn watch(
    lake: &Lake,
    request: &WatchRequest,
    clock: Clock,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(WatchEvent<'_>),
) -> Result<WatchSummary, PipelineError> {
    tokio::pin!(stop);
    let mut schedule = Schedule::new(&request.fetch.symbols, request.every, clock.now());
    let mut summary = WatchSummary::default();
    loop {
        let now = clock.now();
        let due = schedule.due(now);
        if !due.is_empty() {
            let fetch = FetchRequest {
                symbols: due.clone(),
                ..request.fetch.clone()
            };
            match fetch_as_of(lake, &fetch, now.date_naive(), Arc::new(())).await {
                Ok(report) => {
                    summary.polls += 1;
                    summary.bars_inserted += report.ohlcv.inserted;
                    summary.bars_updated += report.ohlcv.updated;
                    for symbol in &report.symbols {
                        match &symbol.error {
                            Some(error) => {
                                summary.failing.insert(symbol.symbol.clone(), error.clone())
                            }
                            None => summary.failing.remove(&symbol.symbol),
                        };
                    }
                    for (symbol, fetched) in due.iter().zip(&report.symbols) {
                        schedule.polled(symbol, fetched.session, now);
                    }
                    on_event(WatchEvent::Polled {
                        at: now,
                        report: &report,
                    });
                }
                Err(error) if summary.polls == 0 && summary.failed_polls == 0 => {
                    return Err(error);
                }
                Err(error) => {
                    summary.failed_polls += 1;
                    for symbol in &due {
                        schedule.polled(symbol, None, now);
                    }
                    on_event(WatchEvent::Failed {
                        at: now,
                        error: &error,
                    });
                }
            }
        }
        let now = clock.now();
        let until = schedule.next_wake();
        if until > schedule.next_tick(now) {
            on_event(WatchEvent::Waiting {
                until,
                closed: schedule.closed(now),
            });
        }
        tokio::select! {
            biased;
            () = &mut stop => return Ok(summary),
            () = tokio::time::sleep(clock.real_wait(until)) => {}
        }
    }
}

/// When each symbol is polled next.
#[derive(Debug)]
struct Schedule {
    every: TimeDelta,
    entries: BTreeMap<Symbol, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    next: DateTime<Utc>,
    session: Option<TradingSession>,
}

impl Schedule {
    /// Every symbol is due at `now`: the first poll catches up and learns
    /// each exchange's session.
    fn new(symbols: &[Symbol], every: TimeDelta, now: DateTime<Utc>) -> Self {
        let entry = Entry {
            next: now,
            session: None,
        };
        Self {
            every: every.max(TimeDelta::seconds(1)),
            entries: symbols.iter().map(|s| (s.clone(), entry)).collect(),
        }
    }

    fn due(&self, now: DateTime<Utc>) -> Vec<Symbol> {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.next <= now)
            .map(|(symbol, _)| symbol.clone())
            .collect()
    }

    /// Records a poll at `at` and the session the source reported (a failed
    /// poll reports none, and the last known one stays).
    fn polled(&mut self, symbol: &Symbol, session: Option<TradingSession>, at: DateTime<Utc>) {
        let tick = self.next_tick(at);
        let every = self.every;
        let Some(entry) = self.entries.get_mut(symbol) else {
            return;
        };
        entry.session = session.or(entry.session);
        entry.next = match entry.session {
            None => tick,
            Some(s) if at < s.open => s.open,
            // One poll after the close picks up the session's last bar.
            Some(s) if at < s.close + every => tick,
            Some(s) => s.next_weekday().open,
        };
    }

    /// The next poll time of an open exchange: on the `every` grid, a few
    /// seconds late, so that a bar that just ended is served already.
    fn next_tick(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let every = self.every.num_milliseconds().max(1);
        let settle = (self.every / 12).min(TimeDelta::seconds(5));
        let at_ms = at.timestamp_millis() - settle.num_milliseconds();
        let next_ms = (at_ms.div_euclid(every) + 1) * every;
        DateTime::from_timestamp_millis(next_ms).unwrap_or(at) + settle
    }

    fn next_wake(&self) -> DateTime<Utc> {
        self.entries
            .values()
            .map(|entry| entry.next)
            .min()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Exchanges waiting for their next session at `now`, soonest first.
    fn closed(&self, now: DateTime<Utc>) -> Vec<ClosedExchange> {
        let mut by_zone: BTreeMap<(DateTime<Utc>, &str), ClosedExchange> = BTreeMap::new();
        for entry in self.entries.values() {
            let Some(session) = entry.session else {
                continue;
            };
            let polling = now >= session.open && now < session.close + self.every;
            if polling || entry.next <= now {
                continue;
            }
            by_zone
                .entry((entry.next, session.zone.name()))
                .or_insert(ClosedExchange {
                    zone: session.zone,
                    symbols: 0,
                    opens: entry.next,
                })
                .symbols += 1;
        }
        by_zone.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn new_york(day: &str) -> TradingSession {
        TradingSession {
            zone: chrono_tz::America::New_York,
            open: utc(&format!("{day}T14:30:00Z")),
            close: utc(&format!("{day}T21:00:00Z")),
        }
    }

    fn symbols(names: &[&str]) -> Vec<Symbol> {
        names.iter().map(|n| Symbol::parse(n).unwrap()).collect()
    }

    #[test]
    fn every_symbol_is_due_at_the_start() {
        let now = utc("2026-12-01T03:00:00Z");
        let schedule = Schedule::new(&symbols(&["AAPL", "7203.T"]), TimeDelta::minutes(1), now);
        assert_eq!(schedule.due(now).len(), 2);
        assert_eq!(schedule.next_wake(), now);
    }

    #[test]
    fn before_the_open_the_next_poll_is_the_open() {
        let at = utc("2026-12-01T13:00:00Z");
        let aapl = symbols(&["AAPL"]);
        let mut schedule = Schedule::new(&aapl, TimeDelta::minutes(1), at);
        schedule.polled(&aapl[0], Some(new_york("2026-12-01")), at);
        assert_eq!(schedule.next_wake(), utc("2026-12-01T14:30:00Z"));
        assert!(schedule.due(utc("2026-12-01T14:29:59Z")).is_empty());
        let closed = schedule.closed(at);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].opens, utc("2026-12-01T14:30:00Z"));
        assert_eq!(closed[0].zone, chrono_tz::America::New_York);
    }

    #[test]
    fn in_session_polls_follow_the_grid_a_few_seconds_late() {
        let at = utc("2026-12-01T15:00:20Z");
        let aapl = symbols(&["AAPL"]);
        let mut schedule = Schedule::new(&aapl, TimeDelta::minutes(1), at);
        schedule.polled(&aapl[0], Some(new_york("2026-12-01")), at);
        assert_eq!(schedule.next_wake(), utc("2026-12-01T15:01:05Z"));
        assert!(schedule.closed(at).is_empty());
        // Polled just after a tick, the next is a minute later, not at once.
        schedule.polled(&aapl[0], None, utc("2026-12-01T15:01:05Z"));
        assert_eq!(schedule.next_wake(), utc("2026-12-01T15:02:05Z"));
    }

    #[test]
    fn one_poll_after_the_close_then_the_next_weekday() {
        let aapl = symbols(&["AAPL"]);
        let friday = new_york("2026-12-04");
        let mut schedule = Schedule::new(&aapl, TimeDelta::minutes(1), friday.open);
        schedule.polled(&aapl[0], Some(friday), utc("2026-12-04T20:59:05Z"));
        assert_eq!(schedule.next_wake(), utc("2026-12-04T21:00:05Z"));
        schedule.polled(&aapl[0], Some(friday), utc("2026-12-04T21:00:05Z"));
        assert_eq!(schedule.next_wake(), utc("2026-12-04T21:01:05Z"));
        schedule.polled(&aapl[0], Some(friday), utc("2026-12-04T21:01:05Z"));
        assert_eq!(schedule.next_wake(), utc("2026-12-07T14:30:00Z"));
        let closed = schedule.closed(utc("2026-12-04T21:01:06Z"));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].opens, utc("2026-12-07T14:30:00Z"));
    }

    #[test]
    fn a_holiday_answer_naming_a_later_session_waits_for_it() {
        let aapl = symbols(&["AAPL"]);
        let at = utc("2026-12-25T14:30:00Z");
        let mut schedule = Schedule::new(&aapl, TimeDelta::minutes(1), at);
        schedule.polled(&aapl[0], Some(new_york("2026-12-28")), at);
        assert_eq!(schedule.next_wake(), utc("2026-12-28T14:30:00Z"));
    }

    #[test]
    fn a_failed_symbol_keeps_its_session_and_one_without_a_session_polls_on() {
        let names = symbols(&["AAPL", "SYN"]);
        let at = utc("2026-12-05T12:01:00Z");
        let mut schedule = Schedule::new(&names, TimeDelta::minutes(5), at);
        schedule.polled(&names[0], Some(new_york("2026-12-04")), at);
        schedule.polled(&names[0], None, at);
        schedule.polled(&names[1], None, at);
        assert_eq!(
            schedule.due(utc("2026-12-05T12:05:05Z")),
            vec![names[1].clone()]
        );
        assert_eq!(schedule.next_wake(), utc("2026-12-05T12:05:05Z"));
        assert_eq!(
            schedule.entries[&names[0]].next,
            utc("2026-12-07T14:30:00Z")
        );
    }
}

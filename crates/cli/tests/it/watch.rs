//! `bf data watch` against the local Yahoo-format server, both on a simulated
//! clock running 60 times faster than real time (a trading minute per second).

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bf_core::Clock;
use bf_testkit::yahoo_server::{Server, ServerConfig};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::Workspace;

pub const SPEED: f64 = 60.0;

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A running `bf data watch --json` and the events it printed so far;
/// killed if the test ends before it is stopped.
pub struct Watch {
    child: Option<Child>,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Watch {
    pub fn start(ws: &Workspace, server: &Server, clock: Clock, symbols: &str) -> Self {
        let mut command: Command = ws.command(&[
            "data",
            "watch",
            "--symbols",
            symbols,
            "--interval",
            "1m",
            "--every",
            "60s",
            "--yahoo-url",
            &server.url(),
            "--rate-limit",
            "0",
            "--now",
            &clock.now().to_rfc3339(),
            "--clock-speed",
            &SPEED.to_string(),
            "--json",
        ]);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
                if sender.send(event).is_err() {
                    return;
                }
            }
        });
        Self {
            child: Some(child),
            events,
            seen: Vec::new(),
        }
    }

    /// Waits (at most a minute) for an event that `wanted` accepts.
    pub fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if wanted(&event) {
                        return event;
                    }
                }
                Err(_) => panic!("no {what} event; seen: {:#?}", self.seen),
            }
        }
    }

    /// Sends `signal` and returns the exit code, the events left and stderr.
    pub fn stop(mut self, signal: &str) -> (Option<i32>, Vec<Value>, String) {
        let child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let stopped = Instant::now();
        let output = child.wait_with_output().unwrap();
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "a stop takes effect after the poll in progress"
        );
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.events.try_iter());
        (
            output.status.code(),
            seen,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn is(event: &Value, kind: &str) -> bool {
    event["event"] == kind
}

pub fn at(event: &Value) -> DateTime<Utc> {
    utc(event["at"].as_str().unwrap())
}

/// Bar starts stored for `symbol`, oldest first.
fn stored_starts(ws: &Workspace, symbol: &str, day: &str) -> Vec<DateTime<Utc>> {
    let csv = ws.ok(&[
        "sql",
        &format!(
            "SELECT CAST(ts AS VARCHAR) AS start FROM ohlcv WHERE symbol = '{symbol}' \
             AND \"interval\" = '1m' AND date = DATE '{day}' ORDER BY ts"
        ),
        "--format",
        "csv",
    ]);
    csv.lines()
        .skip(1)
        .map(|line| {
            let line = line.trim_end_matches('Z');
            chrono::NaiveDateTime::parse_from_str(line, "%Y-%m-%dT%H:%M:%S")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(line, "%Y-%m-%d %H:%M:%S"))
                .unwrap_or_else(|e| panic!("{line}: {e}"))
                .and_utc()
        })
        .collect()
}

/// From 09:27 New York on a Monday: a first poll catches up the last days
/// of every symbol, then only New York's symbols are polled, every minute
/// from the open, each poll storing the bar that just ended; Tokyo's symbol
/// waits for its own session. Ctrl-C stops after the poll in progress.
#[test]
fn polls_each_exchange_in_its_session_and_stores_each_new_bar() {
    let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let mut config = ServerConfig::new(day);
    let clock = Clock::simulated(utc("2026-11-30T14:27:00Z"), SPEED);
    config.clock = Some(clock);
    let server = Server::spawn(config, 0).unwrap();
    let ws = Workspace::new();
    let mut watch = Watch::start(&ws, &server, clock, "AAPL,MSFT,7203.T");

    let first = watch.wait_for("first poll", |e| is(e, "poll"));
    assert_eq!(first["symbols"], 3);
    assert!(first["failed"].as_array().unwrap().is_empty(), "{first}");
    // Five days back from Monday: Wednesday to Friday of New York, Tuesday's
    // end to Monday's close of Tokyo.
    assert!(
        first["bars_inserted"].as_u64().unwrap() >= 3 * 3 * 390,
        "{first}"
    );
    let waiting = watch.wait_for("waiting", |e| is(e, "waiting"));
    let closed = waiting["closed"].as_array().unwrap();
    assert_eq!(closed[0]["zone"], "America/New_York", "{waiting}");
    assert_eq!(closed[0]["opens"], "2026-11-30T14:30:00+00:00");
    assert_eq!(closed[1]["zone"], "Asia/Tokyo");
    assert_eq!(closed[1]["opens"], "2026-12-01T00:00:00+00:00");

    let mut last = first;
    while at(&last) < utc("2026-11-30T14:40:00Z") {
        last = watch.wait_for("poll", |e| is(e, "poll"));
        assert_eq!(last["symbols"], 2, "only New York is open: {last}");
        assert_eq!(last["bars_updated"], 0, "{last}");
    }
    let (code, events, stderr) = watch.stop("-INT");
    assert_eq!(code, Some(0), "{stderr}");
    let stopped = events.last().unwrap();
    assert!(is(stopped, "stopped"), "{events:#?}");

    // Polls come late under load (a real second is a trading minute here),
    // so the test asks for the end state, not one bar per poll: Monday's bars
    // without a gap or a repeat, up to the last poll, each inserted once.
    let polls: Vec<&Value> = events.iter().filter(|e| is(e, "poll")).collect();
    let session_bars: u64 = polls[1..]
        .iter()
        .map(|e| e["bars_inserted"].as_u64().unwrap())
        .sum();
    let last_poll = polls.last().unwrap();
    let starts = stored_starts(&ws, "AAPL", "2026-11-30");
    let minute = |m: i64| utc("2026-11-30T14:30:00Z") + chrono::TimeDelta::minutes(m);
    assert_eq!(
        starts,
        (0..starts.len() as i64).map(minute).collect::<Vec<_>>(),
        "Monday's bars from the open, no gap, no repeat"
    );
    let complete = (at(last_poll) - minute(0)).num_minutes();
    assert!(
        (complete - 1..=complete + 1).contains(&(starts.len() as i64)),
        "{} bars stored, {complete} ended by the last poll",
        starts.len()
    );
    // MSFT is polled a moment after AAPL, so under load it may hold one
    // more ended minute: each symbol's own stored bars are the measure.
    let msft = stored_starts(&ws, "MSFT", "2026-11-30");
    assert!(
        msft.len().abs_diff(starts.len()) <= 1,
        "AAPL {} bars, MSFT {}",
        starts.len(),
        msft.len()
    );
    assert_eq!(
        session_bars,
        (starts.len() + msft.len()) as u64,
        "each bar inserted once"
    );
    let opening = ws.scalar(
        "SELECT CAST(round(open * 1000000) AS BIGINT) FROM ohlcv WHERE symbol = 'AAPL' \
         AND \"interval\" = '1m' AND ts = TIMESTAMP '2026-11-30 14:30:00'",
    );
    let served = server.served_daily("AAPL", day)[0];
    assert_eq!(opening, (served.open * 1e6).round() as i64);
    let tokyo = server
        .requests()
        .iter()
        .filter(|r| r.symbol == "7203.T")
        .count();
    assert_eq!(tokyo, 1, "Tokyo is closed after the first poll");
}

/// Near Friday's close: polls until the last bar of the session is stored,
/// then waits for Monday's open (asking nothing meanwhile) and stops at once
/// on SIGTERM.
#[test]
fn after_the_close_it_waits_for_the_next_session_without_polling() {
    let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    let mut config = ServerConfig::new(day);
    let clock = Clock::simulated(utc("2026-12-04T20:57:00Z"), SPEED);
    config.clock = Some(clock);
    let server = Server::spawn(config, 0).unwrap();
    let ws = Workspace::new();
    let mut watch = Watch::start(&ws, &server, clock, "AAPL");

    let waiting = watch.wait_for("waiting for Monday", |e| is(e, "waiting"));
    assert_eq!(waiting["until"], "2026-12-07T14:30:00+00:00", "{waiting}");
    assert_eq!(waiting["closed"][0]["zone"], "America/New_York");
    let requests = server.requests().len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(server.requests().len(), requests, "no poll while closed");
    let (code, events, stderr) = watch.stop("-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(is(events.last().unwrap(), "stopped"), "{events:#?}");
    assert!(events.iter().all(|e| !is(e, "poll_failed")), "{events:#?}");
    let friday = stored_starts(&ws, "AAPL", "2026-12-04");
    assert_eq!(
        friday.len(),
        390,
        "the whole session, its last bar included"
    );
    assert_eq!(*friday.last().unwrap(), utc("2026-12-04T20:59:00Z"));
}

//! A local server that speaks Yahoo's chart API — same paths, query, JSON,
//! null rows, events and 404 error body — serving the synthetic generator's
//! history the way Yahoo would (split-adjusted OHLC, split- and
//! dividend-adjusted `adjclose`, both as of the server's "today"), with fault
//! injection: 429 with `Retry-After`, 500s, slow answers, cut-off bodies. The
//! test suite and `bf bench fetch` run bf against it; it logs every request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bf_core::{Clock, Interval, Symbol};
use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Weekday};
use chrono_tz::Tz;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};

use bf_sources::synthetic::{EPOCH, Synthetic};
use bf_sources::yahoo::wire::{
    AdjClose, Chart, ChartError, ChartResponse, ChartResult, CurrentTradingPeriod, Dividend,
    Events, Indicators, Meta, Quote, Split, TradingPeriod,
};

use crate::serve::{Serving, serve};

/// What the server serves and which faults it injects.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub seed: u64,
    /// The server's today: the last bar served, and the date adjustments are as of.
    pub as_of: NaiveDate,
    /// The server's now: intraday bars are served once complete by it, and
    /// `currentTradingPeriod` is the session it falls in (or the next one).
    /// `None`: the whole of `as_of`'s session has traded.
    pub clock: Option<Clock>,
    /// Symbols answered with 404 and Yahoo's error body.
    pub unknown: HashSet<String>,
    /// Every n-th trading day of a series is sent with null prices.
    pub null_every: Option<usize>,
    /// Every n-th request is answered 429 with `Retry-After: retry_after_seconds`.
    pub throttle_every: Option<usize>,
    pub retry_after_seconds: u32,
    /// Share of requests answered 500 (chosen by a seeded hash of the request number).
    pub error_rate: f64,
    /// Every n-th successful answer is cut off halfway and the connection dropped.
    pub truncate_every: Option<usize>,
    /// Every n-th request is answered only after `slow_delay`.
    pub slow_every: Option<usize>,
    pub slow_delay: Duration,
}

impl ServerConfig {
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            seed: 42,
            as_of,
            clock: None,
            unknown: HashSet::new(),
            null_every: None,
            throttle_every: None,
            retry_after_seconds: 1,
            error_rate: 0.0,
            truncate_every: None,
            slow_every: None,
            slow_delay: Duration::ZERO,
        }
    }
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub symbol: String,
    pub period1: i64,
    pub period2: i64,
    pub interval: String,
    pub status: u16,
    pub user_agent: String,
}

/// A bar as the server serves it (after dropping its null rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServedBar {
    pub date: NaiveDate,
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub adj_close: f64,
    pub volume: i64,
}

#[derive(Debug)]
struct State {
    config: Mutex<ServerConfig>,
    requests: AtomicUsize,
    log: Mutex<Vec<LoggedRequest>>,
}

/// The running server; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    serving: Serving,
    state: Arc<State>,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl Server {
    /// Starts on 127.0.0.1 (`port` 0 = any free port) on a thread of its own,
    /// so callers without an async runtime (tests running `bf`) can use it.
    pub fn spawn(config: ServerConfig, port: u16) -> std::io::Result<Self> {
        let state = Arc::new(State {
            config: Mutex::new(config),
            requests: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let serving = serve(port, Arc::clone(&state), |state, request| async move {
            Ok::<_, std::io::Error>(answer(&state, request).await)
        })?;
        Ok(Self { serving, state })
    }

    /// The base URL to give bf (`BF_YAHOO_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.serving.address)
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.log.lock().expect("log lock").clone()
    }

    pub fn clear_requests(&self) {
        self.state.log.lock().expect("log lock").clear();
    }

    /// Moves the server's today (new bars, and adjustments as of that day).
    pub fn set_as_of(&self, as_of: NaiveDate) {
        self.state.config.lock().expect("config lock").as_of = as_of;
    }

    pub fn update(&self, change: impl FnOnce(&mut ServerConfig)) {
        change(&mut self.state.config.lock().expect("config lock"));
    }

    /// The daily bars a full fetch of `symbol` from `start` would store.
    pub fn served_daily(&self, symbol: &str, start: NaiveDate) -> Vec<ServedBar> {
        let config = self.state.config.lock().expect("config lock").clone();
        daily_series(&config, symbol)
            .into_iter()
            .filter(|day| !day.null && day.bar.date >= start)
            .map(|day| day.bar)
            .collect()
    }
}

async fn answer(state: &State, request: Request<hyper::body::Incoming>) -> Response<Body> {
    let number = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let config = state.config.lock().expect("config lock").clone();
    if config.slow_every.is_some_and(|n| number.is_multiple_of(n)) {
        tokio::time::sleep(config.slow_delay).await;
    }
    let symbol = request
        .uri()
        .path()
        .strip_prefix("/v8/finance/chart/")
        .unwrap_or_default()
        .to_string();
    let param = |name: &str| {
        request.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    };
    let period1: i64 = param("period1").and_then(|v| v.parse().ok()).unwrap_or(0);
    let period2: i64 = param("period2")
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MAX);
    let interval = param("interval").unwrap_or_else(|| "1d".into());
    let user_agent = request
        .headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();

    let (status, response) = if config
        .throttle_every
        .is_some_and(|n| number.is_multiple_of(n))
    {
        let response = Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("Retry-After", config.retry_after_seconds.to_string())
            .body(full("Too Many Requests\n"))
            .expect("valid response");
        (429, response)
    } else if unit_hash(config.seed, number) < config.error_rate {
        (
            500,
            status_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
        )
    } else if symbol.is_empty()
        || config.unknown.contains(&symbol)
        || Symbol::parse(&symbol).is_err()
    {
        let body = ChartResponse {
            chart: Chart {
                result: None,
                error: Some(ChartError {
                    code: "Not Found".into(),
                    description: "No data found, symbol may be delisted".into(),
                }),
            },
        };
        (404, json_response(StatusCode::NOT_FOUND, &body))
    } else {
        match interval.parse::<Interval>() {
            Ok(interval) => {
                let body = chart(&config, &symbol, period1, period2, interval);
                let json = serde_json::to_vec(&body).expect("serializable");
                if config
                    .truncate_every
                    .is_some_and(|n| number.is_multiple_of(n))
                {
                    (200, truncated(json))
                } else {
                    (200, json_bytes(StatusCode::OK, json))
                }
            }
            Err(_) => (
                422,
                status_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid input - interval\n",
                ),
            ),
        }
    };
    state.log.lock().expect("log lock").push(LoggedRequest {
        symbol,
        period1,
        period2,
        interval,
        status,
        user_agent,
    });
    response
}

/// Where a symbol trades, by Yahoo's suffixes: (zone, session open hour, minute).
fn exchange(symbol: &str) -> (Tz, u32, u32) {
    if symbol.ends_with(".AX") {
        (chrono_tz::Australia::Sydney, 10, 0)
    } else if symbol.ends_with(".T") {
        (chrono_tz::Asia::Tokyo, 9, 0)
    } else if symbol.ends_with(".L") {
        (chrono_tz::Europe::London, 8, 0)
    } else {
        (chrono_tz::America::New_York, 9, 30)
    }
}

/// Every served session lasts 6.5 hours, as New York's does.
const SESSION_SECONDS: i64 = 390 * 60;

/// Session open of `date` in seconds since the epoch.
fn session_open(zone: &Tz, hour: u32, minute: u32, date: NaiveDate) -> i64 {
    let local = date.and_hms_opt(hour, minute, 0).expect("valid time");
    zone.from_local_datetime(&local)
        .earliest()
        .map_or(0, |t| t.timestamp())
}

/// One served trading day: its bar, whether it is sent as a null row, and the
/// split ratio and dividend that take effect on it.
struct ServedDay {
    bar: ServedBar,
    null: bool,
    split: Option<f64>,
    dividend: Option<f64>,
}

/// Every daily bar up to `as_of`, priced as Yahoo prices them.
fn daily_series(config: &ServerConfig, symbol: &str) -> Vec<ServedDay> {
    let Ok(parsed) = Symbol::parse(symbol) else {
        return Vec::new();
    };
    let (zone, hour, minute) = exchange(symbol);
    let (days, factors) = Synthetic::new(config.seed).history(&parsed, config.as_of);
    // Yahoo's OHLC are split-adjusted only: walk back, dividing by each split.
    let mut split_factor = 1.0;
    let mut split_factors = vec![1.0; days.len()];
    for i in (0..days.len()).rev() {
        split_factors[i] = split_factor;
        if let Some(ratio) = days[i].split {
            split_factor /= ratio;
        }
    }
    days.iter()
        .zip(factors)
        .zip(split_factors)
        .enumerate()
        .map(|(index, ((day, factor), split))| ServedDay {
            bar: ServedBar {
                date: day.date,
                ts: session_open(&zone, hour, minute, day.date),
                open: day.open * split,
                high: day.high * split,
                low: day.low * split,
                close: day.close * split,
                adj_close: day.close * factor,
                volume: (day.volume as f64 / split).round() as i64,
            },
            null: config.null_every.is_some_and(|n| index % n == n - 1),
            split: day.split,
            dividend: day.dividend,
        })
        .collect()
}

fn chart(
    config: &ServerConfig,
    symbol: &str,
    period1: i64,
    period2: i64,
    interval: Interval,
) -> ChartResponse {
    let (zone, hour, minute) = exchange(symbol);
    let series = daily_series(config, symbol);
    let server_now = config.clock.map(|clock| clock.now().timestamp());
    let mut timestamps = Vec::new();
    let mut quote = Quote::default();
    let mut adjclose = Vec::new();
    let mut push = |ts: i64, bar: Option<(f64, f64, f64, f64, f64, i64)>| {
        timestamps.push(ts);
        quote.open.push(bar.map(|b| b.0));
        quote.high.push(bar.map(|b| b.1));
        quote.low.push(bar.map(|b| b.2));
        quote.close.push(bar.map(|b| b.3));
        adjclose.push(bar.map(|b| b.4));
        quote.volume.push(bar.map(|b| b.5));
    };
    let mut dividends = std::collections::BTreeMap::new();
    let mut splits = std::collections::BTreeMap::new();
    for day in &series {
        let (bar, null) = (&day.bar, day.null);
        if interval.is_intraday() {
            let range = (period1, period2, server_now.unwrap_or(i64::MAX));
            intraday_bars(bar, null, interval, range, &mut push);
            continue;
        }
        if bar.ts < period1 || bar.ts >= period2 {
            continue;
        }
        let values = (!null).then_some((
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.adj_close,
            bar.volume,
        ));
        push(bar.ts, values);
        if let Some(amount) = day.dividend {
            dividends.insert(
                bar.ts.to_string(),
                Dividend {
                    amount,
                    date: bar.ts,
                },
            );
        }
        if let Some(ratio) = day.split {
            splits.insert(
                bar.ts.to_string(),
                Split {
                    date: bar.ts,
                    numerator: ratio,
                    denominator: 1.0,
                    split_ratio: Some(format!("{ratio}:1")),
                },
            );
        }
    }
    let now = DateTime::from_timestamp(session_open(&zone, hour, minute, config.as_of), 0)
        .expect("valid time")
        .with_timezone(&zone);
    let offset = now.offset().fix().local_minus_utc();
    let meta = Meta {
        currency: Some("USD".into()),
        symbol: symbol.to_string(),
        exchange_name: Some("LOCAL".into()),
        instrument_type: Some("EQUITY".into()),
        first_trade_date: Some(session_open(&zone, hour, minute, EPOCH)),
        gmtoffset: Some(i64::from(offset)),
        timezone: Some(now.format("%Z").to_string()),
        exchange_timezone_name: zone.name().to_string(),
        data_granularity: Some(interval.as_str().to_string()),
        current_trading_period: Some(trading_period(
            &zone,
            (hour, minute),
            server_now.unwrap_or_else(|| session_open(&zone, hour, minute, config.as_of)),
        )),
    };
    let empty = timestamps.is_empty();
    let events = (!dividends.is_empty() || !splits.is_empty()).then(|| Events {
        dividends: (!dividends.is_empty()).then_some(dividends),
        splits: (!splits.is_empty()).then_some(splits),
    });
    ChartResponse {
        chart: Chart {
            result: Some(vec![ChartResult {
                meta,
                timestamp: (!empty).then_some(timestamps),
                events,
                indicators: Indicators {
                    quote: vec![quote],
                    adjclose: Some(vec![AdjClose { adjclose }]),
                },
            }]),
            error: None,
        },
    }
}

/// The session `now` falls in, or the next one once the day's has closed
/// (weekdays only, as the generator trades), with four hours of pre-market
/// and of after-hours around it.
fn trading_period(zone: &Tz, (hour, minute): (u32, u32), now: i64) -> CurrentTradingPeriod {
    let mut date = DateTime::from_timestamp(now, 0)
        .expect("valid time")
        .with_timezone(zone)
        .date_naive();
    loop {
        let open = session_open(zone, hour, minute, date);
        let trading = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        if trading && now < open + SESSION_SECONDS {
            let period = |start: i64, end: i64| {
                let offset = DateTime::from_timestamp(start, 0)
                    .expect("valid time")
                    .with_timezone(zone)
                    .offset()
                    .fix();
                TradingPeriod {
                    timezone: DateTime::from_timestamp(start, 0)
                        .expect("valid time")
                        .with_timezone(zone)
                        .format("%Z")
                        .to_string(),
                    start,
                    end,
                    gmtoffset: i64::from(offset.local_minus_utc()),
                }
            };
            let close = open + SESSION_SECONDS;
            return CurrentTradingPeriod {
                pre: Some(period(open - 4 * 3600, open)),
                regular: period(open, close),
                post: Some(period(close, close + 4 * 3600)),
            };
        }
        date = date.succ_opt().expect("a later date");
    }
}

/// The day's session (6.5 hours) cut into bars of `interval`, walking from the
/// open to the close; a bar is served once it is complete by `now`.
fn intraday_bars(
    day: &ServedBar,
    null: bool,
    interval: Interval,
    (period1, period2, now): (i64, i64, i64),
    push: &mut impl FnMut(i64, Option<(f64, f64, f64, f64, f64, i64)>),
) {
    let minutes = i64::from(interval.minutes().unwrap_or(60));
    let count = (SESSION_SECONDS / 60 / minutes).max(1);
    if matches!(day.date.weekday(), Weekday::Sat | Weekday::Sun) {
        return;
    }
    for k in 0..count {
        let ts = day.ts + k * minutes * 60;
        if ts < period1 || ts >= period2 || ts + minutes * 60 > now {
            continue;
        }
        let at = |j: i64| day.open + (day.close - day.open) * j as f64 / count as f64;
        let (open, close) = (at(k), at(k + 1));
        let values = (!null).then_some((
            open,
            open.max(close),
            open.min(close),
            close,
            close,
            day.volume / count,
        ));
        push(ts, values);
    }
}

/// A number in [0, 1) from (seed, n): which requests fail, reproducibly.
fn unit_hash(seed: u64, n: usize) -> f64 {
    // SplitMix64's finaliser over (seed, n).
    let mut z = seed.wrapping_add((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn full(text: &'static str) -> Body {
    Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed()
}

fn status_response(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(full(text))
        .expect("valid response")
}

fn json_response(status: StatusCode, body: &ChartResponse) -> Response<Body> {
    json_bytes(status, serde_json::to_vec(body).expect("serializable"))
}

fn json_bytes(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json;charset=utf-8")
        .body(
            Full::new(Bytes::from(json))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

/// Announces the whole body, sends half, then fails the stream, so the
/// connection is dropped mid-body as a reset would.
fn truncated(json: Vec<u8>) -> Response<Body> {
    let length = json.len();
    let half = Bytes::from(json).slice(..length / 2);
    let frames = futures::stream::iter(vec![
        Ok(Frame::data(half)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut off",
        )),
    ]);
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json;charset=utf-8")
        .header("Content-Length", length.to_string())
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .expect("valid response")
}

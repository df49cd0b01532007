//! HTTP to the chart API: a browser-like client (proxy variables honoured by
//! reqwest), a global request-rate limit (`governor`), and retries under bf's
//! [`RetryPolicy`] on 429, 5xx, timeouts, resets and truncated bodies,
//! honouring `Retry-After`. What an answer means ([`read_answer`]) is decided
//! apart from the HTTP call, so it is tested on its own.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bf_core::Interval;
use bf_core::retry::{RetryPolicy, Verdict};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::YahooError;
use super::wire::{ChartResponse, ChartResult};
use crate::RequestCounts;

/// Yahoo answers browsers; a library User-Agent gets 429s sooner.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// Longest wait between attempts, whatever the backoff or `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct YahooConfig {
    /// Scheme and host (and optional path prefix) before `/v8/finance/chart`.
    pub base_url: String,
    /// Symbols fetched at once.
    pub concurrency: usize,
    /// Requests per second over all symbols; 0 = unlimited.
    pub requests_per_second: f64,
    /// Retries of one request after the first attempt.
    pub max_retries: u32,
    /// Ceiling of the first backoff; doubled on each retry, with full jitter.
    pub backoff: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for YahooConfig {
    fn default() -> Self {
        Self {
            base_url: super::DEFAULT_BASE_URL.to_string(),
            concurrency: 4,
            requests_per_second: 10.0,
            max_retries: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Counts of what the client did, for summaries and benchmarks.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicUsize,
    retries: AtomicUsize,
}

pub struct Client {
    http: reqwest::Client,
    config: YahooConfig,
    /// Spaces requests evenly over all tasks; `None` is unlimited.
    limiter: Option<DefaultDirectRateLimiter>,
    counts: Counters,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

/// Why one attempt failed: worth another try, or final.
#[derive(Debug)]
enum Failure {
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Final(YahooError),
}

impl Client {
    pub fn new(config: YahooConfig) -> Result<Self, YahooError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(YahooError::Client)?;
        // One request per period, no bursts: a burst is what rate limiters punish.
        let limiter = (config.requests_per_second > 0.0)
            .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / config.requests_per_second)))
            .flatten()
            .map(|quota| RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN)));
        Ok(Self {
            http,
            config,
            limiter,
            counts: Counters::default(),
        })
    }

    pub fn config(&self) -> &YahooConfig {
        &self.config
    }

    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            requests: self.counts.requests.load(Ordering::Relaxed),
            retries: self.counts.retries.load(Ordering::Relaxed),
        }
    }

    /// One chart request (seconds since the epoch, `period2` exclusive), retried
    /// until it succeeds, fails for good, or runs out of retries.
    pub async fn chart(
        &self,
        symbol: &str,
        period1: i64,
        period2: i64,
        interval: Interval,
    ) -> Result<ChartResult, YahooError> {
        let url = format!(
            "{}/v8/finance/chart/{symbol}",
            self.config.base_url.trim_end_matches('/')
        );
        let query = [
            ("period1", period1.to_string()),
            ("period2", period2.to_string()),
            ("interval", interval.as_str().to_string()),
            ("events", "div,splits".to_string()),
            ("includeAdjustedClose", "true".to_string()),
        ];
        let policy = RetryPolicy {
            max_retries: self.config.max_retries,
            first_backoff: self.config.backoff,
            max_wait: MAX_WAIT,
        };
        let attempt = || async {
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            self.counts.requests.fetch_add(1, Ordering::Relaxed);
            self.attempt(symbol, &url, &query).await
        };
        let on_retry = |failure: &Failure, wait: Duration| {
            tracing::info!(symbol, ?failure, ?wait, "retrying");
            self.counts.retries.fetch_add(1, Ordering::Relaxed);
        };
        policy
            .run(attempt, Failure::verdict, on_retry)
            .await
            .map_err(|failure| match failure {
                Failure::Final(err) => err,
                Failure::Transient { reason, .. } => YahooError::GaveUp {
                    symbol: symbol.to_string(),
                    attempts: self.config.max_retries + 1,
                    last: reason,
                },
            })
    }

    async fn attempt(
        &self,
        symbol: &str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<ChartResult, Failure> {
        let response =
            self.http
                .get(url)
                .query(query)
                .send()
                .await
                .map_err(|e| Failure::Transient {
                    reason: describe(&e),
                    retry_after: None,
                })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Failure::Transient {
                reason: format!("HTTP {status}"),
                retry_after: retry_after(response.headers()),
            });
        }
        let body = response.bytes().await.map_err(|e| Failure::Transient {
            reason: format!("reading the body: {}", describe(&e)),
            retry_after: None,
        })?;
        read_answer(symbol, status, &body)
    }
}

impl Failure {
    fn verdict(&self) -> Verdict {
        match self {
            Failure::Final(_) => Verdict::Final,
            Failure::Transient { retry_after, .. } => Verdict::Retry {
                after: *retry_after,
            },
        }
    }
}

/// What a complete answer means: the chart, a final error (unknown symbol,
/// another 4xx, an empty result) or, for a 200 whose JSON does not parse, a
/// body cut off on the way that is worth asking for again.
fn read_answer(symbol: &str, status: StatusCode, body: &[u8]) -> Result<ChartResult, Failure> {
    let parsed: Result<ChartResponse, _> = serde_json::from_slice(body);
    if !status.is_success() {
        let description = parsed
            .ok()
            .and_then(|r| r.chart.error)
            .map(|e| format!("{}: {}", e.code, e.description));
        return Err(Failure::Final(if status == StatusCode::NOT_FOUND {
            YahooError::NotFound {
                symbol: symbol.to_string(),
                description: description.unwrap_or_else(|| "HTTP 404".into()),
            }
        } else {
            YahooError::Http {
                symbol: symbol.to_string(),
                status: status.as_u16(),
                message: description.unwrap_or_else(|| snippet(body)),
            }
        }));
    }
    let response = parsed.map_err(|e| Failure::Transient {
        reason: format!("truncated or malformed body ({} bytes): {e}", body.len()),
        retry_after: None,
    })?;
    if let Some(error) = response.chart.error {
        return Err(Failure::Final(YahooError::NotFound {
            symbol: symbol.to_string(),
            description: format!("{}: {}", error.code, error.description),
        }));
    }
    response
        .chart
        .result
        .and_then(|mut r| (!r.is_empty()).then(|| r.remove(0)))
        .ok_or_else(|| {
            Failure::Final(YahooError::Response {
                symbol: symbol.to_string(),
                message: "chart.result is empty".into(),
            })
        })
}

/// `Retry-After` in seconds (the form rate limiters send); an HTTP date falls
/// back to the backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds >= 0.0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds))
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "cannot connect".into()
    } else {
        bf_core::error_chain(err)
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_charts_final_errors_or_worth_another_try() {
        let chart = br#"{"chart":{"result":[{"meta":{"symbol":"AAA","exchangeTimezoneName":"America/New_York"},
            "timestamp":[],"indicators":{"quote":[{}]}}],"error":null}}"#;
        assert!(read_answer("AAA", StatusCode::OK, chart).is_ok());

        let cut = &chart[..chart.len() / 2];
        assert!(matches!(
            read_answer("AAA", StatusCode::OK, cut)
                .unwrap_err()
                .verdict(),
            Verdict::Retry { after: None }
        ));

        let unknown = br#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#;
        for status in [StatusCode::NOT_FOUND, StatusCode::OK] {
            match read_answer("ZZZ", status, unknown) {
                Err(Failure::Final(YahooError::NotFound { description, .. })) => {
                    assert!(description.contains("delisted"), "{description}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        match read_answer("AAA", StatusCode::BAD_REQUEST, b"bad interval") {
            Err(Failure::Final(YahooError::Http {
                status, message, ..
            })) => {
                assert_eq!((status, message.as_str()), (400, "bad interval"))
            }
            other => panic!("{other:?}"),
        }
        let empty = br#"{"chart":{"result":[],"error":null}}"#;
        assert!(matches!(
            read_answer("AAA", StatusCode::OK, empty),
            Err(Failure::Final(YahooError::Response { .. }))
        ));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}

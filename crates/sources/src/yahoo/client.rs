//! HTTP to the chart API: a browser-like client (proxy variables honoured by
//! reqwest), a global request-rate limit, and retries with exponential backoff
//! and jitter on 429, 5xx, timeouts, resets and truncated bodies, honouring
//! `Retry-After`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bf_core::Interval;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::Mutex;
use tokio::time::Instant;

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
    /// First backoff; doubled on each retry, with jitter.
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

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    config: YahooConfig,
    next_slot: Mutex<Instant>,
    counts: Counters,
}

/// Why one attempt failed: worth another try, or final.
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
        Ok(Self {
            http,
            config,
            next_slot: Mutex::new(Instant::now()),
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
        let mut attempt = 0;
        loop {
            self.wait_for_slot().await;
            self.counts.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match self.attempt(symbol, &url, &query).await {
                Ok(result) => return Ok(result),
                Err(failure) => failure,
            };
            let (reason, retry_after) = match failure {
                Failure::Final(err) => return Err(err),
                Failure::Transient {
                    reason,
                    retry_after,
                } => (reason, retry_after),
            };
            if attempt >= self.config.max_retries {
                return Err(YahooError::GaveUp {
                    symbol: symbol.to_string(),
                    attempts: attempt + 1,
                    last: reason,
                });
            }
            let wait = retry_after
                .unwrap_or_else(|| self.backoff(attempt))
                .min(MAX_WAIT);
            tracing::info!(symbol, %reason, ?wait, attempt, "retrying");
            self.counts.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
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
        let parsed: Result<ChartResponse, _> = serde_json::from_slice(&body);
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
                    message: description.unwrap_or_else(|| snippet(&body)),
                }
            }));
        }
        // A 200 whose JSON does not parse was cut off on the way: ask again.
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

    /// Spaces requests evenly at the configured rate, across all tasks.
    async fn wait_for_slot(&self) {
        if self.config.requests_per_second <= 0.0 {
            return;
        }
        let spacing = Duration::from_secs_f64(1.0 / self.config.requests_per_second);
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so
    /// clients that failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .config
            .backoff
            .saturating_mul(1 << attempt.min(16))
            .min(MAX_WAIT);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
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
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
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
    fn backoff_doubles_with_jitter_and_is_capped() {
        let client = Client::new(YahooConfig {
            backoff: Duration::from_millis(100),
            ..YahooConfig::default()
        })
        .unwrap();
        for attempt in 0..4 {
            let full = Duration::from_millis(100 << attempt);
            let wait = client.backoff(attempt);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
        assert!(client.backoff(30) <= MAX_WAIT);
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

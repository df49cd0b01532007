//! When a failed network call or commit is tried again, and how long to wait
//! first: one policy for every client (Yahoo, the lake's commits, and the
//! Elasticsearch and Kafka clients to come), built on `backon`.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

/// Exponential backoff with full jitter: the wait before retry `n` is drawn
/// uniformly from zero to `first_backoff · 2ⁿ` (at most `max_wait`), so
/// clients that failed together spread out instead of retrying together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub first_backoff: Duration,
    /// Longest wait, whatever the backoff or the server asks for.
    pub max_wait: Duration,
}

/// What a failed attempt says about the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Final: retrying would fail the same way.
    Final,
    /// Worth another try; `after` is how long the server asked to wait.
    Retry { after: Option<Duration> },
}

impl RetryPolicy {
    /// The waits before each retry, in order; `max_retries` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        let ceilings = ExponentialBuilder::new()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.max_wait)
            .with_max_times(self.max_retries as usize)
            .build();
        ceilings.map(|ceiling| ceiling.mul_f64(fastrand::f64()))
    }

    /// Runs `attempt` until it succeeds, `judge` calls its error final, or the
    /// retries run out (the last error is returned). A wait the server asked
    /// for replaces the backoff, capped at `max_wait`; `on_retry` hears each
    /// error that is retried and the wait before the retry.
    pub async fn run<T, E, Fut>(
        &self,
        attempt: impl FnMut() -> Fut,
        judge: impl Fn(&E) -> Verdict,
        mut on_retry: impl FnMut(&E, Duration),
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let max_wait = self.max_wait;
        attempt
            .retry(self.delays())
            .when(|e| judge(e) != Verdict::Final)
            .adjust(|e, backoff| {
                // No wait left means no retry left, whatever the server asked.
                backoff.map(|backoff| match judge(e) {
                    Verdict::Retry { after: Some(after) } => after.min(max_wait),
                    _ => backoff,
                })
            })
            .notify(|e, wait| on_retry(e, wait))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_retries: 5,
        first_backoff: Duration::from_millis(100),
        max_wait: Duration::from_millis(800),
    };

    #[test]
    fn delays_are_jittered_below_a_doubling_ceiling_that_is_capped() {
        for _ in 0..50 {
            let delays: Vec<Duration> = POLICY.delays().collect();
            assert_eq!(delays.len(), 5);
            for (n, delay) in delays.iter().enumerate() {
                let ceiling = Duration::from_millis(100 << n).min(POLICY.max_wait);
                assert!(*delay <= ceiling, "retry {n}: {delay:?} > {ceiling:?}");
            }
        }
        let firsts: std::collections::HashSet<Duration> =
            (0..20).map(|_| POLICY.delays().next().unwrap()).collect();
        assert!(firsts.len() > 1, "jitter draws different waits");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_and_final_ones_are_not() {
        let calls = Cell::new(0);
        let result: Result<u32, &str> = POLICY
            .run(
                || {
                    calls.set(calls.get() + 1);
                    async { if calls.get() < 3 { Err("busy") } else { Ok(7) } }
                },
                |_| Verdict::Retry { after: None },
                |_, _| {},
            )
            .await;
        assert_eq!((result, calls.get()), (Ok(7), 3));

        calls.set(0);
        let result: Result<u32, &str> = POLICY
            .run(
                || {
                    calls.set(calls.get() + 1);
                    async { Err("not found") }
                },
                |_| Verdict::Final,
                |_, _| {},
            )
            .await;
        assert_eq!((result, calls.get()), (Err("not found"), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_run_out_and_a_requested_wait_is_capped() {
        let (calls, waits) = (Cell::new(0), std::cell::RefCell::new(Vec::new()));
        let result: Result<(), &str> = POLICY
            .run(
                || {
                    calls.set(calls.get() + 1);
                    async { Err("throttled") }
                },
                |_| Verdict::Retry {
                    after: Some(Duration::from_secs(3600)),
                },
                |_, wait| waits.borrow_mut().push(wait),
            )
            .await;
        assert_eq!((result, calls.get()), (Err("throttled"), 6));
        assert_eq!(*waits.borrow(), vec![POLICY.max_wait; 5]);
    }
}

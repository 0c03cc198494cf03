//! [`RetryPolicy`]: the one way every dfs client tries a failed call
//! again: exponential backoff with jitter (through `backon`), bounded in
//! attempts.

use std::fmt::Display;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable};

/// How often and how patiently a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// Longest wait between two attempts, before jitter.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    pub const fn new(attempts: u32, first_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            attempts,
            first_backoff,
            max_backoff,
        }
    }

    /// Tries until the caller stops (for work that must happen eventually,
    /// such as a storage node's registration).
    pub const fn forever(first_backoff: Duration, max_backoff: Duration) -> Self {
        Self::new(u32::MAX, first_backoff, max_backoff)
    }

    /// The waits between attempts, in order: `first_backoff`, doubling up to
    /// `max_backoff`, each stretched by a random jitter of up to its own
    /// length so that many clients failing at once do not retry in step.
    /// Ends after `attempts - 1` waits.
    pub fn delays(&self) -> ExponentialBackoff {
        ExponentialBuilder::new()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .build()
    }

    /// Runs `op` until it succeeds, fails with an error `transient` does not
    /// accept, or the attempts run out (then the last error is returned).
    /// Every retry is logged as a warning about `what`.
    pub async fn retry<T, E, F, Fut>(
        &self,
        what: &str,
        transient: impl Fn(&E) -> bool,
        op: F,
    ) -> Result<T, E>
    where
        E: Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy = *self;
        op.retry(PolicyBuilder(policy))
            .sleep(tokio::time::sleep)
            .when(transient)
            .notify(|error: &E, wait: Duration| {
                tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "{what} failed; retrying");
            })
            .await
    }
}

/// [`RetryPolicy::delays`] as the builder `backon` asks for.
struct PolicyBuilder(RetryPolicy);

impl BackoffBuilder for PolicyBuilder {
    type Backoff = ExponentialBackoff;

    fn build(self) -> ExponentialBackoff {
        self.0.delays()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let policy = RetryPolicy::new(7, Duration::from_millis(500), Duration::from_secs(8));
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 6);
        let base = [500, 1000, 2000, 4000, 8000, 8000].map(Duration::from_millis);
        for (delay, base) in delays.iter().zip(base) {
            assert!(
                *delay >= base && *delay <= base * 2,
                "{delay:?} not in {base:?}..={:?}",
                base * 2
            );
        }
        assert_eq!(RetryPolicy::new(1, base[0], base[0]).delays().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_the_attempts_run_out() {
        let policy = RetryPolicy::new(4, Duration::from_millis(10), Duration::from_millis(40));
        let calls = AtomicU32::new(0);
        let result: Result<(), String> = policy
            .retry(
                "test call",
                |_| true,
                || async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Err("down".to_owned())
                },
            )
            .await;
        assert_eq!(result, Err("down".to_owned()));
        assert_eq!(calls.load(Ordering::Relaxed), 4);

        let calls = AtomicU32::new(0);
        let result: Result<u32, String> = policy
            .retry(
                "test call",
                |e: &String| e != "final",
                || async {
                    match calls.fetch_add(1, Ordering::Relaxed) {
                        0 => Err("down".to_owned()),
                        1 => Err("final".to_owned()),
                        n => Ok(n),
                    }
                },
            )
            .await;
        assert_eq!(result, Err("final".to_owned()));
        assert_eq!(calls.load(Ordering::Relaxed), 2);

        let calls = AtomicU32::new(0);
        let result: Result<u32, String> = policy
            .retry(
                "test call",
                |_| true,
                || async {
                    match calls.fetch_add(1, Ordering::Relaxed) {
                        0 | 1 => Err("down".to_owned()),
                        n => Ok(n),
                    }
                },
            )
            .await;
        assert_eq!(result, Ok(2));
    }
}

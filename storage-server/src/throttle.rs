//! A token bucket that caps a byte rate, shared by every transfer of one kind
//! on this node (GCS downloads, or sending on the peer chain).
//!
//! Callers ask for bytes before moving them with [`Throttle::take`]. The
//! bucket refills at `rate` bytes per second and holds at most a tenth of a
//! second's worth, so bursts stay short. A request larger than the bucket
//! runs it into debt and sleeps until the debt is paid: the long-run rate is
//! exact for any request size, and concurrent callers queue behind the debt.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Seconds of traffic the bucket may hold when idle.
const BURST_SECONDS: f64 = 0.1;

#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; `None` means unlimited.
    rate: Option<f64>,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may be sent now; negative while in debt.
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// A throttle holding `bytes_per_sec`, or none at all for `None`.
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        Self {
            rate: bytes_per_sec.map(|rate| rate.max(1) as f64),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    /// The configured rate in bytes per second, if any.
    pub fn rate(&self) -> Option<u64> {
        self.rate.map(|rate| rate as u64)
    }

    /// Waits until `bytes` may be sent without exceeding the rate.
    pub async fn take(&self, bytes: u64) {
        let Some(rate) = self.rate else { return };
        let wait = {
            // A poisoned lock only means another taker panicked mid-update
            // of two plain numbers; the numbers are still usable.
            let mut bucket = self
                .bucket
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let refill = rate * now.duration_since(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + refill).min(rate * BURST_SECONDS);
            bucket.last = now;
            bucket.tokens -= bytes as f64;
            (bucket.tokens < 0.0).then(|| Duration::from_secs_f64(-bucket.tokens / rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn elapsed_for(throttle: &Throttle, pieces: u64, piece: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..pieces {
            throttle.take(piece).await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_for_small_and_large_pieces() {
        let rate = 1_250_000; // 10 Mbit/s
        for piece in [4 * 1024, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024] {
            let throttle = Throttle::new(Some(rate));
            let total = 3 * rate;
            let pieces = total.div_ceil(piece);
            let secs = elapsed_for(&throttle, pieces, piece).await.as_secs_f64();
            let expected = (pieces * piece) as f64 / rate as f64;
            assert!(
                (secs - expected).abs() <= expected * 0.05,
                "piece {piece}: {secs:.3}s for {expected:.3}s of traffic"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_takers_share_one_rate() {
        let rate = 1_000_000;
        let throttle = std::sync::Arc::new(Throttle::new(Some(rate)));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { elapsed_for(&throttle, 10, 100_000).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("taker finished");
        }
        let secs = start.elapsed().as_secs_f64();
        assert!((secs - 4.0).abs() <= 0.2, "4 MB at 1 MB/s took {secs:.3}s");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let throttle = Throttle::new(None);
        assert_eq!(
            elapsed_for(&throttle, 100, u64::MAX / 200).await,
            Duration::ZERO
        );
        assert_eq!(throttle.rate(), None);
    }
}

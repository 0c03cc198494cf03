//! A byte-rate cap, shared by every transfer of one kind on this node (GCS
//! downloads, sending on the peer chain, the scrubber's reads).
//!
//! Callers ask for bytes before moving them with [`Throttle::take`], which
//! returns once the bytes are paid for at `rate`: a token bucket that starts
//! empty, so a sender's first bytes wait like all the others and no burst is
//! handed out when a job starts. While a sender is busy, each grant is
//! scheduled from where the last one ended, not from when the caller came
//! back, so the time spent moving a piece and waking up is not lost and the
//! long-run rate is exact for any piece size; concurrent callers queue
//! behind one another. A sender idle for longer than [`SLACK`] starts empty
//! again: an idle node never saves up credit for its next transfer. Over any
//! busy period from its start `t0`, at most `rate · (t − t0)` bytes have
//! been granted by time `t`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How late a caller may come back after its last grant was paid for and
/// still count as busy (its lateness made up): a little more than a timer's
/// wake-up and the sending of one piece take. Later than this, the sender
/// was idle and starts empty.
const SLACK: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Bytes per second; `None` means unlimited.
    rate: Option<f64>,
    /// When the bytes granted so far are paid for; `None` before the first
    /// grant.
    paid_until: Option<Instant>,
}

impl Throttle {
    /// A throttle holding `bytes_per_sec`, or none at all for `None`.
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        Self {
            state: Mutex::new(State {
                rate: bytes_per_sec.map(|rate| rate.max(1) as f64),
                paid_until: None,
            }),
        }
    }

    // A poisoned lock only means another taker panicked mid-update of
    // plain values; it is still usable.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rate in bytes per second, if any.
    pub fn rate(&self) -> Option<u64> {
        self.state().rate.map(|rate| rate as u64)
    }

    /// Holds `bytes_per_sec` from the next grant on (`None`: no limit).
    /// Grants already made keep the rate they were made at.
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        self.state().rate = bytes_per_sec.map(|rate| rate.max(1) as f64);
    }

    /// Waits until `bytes` may be sent without exceeding the rate.
    pub async fn take(&self, bytes: u64) {
        let until = {
            let mut state = self.state();
            let Some(rate) = state.rate else { return };
            let paid_until = &mut state.paid_until;
            let now = Instant::now();
            let start = match *paid_until {
                // Busy (or queued behind other takers): go on from the last grant.
                Some(last) if now <= last + SLACK => last,
                // First use, or idle for a while: start with an empty bucket.
                _ => now,
            };
            // Capped at about 30 years so that no byte count can overflow.
            let until = start + Duration::from_secs_f64((bytes as f64 / rate).min(1e9));
            *paid_until = Some(until);
            until
        };
        tokio::time::sleep_until(until).await;
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
    async fn a_new_or_idle_throttle_hands_out_no_burst() {
        let rate = 1_000_000;
        let throttle = Throttle::new(Some(rate));
        tokio::time::sleep(Duration::from_secs(5)).await;
        // Idle since it was made: the first 100 kB still take 0.1 s.
        assert_eq!(
            elapsed_for(&throttle, 1, 100_000).await,
            Duration::from_millis(100)
        );
        // Idle again, far longer than the slack: no credit saved up.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            elapsed_for(&throttle, 2, 100_000).await,
            Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_between_takes_is_not_lost() {
        let rate = 1_000_000;
        let throttle = Throttle::new(Some(rate));
        let start = Instant::now();
        for _ in 0..10 {
            throttle.take(100_000).await;
            // Moving the piece takes a while, less than the slack.
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        // 1 MB at 1 MB/s, plus moving the last piece.
        assert_eq!(start.elapsed(), Duration::from_millis(1_015));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_rate_holds_from_the_next_grant() {
        let throttle = Throttle::new(Some(1_000_000));
        assert_eq!(
            elapsed_for(&throttle, 10, 100_000).await,
            Duration::from_secs(1)
        );
        throttle.set_rate(Some(100_000));
        assert_eq!(throttle.rate(), Some(100_000));
        assert_eq!(
            elapsed_for(&throttle, 1, 100_000).await,
            Duration::from_secs(1)
        );
        throttle.set_rate(None);
        assert_eq!(elapsed_for(&throttle, 10, 100_000).await, Duration::ZERO);
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

//! Background loop expiring pending uploads that were never finalized: their
//! chunk ids go to the nodes' trash and their metadata is removed. Every
//! naming-server replica runs one; the store makes sure each expired file is
//! handled by one of them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Naming;
use crate::domain::files::expire_pending;

/// Files handled per store call.
const BATCH: usize = 100;
/// Store calls per tick at most, so one tick stays bounded.
const MAX_BATCHES_PER_TICK: usize = 100;

/// How often to look: half the TTL, but at least every 30 s and at most every 100 ms.
pub fn interval(pending_ttl: Duration) -> Duration {
    (pending_ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Runs until `shutdown` is cancelled.
pub async fn run(naming: Naming, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval(naming.settings.pending_ttl));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        for _ in 0..MAX_BATCHES_PER_TICK {
            // Stopping mid-batch is safe: claimed ids are retried after their lease.
            let reaped = tokio::select! {
                () = shutdown.cancelled() => return,
                reaped = expire_pending(&naming, BATCH) => reaped,
            };
            match reaped {
                Ok(reaped) if reaped < BATCH => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "expiring pending uploads failed; retrying later");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_bounded() {
        assert_eq!(interval(Duration::from_secs(3600)), Duration::from_secs(30));
        assert_eq!(interval(Duration::from_secs(1)), Duration::from_millis(500));
        assert_eq!(
            interval(Duration::from_millis(50)),
            Duration::from_millis(100)
        );
    }
}

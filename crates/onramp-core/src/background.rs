//! Writes a request does not wait for. A reset mail for a known address is written after the
//! answer is on its way, so the answer takes as long for a known address as for an unknown one
//! (issue 11, item 8); what is written this way is counted, so the outbox worker (and tests)
//! can wait until it has landed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// The writes in flight.
#[derive(Clone, Default)]
pub struct Background {
    in_flight: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Background {
    /// Run `work` on the runtime, counted until it ends.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            work.await;
            if this.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                this.idle.notify_waiters();
            }
        });
    }

    /// Wait (at most `limit`) until no write is in flight.
    pub async fn settled(&self, limit: std::time::Duration) {
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn settled_waits_for_every_write_in_flight() {
        let background = Background::default();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..5u64 {
            let done = done.clone();
            background.spawn(async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        background.settled(Duration::from_secs(5)).await;
        assert_eq!(done.load(Ordering::SeqCst), 5);
        // Nothing in flight: at once.
        background.settled(Duration::from_secs(5)).await;
    }
}

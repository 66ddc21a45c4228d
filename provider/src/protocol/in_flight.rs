//! The operations that change AWS and are still running. Cancellation
//! (the engine's Cancel, or SIGINT/SIGTERM) never abandons one: a create
//! whose AWS call is under way finishes and reports its id, or the engine
//! would lose track of what now exists. The process waits for them before
//! it exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct InFlight {
    running: AtomicUsize,
    idle: Notify,
}

/// Held while one operation runs.
pub struct Running(Arc<InFlight>);

impl InFlight {
    pub fn enter(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(self))
    }

    pub fn count(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Resolves once nothing is running.
    pub async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn drained_waits_for_every_running_operation() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.enter();
        let second = in_flight.enter();
        let waiter = tokio::spawn({
            let in_flight = Arc::clone(&in_flight);
            async move { in_flight.drained().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "drained while one still runs");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("drained once both finished")
            .expect("waiter task");
        assert_eq!(in_flight.count(), 0);
    }

    #[tokio::test]
    async fn drained_is_immediate_when_idle() {
        let in_flight = Arc::new(InFlight::default());
        tokio::time::timeout(Duration::from_secs(1), in_flight.drained())
            .await
            .expect("nothing runs");
    }
}

//! [`Doorbell`]: how the host's tasks tell a tenant's event loop that
//! something it waits for happened, as plain integer tokens.
//!
//! A token names one thing (request 7 has body bytes to read; the response of
//! request 9 has room again; a request is waiting to be taken). Whoever makes
//! it happen — a hyper connection task on any thread, a waker hyper calls —
//! rings the bell with the token; the event loop sleeps on
//! [`Doorbell::rung`] and hands every rung token to the guest in one batch,
//! which copies them into its linear memory. No JS value, no task and no
//! channel message is made per event, and a burst of events costs the guest
//! one entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

use tokio::sync::Notify;

/// The tokens rung since the guest last took them, and the event loop's
/// wake-up.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    rung: Mutex<Vec<u64>>,
    notify: Notify,
}

impl Doorbell {
    /// Rings with `token`; the event loop wakes if it sleeps.
    pub(crate) fn ring(&self, token: u64) {
        if let Ok(mut rung) = self.rung.lock() {
            rung.push(token);
        }
        self.notify.notify_one();
    }

    /// Moves up to `out.len()` rung tokens into `out`, oldest first; how
    /// many it moved.
    pub(crate) fn take(&self, out: &mut [u64]) -> usize {
        let Ok(mut rung) = self.rung.lock() else {
            return 0;
        };
        let n = rung.len().min(out.len());
        for (slot, token) in out.iter_mut().zip(rung.drain(..n)) {
            *slot = token;
        }
        n
    }

    /// Whether a token is waiting to be taken.
    pub(crate) fn is_rung(&self) -> bool {
        self.rung.lock().is_ok_and(|r| !r.is_empty())
    }

    /// Completes once a token is waiting. Cancel-safe.
    pub(crate) async fn rung(&self) {
        loop {
            // Register before looking, so a ring between the look and the
            // wait is not lost.
            let notified = self.notify.notified();
            if self.is_rung() {
                return;
            }
            notified.await;
        }
    }

    /// A waker that rings `token` the first time it is woken: what the
    /// host hands a hyper body it polls for the guest.
    pub(crate) fn waker(self: &Arc<Self>, token: u64) -> Waker {
        Waker::from(Arc::new(TokenWaker {
            bell: Arc::clone(self),
            token,
            fired: AtomicBool::new(false),
        }))
    }
}

/// Rings its token once, however often it is woken: the number of tokens
/// waiting is bounded by the number of waits the guest armed.
struct TokenWaker {
    bell: Arc<Doorbell>,
    token: u64,
    fired: AtomicBool,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.fired.swap(true, Ordering::AcqRel) {
            self.bell.ring(self.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_come_out_in_order_and_a_waker_rings_once() {
        let bell = Arc::new(Doorbell::default());
        bell.ring(1);
        let waker = bell.waker(2);
        waker.wake_by_ref();
        waker.wake_by_ref();
        waker.wake();
        bell.rung().await;
        let mut out = [0u64; 8];
        assert_eq!(bell.take(&mut out), 2);
        assert_eq!(&out[..2], &[1, 2]);
        assert!(!bell.is_rung());
    }

    #[tokio::test]
    async fn a_ring_from_another_thread_wakes_the_loop() {
        let bell = Arc::new(Doorbell::default());
        let other = Arc::clone(&bell);
        std::thread::spawn(move || other.ring(7));
        bell.rung().await;
        let mut out = [0u64; 1];
        assert_eq!(bell.take(&mut out), 1);
        assert_eq!(out[0], 7);
    }
}

//! [`Doorbell`]: how the host tells a tenant's event loop that something the
//! guest waits for happened, as plain integer tokens.
//!
//! A token names one thing (request 7 has body bytes to read; socket 3 has
//! room to write; a request is waiting to be taken), in the kinds of
//! [`token`]. Whoever makes it happen — a hyper connection task on any
//! thread, the reactor waking a socket's waker, a dial finishing — rings the
//! bell with the token; the event loop sleeps on [`Doorbell::rung`] and hands
//! every rung token to the guest in one batch, which copies them into its
//! linear memory. No JS value, no task and no channel message is made per
//! event, and a burst of events costs the guest one entry.
//!
//! A wait is armed by handing a [`Doorbell::waker`] to whatever will be
//! ready later (a socket's readiness, a body's next frame). The bell counts
//! the wakers that may still ring ([`Doorbell::armed`]), so the event loop
//! can tell a guest that waits for something from one that can never be
//! woken again (a deadlock). A token waits at most once (ringing it again
//! before the guest took it changes nothing), so the tokens waiting are
//! bounded by the requests and sockets the guest holds, however often they
//! become ready.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

use tokio::sync::Notify;

/// What a token says, in its upper 32 bits; the lower 32 are the id of the
/// request or socket it concerns (0 for [`token::ACCEPT`]).
pub mod token {
    /// Requests wait to be taken with [`Ingress::take_request`](crate::Ingress::take_request).
    pub const ACCEPT: u64 = 1 << 32;
    /// The request's body has bytes (or its end) to read.
    pub const READABLE: u64 = 2 << 32;
    /// The request's response has room for more bytes.
    pub const WRITABLE: u64 = 3 << 32;
    /// The client went away: the request will never be answered.
    pub const GONE: u64 = 4 << 32;
    /// The socket may have data, its end, or (a listener) a connection.
    pub const SOCKET_READABLE: u64 = 5 << 32;
    /// The socket may have room to write, or its dial has finished.
    pub const SOCKET_WRITABLE: u64 = 6 << 32;
}

/// The tokens rung since the guest last took them, the event loop's
/// wake-up, and the count of wakers that may still ring.
#[derive(Debug, Default)]
pub struct Doorbell {
    rung: Mutex<Rung>,
    notify: Notify,
    armed: AtomicUsize,
}

/// The tokens waiting, in the order they rang, each once.
#[derive(Debug, Default)]
struct Rung {
    order: Vec<u64>,
    waiting: HashSet<u64>,
}

impl Doorbell {
    /// Rings with `token`; the event loop wakes if it sleeps. A token
    /// already waiting is not queued twice.
    pub fn ring(&self, token: u64) {
        if let Ok(mut rung) = self.rung.lock()
            && rung.waiting.insert(token)
        {
            rung.order.push(token);
        }
        self.notify.notify_one();
    }

    /// Moves up to `out.len()` rung tokens into `out`, oldest first; how
    /// many it moved.
    pub fn take(&self, out: &mut [u64]) -> usize {
        let Ok(mut rung) = self.rung.lock() else {
            return 0;
        };
        let Rung { order, waiting } = &mut *rung;
        let n = order.len().min(out.len());
        for (slot, token) in out.iter_mut().zip(order.drain(..n)) {
            waiting.remove(&token);
            *slot = token;
        }
        n
    }

    /// Drops every rung token: for a guest that will never ask for them.
    pub fn clear(&self) {
        if let Ok(mut rung) = self.rung.lock() {
            rung.order.clear();
            rung.waiting.clear();
        }
    }

    /// Whether a token is waiting to be taken.
    pub fn is_rung(&self) -> bool {
        self.rung.lock().is_ok_and(|r| !r.order.is_empty())
    }

    /// Wakers handed out that have neither rung nor been dropped: waits
    /// that may still ring.
    pub fn armed(&self) -> usize {
        self.armed.load(Ordering::Acquire)
    }

    /// Whether a wait may still ring or a token has rung and waits to be
    /// taken: false only when nothing handed out can wake the guest.
    ///
    /// It reads the armed count before the rung tokens, the reverse of the
    /// order in which a [`Ringer`] rings and then disarms, so a wait that
    /// rings concurrently is seen as armed or as rung, never as neither.
    pub fn may_wake(&self) -> bool {
        self.armed() > 0 || self.is_rung()
    }

    /// Completes once a token is waiting. Cancel-safe.
    pub async fn rung(&self) {
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

    /// A waker that rings `token` the first time it is woken: what the host
    /// hands a socket or a body it polls for the guest. It counts as armed
    /// until it rings or the last clone of it is dropped.
    pub fn waker(self: &Arc<Self>, token: u64) -> Waker {
        Waker::from(self.ringer(token))
    }

    /// The same as [`waker`](Self::waker), for a task to ring by hand with
    /// [`Ringer::ring`] (a dial that finishes).
    pub fn ringer(self: &Arc<Self>, token: u64) -> Arc<Ringer> {
        self.armed.fetch_add(1, Ordering::AcqRel);
        Arc::new(Ringer {
            bell: Arc::clone(self),
            token,
            fired: AtomicBool::new(false),
        })
    }
}

/// Rings its token once, however often it is woken: the number of tokens
/// waiting is bounded by the number of waits the guest armed.
#[derive(Debug)]
pub struct Ringer {
    bell: Arc<Doorbell>,
    token: u64,
    fired: AtomicBool,
}

impl Ringer {
    /// Rings the token, unless it has rung already.
    pub fn ring(&self) {
        if !self.fired.swap(true, Ordering::AcqRel) {
            // Ring before disarming: the event loop reads `armed` and then
            // looks for rung tokens, so at every moment it sees this wait
            // as one or the other. Disarming first left a moment in which
            // it was neither, and a guest blocked on it was told it had
            // deadlocked (a thousand accepts in a row found that moment).
            self.bell.ring(self.token);
            self.bell.armed.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        // Dropped unrung (its wait was replaced or its socket closed): it
        // no longer counts as a wait that may ring.
        if !self.fired.swap(true, Ordering::AcqRel) {
            self.bell.armed.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Wake for Ringer {
    fn wake(self: Arc<Self>) {
        self.ring();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ring();
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
        assert_eq!(bell.armed(), 1);
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert_eq!(bell.armed(), 0);
        waker.wake();
        bell.rung().await;
        let mut out = [0u64; 8];
        assert_eq!(bell.take(&mut out), 2);
        assert_eq!(&out[..2], &[1, 2]);
        assert!(!bell.is_rung());
        assert_eq!(bell.armed(), 0);
    }

    #[test]
    fn a_token_waits_at_most_once() {
        let bell = Doorbell::default();
        for _ in 0..1000 {
            bell.ring(5);
            bell.ring(6);
        }
        let mut out = [0u64; 8];
        assert_eq!(bell.take(&mut out), 2);
        assert_eq!(&out[..2], &[5, 6]);
        bell.ring(5);
        assert_eq!(bell.take(&mut out), 1, "taken, it may ring again");
    }

    #[test]
    fn a_waker_dropped_unrung_is_no_longer_armed() {
        let bell = Arc::new(Doorbell::default());
        let waker = bell.waker(3);
        let clone = waker.clone();
        drop(waker);
        assert_eq!(bell.armed(), 1, "a clone still holds it");
        drop(clone);
        assert_eq!(bell.armed(), 0);
        assert!(!bell.is_rung());
    }

    #[test]
    fn a_wait_ringing_on_another_thread_is_always_seen_as_armed_or_rung() {
        // The event loop's deadlock check: while another thread rings, the
        // wait must never look gone. Each round arms a wait, has the other
        // thread ring it, and watches until the token arrives.
        let bell = Arc::new(Doorbell::default());
        let (send, recv) = std::sync::mpsc::channel::<Arc<Ringer>>();
        let ringing = std::thread::spawn(move || {
            for ringer in recv {
                ringer.ring();
            }
        });
        let mut out = [0u64; 1];
        for round in 0..20_000u64 {
            send.send(bell.ringer(round)).expect("the ringing thread");
            loop {
                assert!(bell.may_wake(), "round {round}: neither armed nor rung");
                if bell.take(&mut out) == 1 {
                    break;
                }
            }
            assert_eq!(out[0], round);
        }
        drop(send);
        ringing.join().expect("the ringing thread");
        assert!(!bell.may_wake());
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

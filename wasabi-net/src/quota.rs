//! One cap on everything that holds a socket for a tenant: listeners,
//! connections, dials in progress and HTTP requests behind `fetch`. Each
//! holder keeps a [`QuotaSlot`]; dropping it (closing the socket, ending the
//! request) gives the place back. A single count means a guest cannot get
//! twice its cap by mixing raw sockets and `fetch`.
//!
//! Some holders can let go of their place on request: an HTTP connection
//! kept open in case another request comes. Such a holder registers as the
//! quota's [`Reclaim`] hook, and a [`take`](SocketQuota::take) that finds
//! the cap reached asks it first, so an idle connection never makes a
//! `listen` or a new request fail.
//!
//! ```
//! use wasabi_net::SocketQuota;
//!
//! let quota = SocketQuota::new(2);
//! let a = quota.take().unwrap();
//! let _b = quota.take().unwrap();
//! assert!(quota.take().is_err());
//! drop(a);
//! assert!(quota.take().is_ok());
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::NetError;

/// The socket cap of one tenant, shared by its sockets and its HTTP client.
pub struct SocketQuota {
    limit: usize,
    held: AtomicUsize,
    reclaim: Mutex<Option<Weak<dyn Reclaim>>>,
}

impl std::fmt::Debug for SocketQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketQuota")
            .field("limit", &self.limit)
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

/// A holder of places that can give one back when asked (see the module
/// docs).
pub trait Reclaim: Send + Sync {
    /// Gives back one place now, if it holds one it does not need; `true`
    /// if it did.
    fn reclaim_one(&self) -> bool;
}

impl SocketQuota {
    /// A cap of `limit` sockets at once.
    pub fn new(limit: usize) -> Arc<SocketQuota> {
        Arc::new(SocketQuota {
            limit,
            held: AtomicUsize::new(0),
            reclaim: Mutex::new(None),
        })
    }

    /// Registers the holder asked to give a place back when the cap is
    /// reached (one per quota: a later call replaces it).
    pub fn set_reclaim(&self, reclaim: Weak<dyn Reclaim>) {
        if let Ok(mut slot) = self.reclaim.lock() {
            *slot = Some(reclaim);
        }
    }

    /// Asks the [`Reclaim`] hook for a place; `true` if one was given back.
    fn reclaim_one(&self) -> bool {
        let hook = self
            .reclaim
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().and_then(Weak::upgrade));
        hook.is_some_and(|hook| hook.reclaim_one())
    }

    /// The cap.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Places taken now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Fails when every place is taken (and the [`Reclaim`] hook has none
    /// to give back), without taking one.
    pub fn check(&self) -> Result<(), NetError> {
        while self.held() >= self.limit {
            if !self.reclaim_one() {
                return Err(NetError::TooManySockets { limit: self.limit });
            }
        }
        Ok(())
    }

    /// Takes a place, held until the slot is dropped. When every place is
    /// taken, the [`Reclaim`] hook is asked to give one back first.
    pub fn take(self: &Arc<Self>) -> Result<QuotaSlot, NetError> {
        loop {
            let taken = self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    (held < self.limit).then_some(held + 1)
                });
            if taken.is_ok() {
                return Ok(QuotaSlot(Arc::clone(self)));
            }
            if !self.reclaim_one() {
                return Err(NetError::TooManySockets { limit: self.limit });
            }
        }
    }
}

/// One place in a [`SocketQuota`], given back when dropped.
#[derive(Debug)]
pub struct QuotaSlot(Arc<SocketQuota>);

impl Drop for QuotaSlot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

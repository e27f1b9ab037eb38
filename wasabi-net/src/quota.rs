//! One cap on everything that holds a socket for a tenant: listeners,
//! connections, dials in progress and HTTP requests behind `fetch`. Each
//! holder keeps a [`QuotaSlot`]; dropping it (closing the socket, ending the
//! request) gives the place back. A single count means a guest cannot get
//! twice its cap by mixing raw sockets and `fetch`.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::NetError;

/// The socket cap of one tenant, shared by its sockets and its HTTP client.
#[derive(Debug)]
pub struct SocketQuota {
    limit: usize,
    held: AtomicUsize,
}

impl SocketQuota {
    /// A cap of `limit` sockets at once.
    pub fn new(limit: usize) -> Arc<SocketQuota> {
        Arc::new(SocketQuota {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// The cap.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Places taken now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Fails when every place is taken, without taking one.
    pub fn check(&self) -> Result<(), NetError> {
        if self.held() >= self.limit {
            return Err(NetError::TooManySockets { limit: self.limit });
        }
        Ok(())
    }

    /// Takes a place, held until the slot is dropped.
    pub fn take(self: &Arc<Self>) -> Result<QuotaSlot, NetError> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .map_err(|_| NetError::TooManySockets { limit: self.limit })?;
        Ok(QuotaSlot(Arc::clone(self)))
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

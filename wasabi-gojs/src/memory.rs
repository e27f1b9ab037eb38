//! One tenant's memory, counted in one place: the guest's linear memory and
//! the host memory its JS world holds for it (objects, typed arrays, arrays,
//! strings Go holds references to).
//!
//! A guest can make the host allocate for it: `js.ValueOf(hugeString)`
//! copies the string into the host, `new Uint8Array(n)` allocates `n` bytes
//! there. If only linear memory were counted, a guest under a 256 MiB limit
//! could hold gigabytes of host memory. So both kinds share one
//! [`MemoryMeter`]: the engine's resource limiter asks it before linear
//! memory grows, the heap and the reference table ask it before they
//! allocate, and the total (`linear + host`) is what must stay within the
//! limit, and what a supervisor reports.
//!
//! ```
//! use wasabi_gojs::memory::MemoryMeter;
//!
//! let meter = MemoryMeter::new(Some(1 << 20));
//! meter.grow_linear(512 << 10).unwrap();
//! meter.charge_host(256 << 10).unwrap();
//! // Linear memory cannot grow into what the host holds for the guest...
//! assert!(meter.grow_linear(900 << 10).is_err());
//! // ...until the host lets it go.
//! meter.release_host(256 << 10);
//! assert!(meter.grow_linear(900 << 10).is_ok());
//! assert_eq!(meter.total(), 900 << 10);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use crate::size::format_size;

/// A tenant went over its memory limit: linear memory and what the host
/// holds for it, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory limit exceeded: the guest needed {} ({} of linear memory, {} of host objects and strings) but its limit is {}",
    format_size(.linear.saturating_add(*.host)),
    format_size(*.linear),
    format_size(*.host),
    format_size(*.limit)
)]
pub struct MemoryLimitExceeded {
    /// The limit in bytes.
    pub limit: u64,
    /// Linear memory the guest has or asked for, in bytes.
    pub linear: u64,
    /// Host memory held for the guest, with what it asked for, in bytes.
    pub host: u64,
}

/// The memory of one tenant, shared by its limiter, heap and reference
/// table. Every count is an atomic, so a supervisor reads it while the
/// tenant runs.
#[derive(Debug, Default)]
pub struct MemoryMeter {
    /// `None`: no limit but wasm's own.
    limit: Option<u64>,
    linear: AtomicU64,
    host: AtomicU64,
}

impl MemoryMeter {
    /// A meter for a tenant limited to `limit` bytes in all (`None`: no
    /// limit but wasm's own 4 GiB of linear memory).
    pub fn new(limit: Option<u64>) -> MemoryMeter {
        MemoryMeter {
            limit,
            ..MemoryMeter::default()
        }
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Linear memory, in bytes.
    pub fn linear(&self) -> u64 {
        self.linear.load(Ordering::Relaxed)
    }

    /// Host memory held for the guest, in bytes.
    pub fn host(&self) -> u64 {
        self.host.load(Ordering::Relaxed)
    }

    /// Linear and host memory together.
    pub fn total(&self) -> u64 {
        self.linear().saturating_add(self.host())
    }

    fn check(&self, linear: u64, host: u64) -> Result<(), MemoryLimitExceeded> {
        match self.limit {
            Some(limit) if linear.saturating_add(host) > limit => Err(MemoryLimitExceeded {
                limit,
                linear,
                host,
            }),
            _ => Ok(()),
        }
    }

    /// Linear memory wants to grow to `desired` bytes: allowed if it fits
    /// beside what the host holds.
    pub fn grow_linear(&self, desired: u64) -> Result<(), MemoryLimitExceeded> {
        self.check(desired, self.host())?;
        self.linear.store(desired, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `bytes` more of host memory would fit, without taking them
    /// (to check before allocating).
    pub fn fits_host(&self, bytes: u64) -> Result<(), MemoryLimitExceeded> {
        self.check(self.linear(), self.host().saturating_add(bytes))
    }

    /// Counts `bytes` more of host memory, refusing them past the limit.
    /// Charges may come from several threads (the HTTP ingress charges
    /// from its connections' tasks), so the check and the add are one step.
    pub fn charge_host(&self, bytes: u64) -> Result<(), MemoryLimitExceeded> {
        let mut refused = None;
        let result = self
            .host
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |host| {
                let wanted = host.saturating_add(bytes);
                match self.check(self.linear(), wanted) {
                    Ok(()) => Some(wanted),
                    Err(e) => {
                        refused = Some(e);
                        None
                    }
                }
            });
        match (result, refused) {
            (Err(_), Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// The error that says the tenant is at its limit now.
    pub fn exceeded(&self) -> MemoryLimitExceeded {
        MemoryLimitExceeded {
            limit: self.limit.unwrap_or(u64::MAX),
            linear: self.linear(),
            host: self.host(),
        }
    }

    /// `bytes` of host memory were freed.
    pub fn release_host(&self, bytes: u64) {
        let _ = self
            .host
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(bytes))
            });
    }
}

/// Bytes a host server holds for the tenant (the HTTP ingress's buffers)
/// count in the same meter, against the same limit.
impl wasabi_limits::HostMemory for MemoryMeter {
    fn charge(&self, bytes: u64) -> bool {
        self.charge_host(bytes).is_ok()
    }

    fn release(&self, bytes: u64) {
        self.release_host(bytes);
    }
}

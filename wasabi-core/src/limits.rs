//! Per-tenant limits, enforced through wasmtime's resource limiter.

use wasmtime::ResourceLimiter;

/// The limits one tenant runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantLimits {
    /// Most memory the tenant may use, in bytes: its linear memory and the
    /// host memory held for it (JS objects, typed arrays, strings) together.
    /// `None` leaves only wasm's own 4 GiB bound on linear memory (and the
    /// object budget on host memory).
    pub max_memory: Option<u64>,
    /// Host bytes the guest's JS objects may occupy.
    pub max_object_bytes: usize,
    /// Sockets (listeners, connections, dials in progress) the guest may
    /// hold open at once.
    pub max_sockets: usize,
    /// Most CPU the tenant may use, as a fraction of one core (`0.5` = half
    /// a core). `None`: no budget; it still shares the machine fairly,
    /// preempted every epoch tick.
    pub max_cpu: Option<f64>,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_memory: None,
            max_object_bytes: wasabi_gojs::DEFAULT_OBJECT_BUDGET,
            max_sockets: wasabi_gojs::DEFAULT_MAX_SOCKETS,
            max_cpu: None,
        }
    }
}

pub use wasabi_gojs::memory::MemoryLimitExceeded;
use wasabi_gojs::memory::MemoryMeter;

use crate::engine::MAX_TABLE_ELEMENTS;

/// The resource limiter of one tenant: linear memory may grow only as far
/// as the tenant's meter allows beside the host memory held for it.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) memory: std::sync::Arc<MemoryMeter>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.memory
            .grow_linear(desired as u64)
            .map(|()| true)
            .map_err(wasmtime::Error::new)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

//! The memory limit, enforced through wasmtime's resource limiter (every
//! cap of a tenant is in [`wasabi_limits::TenantLimits`]).

use wasmtime::ResourceLimiter;

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

//! Per-tenant limits, enforced through wasmtime's resource limiter.

use wasmtime::ResourceLimiter;

/// The limits one tenant runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantLimits {
    /// Largest linear memory the guest may grow to, in bytes. `None` leaves
    /// only wasm's own 4 GiB bound.
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

/// The guest asked for more memory than its limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory limit exceeded: the guest tried to grow its memory to {} but its limit is {} (--max-memory)",
    crate::size::format_size(*.desired),
    crate::size::format_size(*.limit)
)]
pub struct MemoryLimitExceeded {
    /// The limit in bytes.
    pub limit: u64,
    /// The size the guest asked for, in bytes.
    pub desired: u64,
}

use crate::engine::MAX_TABLE_ELEMENTS;

/// The resource limiter of one tenant.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) limits: TenantLimits,
    /// Where the current memory size is published.
    pub(crate) stats: std::sync::Arc<crate::runtime::InstanceStats>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.limits.max_memory {
            Some(limit) if desired as u64 > limit => {
                Err(wasmtime::Error::new(MemoryLimitExceeded {
                    limit,
                    desired: desired as u64,
                }))
            }
            _ => {
                self.stats.record_memory(desired as u64);
                Ok(true)
            }
        }
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

//! [`TenantData`]: what a tenant's wasmtime store holds.

use wasabi_gojs::{GoHost, GoView};

use crate::limits::Limiter;

/// The store data of one tenant: its guest world — a [`GoHost`] for a Go
/// js/wasm guest, a [`wasabi_wasi::WasiHost`] for a WASI one — and its
/// limiter. Each kind of guest has its own store type, so an import of one
/// world can never be called on the other's.
pub struct TenantData<W = GoHost> {
    pub(crate) world: W,
    pub(crate) limiter: Limiter,
}

impl GoView for TenantData<GoHost> {
    fn go(&mut self) -> &mut GoHost {
        &mut self.world
    }
}

impl TenantData<wasabi_wasi::WasiHost> {
    /// The WASI context, as wasmtime-wasi's imports reach it.
    pub(crate) fn wasi(&mut self) -> &mut wasabi_wasi::WasiHost {
        &mut self.world
    }
}

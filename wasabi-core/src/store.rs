//! [`TenantData`]: what a tenant's wasmtime store holds.

use wasabi_gojs::{GoHost, GoView};

use crate::limits::Limiter;

/// The store data of one tenant: its guest world and its limiter.
pub struct TenantData {
    pub(crate) go: GoHost,
    pub(crate) limiter: Limiter,
}

impl GoView for TenantData {
    fn go(&mut self) -> &mut GoHost {
        &mut self.go
    }
}

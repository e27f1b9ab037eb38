//! The core of the Wasabi runtime: the engine, the compiled-module cache,
//! loading guest modules (Go js/wasm, and WASI preview-1 commands), and
//! running them as tenants under limits.
//!
//! A [`Runtime`] holds what every tenant of a process shares; [`Runtime::load`]
//! turns a file into a [`GuestModule`]; [`Runtime::run`] runs one tenant of it
//! as a [`TenantSpec`] describes it — the one description every edge
//! (`wasabi run`, `go-exec`, the manifest, an embedder) produces — within
//! its [`TenantLimits`]. [`fields`] checks each field people write, for
//! flags and manifest alike. Configuration types an embedder needs are
//! exported here: the limits and the [`Advice`] that words refusals come
//! from `wasabi-limits`, policies and mounts from [`wasabi_gojs`].

#![deny(missing_docs)]

pub mod admin;
pub mod cache;
mod cpu;
mod engine;
pub mod fields;
mod limits;
pub mod manifest;
mod module;
mod output;
mod release;
mod runtime;
pub mod seal;
mod store;
pub mod supervisor;
mod tenant;

pub use engine::{EPOCH_TICK, Preemption, Tier};
pub use limits::MemoryLimitExceeded;
pub use manifest::{Manifest, ManifestError, RouterSpec, load_manifest};
pub use module::{GuestKind, GuestModule, LoadError, ModuleOrigin, PrecompiledCode};
pub use output::{LogFormat, SharedWriter, Stream, TenantOutput};
pub use runtime::{
    BackgroundCompile, CompileRequest, DetachedCompile, Filled, InstanceStats, KeySource, Runtime,
    RuntimeConfig, Tiering, lower_priority,
};
pub use store::TenantData;
pub use supervisor::{HttpStatus, StartError, Supervisor, TenantState, TenantStatus, wait_drained};
pub use tenant::{RestartPolicy, TenantError, TenantIo, TenantSpec};
/// The guest world of Go js/wasm programs, for embedders that assemble one
/// themselves; [`Runtime::run`] does it from a [`TenantSpec`].
pub use wasabi_gojs;
pub use wasabi_limits::{
    Advice, Cap, Grant, HttpLimits, NoAdvice, SharedAdvice, TenantLimits, advised,
};
// What a tenant description is made of, from its one documented place.
pub use wasabi_gojs::size::{SizeError, format_size, parse_size};
pub use wasabi_gojs::{
    AddressRule, ClientTls, DrainSignal, IngressHandle, MountSpec, NetPolicy, Outcome, OutputSink,
    Route, RouteError, Router, RunError, SandboxSpec, ServerTls, TenantLookup, TlsError,
};

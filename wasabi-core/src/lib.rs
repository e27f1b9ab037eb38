//! The core of the Wasabi runtime: the engine, the compiled-module cache,
//! loading Go js/wasm modules, and running them as tenants under limits.
//!
//! A [`Runtime`] holds what every tenant of a process shares; [`Runtime::load`]
//! turns a file into a [`GoModule`]; [`Runtime::run`] runs one tenant of it
//! with the JS world a [`wasabi_gojs::GoHostBuilder`] describes and the
//! [`TenantLimits`] it must stay within.

#![deny(missing_docs)]

pub mod admin;
pub mod cache;
mod cpu;
mod engine;
mod limits;
pub mod manifest;
mod module;
mod output;
mod release;
mod runtime;
pub mod seal;
pub mod supervisor;

pub use engine::EPOCH_TICK;
pub use limits::{MemoryLimitExceeded, TenantLimits};
pub use manifest::{ManifestError, load_manifest};
pub use module::{GoModule, LoadError, ModuleOrigin, PrecompiledCode};
pub use output::{LogFormat, SharedWriter, Stream, TenantOutput};
pub use runtime::{InstanceStats, Runtime, RuntimeConfig, TenantData, TenantError};
pub use supervisor::{
    RestartPolicy, StartError, Supervisor, TenantSpec, TenantState, TenantStatus,
};
pub use wasabi_gojs;
pub use wasabi_gojs::size::{SizeError, format_size, parse_size};

//! The core of the Wasabi runtime: the engine, the compiled-module cache,
//! loading Go js/wasm modules, and running them as tenants under limits.
//!
//! A [`Runtime`] holds what every tenant of a process shares; [`Runtime::load`]
//! turns a file into a [`GoModule`]; [`Runtime::run`] runs one tenant of it
//! with the JS world a [`wasabi_gojs::GoHostBuilder`] describes and the
//! [`TenantLimits`] it must stay within.

#![deny(missing_docs)]

pub mod cache;
mod engine;
mod limits;
mod module;
mod runtime;
mod size;

pub use engine::EPOCH_TICK;
pub use limits::{MemoryLimitExceeded, TenantLimits};
pub use module::{GoModule, LoadError, ModuleOrigin};
pub use runtime::{Runtime, RuntimeConfig, TenantError, TenantState};
pub use size::{SizeError, format_size, parse_size};
pub use wasabi_gojs;

//! The JavaScript host world that Go programs built with `GOOS=js
//! GOARCH=wasm` expect, implemented in Rust for wasmtime.
//!
//! A Go js/wasm module imports a small set of functions (module `gojs` since
//! Go 1.21, `go` before) and reaches everything else — `fs`, `process`,
//! `crypto`, `Date`, `Uint8Array` — through `syscall/js` calls on JS values.
//! This crate provides both halves:
//!
//! * [`add_to_linker`] defines every import on a wasmtime [`Linker`](wasmtime::Linker);
//! * [`GoHost`] is the per-instance JS world (value table, object heap,
//!   realm of globals, timers, output), configured with [`GoHostBuilder`];
//! * [`run`] drives a started instance: `run`, then `resume` for every timer
//!   and callback until the program exits.
//!
//! # Layers
//!
//! Each module reaches only below itself (a test in `xtask/src/layers.rs`
//! keeps it so):
//!
//! * **Plain data**, knowing nothing of the globals: `value` (JS values and
//!   the NaN-boxed refs Go sees), `heap` (objects; a host function is only a
//!   number to it), `table` (Go's references), `memory` (the tenant's
//!   memory meter), [`guest_memory`] (linear memory and the Go stack frame),
//!   `timers` (the queue), `timezone`, [`size`].
//! * **The JS world**: `js` (what every global shares: heap, realm, the
//!   queues of callbacks, the clock, and how errors are made), `strings`
//!   (what a value reads as), `output`, `realm` (the well-known objects),
//!   and `globals/`, one file per global (`console.rs`, `crypto.rs`,
//!   `fs.rs`, `fetch.rs`, ...), each owning its operations, its bindings
//!   and its own part of the host (`fs::Files`, `net::Network`,
//!   `fetch::Requests`).
//! * **The host and its driver**: `host` ([`GoHost`], the parts together,
//!   and [`GoHostBuilder`]), `dispatch` (a host function call, handing each
//!   global only its parts), `calling` (how an import ends badly and reads
//!   or writes a reference in the frame), `imports` (every `gojs`/`go`
//!   import) and `event_loop` ([`run`]).
//!
//! # Scheduling
//!
//! Every call into the guest is an async wasmtime call on the caller's tokio
//! runtime. This is deliberate: a tenant is a future, not a thread, so one
//! process can hold thousands of them; epoch interruption with async yields
//! (configured by the embedder) lets a spinning guest be preempted at a
//! bounded cost; and a guest blocked on a timer or I/O costs nothing but its
//! memory. Host calls stay synchronous and cheap; only the three imports that
//! may run Go again (`valueCall`, `valueInvoke`, `valueNew`) are async, and
//! they re-enter Go through a nested async call of the `resume` export.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(engine: wasmtime::Engine, module: wasmtime::Module) -> wasmtime::Result<()> {
//! use wasabi_gojs::{Abi, GoHost, GoHostBuilder, GoView};
//!
//! struct State(GoHost);
//! impl GoView for State {
//!     fn go(&mut self) -> &mut GoHost { &mut self.0 }
//! }
//!
//! let mut linker = wasmtime::Linker::new(&engine);
//! wasabi_gojs::add_to_linker(&mut linker, Abi::detect(&module).expect("a Go module"))?;
//! let host = GoHostBuilder::new().arg("hello").build()?;
//! let mut store = wasmtime::Store::new(&engine, State(host));
//! let instance = linker.instantiate_async(&mut store, &module).await?;
//! let outcome = wasabi_gojs::run(&mut store, &instance).await?;
//! println!("exit code {}", outcome.code());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod calling;
pub mod companion;
mod dispatch;
mod event_loop;
mod globals;
pub mod guest_memory;
mod heap;
mod host;
mod imports;
mod js;
mod json;
pub mod memory;
mod output;
mod realm;
pub mod size;
mod strings;
mod table;
mod timers;
mod timezone;
mod value;

pub use calling::{GuestExit, HostError, ImportError};
pub use event_loop::{Outcome, RunError, run};
pub use heap::HeapError;
pub use host::{GoHost, GoHostBuilder};
pub use imports::{Abi, add_to_linker};
pub use output::OutputSink;
pub use wasabi_fs::{FsError, Mount, MountError, MountSpec, Sandbox, SandboxSpec};
pub use wasabi_net::DrainSignal;
pub use wasabi_net::{
    AddressRule, ClientTls, IngressHandle, LATENCY_BOUNDS, NetPolicy, NetStats, RequestStats,
    RequestStatsSnapshot, Route, RouteError, Router, ServerTls, TenantLookup, TlsError,
};

/// Access to the [`GoHost`] inside a store's data, the way `wasmtime-wasi`'s
/// `WasiView` gives access to a WASI context.
pub trait GoView: Send + 'static {
    /// The instance's JS world.
    fn go(&mut self) -> &mut GoHost;
}

impl GoView for GoHost {
    fn go(&mut self) -> &mut GoHost {
        self
    }
}

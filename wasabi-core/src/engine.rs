//! The wasmtime engine every tenant shares, and the epoch ticker that makes
//! preemption possible.

use std::time::Duration;

use wasmtime::{Config, Engine, OptLevel, WasmBacktraceDetails};

/// How often the engine's epoch advances. A guest running wasm yields to the
/// async executor once per tick, so this bounds how long one tenant can hold
/// a worker thread before others get a turn.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack for wasm frames; Go keeps goroutine stacks in linear memory,
/// so wasm frames stay shallow.
const MAX_WASM_STACK: usize = 1 << 20;
/// Stack of each fiber an async call runs on (must exceed the wasm stack).
const ASYNC_STACK: usize = 2 << 20;

/// Builds the engine: Cranelift optimising for speed, epoch interruption on
/// (every store must set a deadline), copy-on-write memory images, and wasm
/// backtraces for trap reports.
pub fn build_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .memory_init_cow(true)
        .parallel_compilation(true)
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    Engine::new(&config)
}

/// Starts a background thread that advances `engine`'s epoch every
/// [`EPOCH_TICK`] for as long as the engine lives.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasabi-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the epoch ticker thread: {e}");
    }
}

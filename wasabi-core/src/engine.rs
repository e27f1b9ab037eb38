//! The wasmtime engines tenants share (one per compiler tier), and the
//! epoch ticker that makes preemption possible.

use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy,
    WasmBacktraceDetails,
};

/// Which compiler made a module's machine code.
///
/// Compiling a Go module with Cranelift takes most of a second (2–11 MB
/// of wasm); Winch, wasmtime's baseline compiler, does it about four times
/// faster, making code that runs about 1.6 times slower. So a module seen
/// for the first time starts on Winch code while Cranelift's fills the
/// cache, and every later run uses Cranelift's. Each tier has its own
/// engine: wasmtime fixes the compiler per engine, and refuses to load one
/// tier's code into the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Winch, the baseline compiler: fast to compile, slower code.
    Winch,
    /// Cranelift, the optimizing compiler: the code every steady state runs.
    Cranelift,
}

impl Tier {
    /// Its name, as `--verbose`, `wasabi cache list` and the cache's
    /// entries spell it.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Winch => "winch",
            Tier::Cranelift => "cranelift",
        }
    }

    /// The tier named `name` (as [`Tier::name`] spells it).
    pub fn from_name(name: &str) -> Option<Tier> {
        match name {
            "winch" => Some(Tier::Winch),
            "cranelift" => Some(Tier::Cranelift),
            _ => None,
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How often the engine's epoch advances. A guest running wasm yields to the
/// async executor once per tick, so this bounds how long one tenant can hold
/// a worker thread before others get a turn.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack for wasm frames. Go keeps goroutine stacks in linear
/// memory, but every Go call is also a wasm call, so deep recursion (a
/// nested XML document, a deep template) needs a deep wasm stack: 8 MiB, as
/// Go's own Node.js runner gives V8 (`--stack-size=8192`). Stacks are
/// reserved, not committed: an instance only pays for the depth it uses.
const MAX_WASM_STACK: usize = 8 << 20;
/// Stack of each fiber an async call runs on (must exceed the wasm stack).
const ASYNC_STACK: usize = 9 << 20;

/// Fiber stacks reserved per pooled instance (each nested call into the
/// guest from a host callback takes one more).
const FIBERS_PER_INSTANCE: u32 = 4;

/// Most elements a guest's function table may hold (Go uses one table).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// How a running guest is made to give up its thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Preemption {
    /// Compiled code checks the engine's epoch at every function entry and
    /// loop head, and yields when it has moved: what CPU shares
    /// (`max_cpu`) and fairness between tenants on shared threads need.
    #[default]
    Epochs,
    /// No checks: a guest runs until it calls the host or ends. For an
    /// embedder that runs one program on a thread of its own, without a
    /// CPU share. The code differs, so the cache keeps it apart. Measured
    /// (`cargo xtask bench`, the preemption rows): 8–10% faster on a
    /// CPU-bound program; `wasabi` keeps epochs on everywhere
    /// (docs/performance-gaps.md says why).
    Off,
}

/// Builds the engine of `tier`: Cranelift optimising for speed, or Winch;
/// on both, epoch interruption (every store must set a deadline) unless
/// `preemption` is off,
/// copy-on-write memory images, and wasm backtraces for trap reports. With
/// `instance_slots`, instances come from the pooling allocator: memory,
/// tables and fiber stacks for that many instances are reserved once, and a
/// new instance maps its memory image copy-on-write into a free slot
/// instead of allocating.
pub fn build_engine(
    tier: Tier,
    instance_slots: Option<u32>,
    preemption: Preemption,
) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    match tier {
        Tier::Cranelift => config
            .strategy(Strategy::Cranelift)
            .cranelift_opt_level(OptLevel::Speed),
        Tier::Winch => config.strategy(Strategy::Winch),
    };
    config
        .epoch_interruption(preemption == Preemption::Epochs)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .memory_init_cow(true)
        // `.eh_frame` only serves outside unwinders (gdb, the `backtrace`
        // crate); wasmtime's own wasm backtraces do not need it. Without
        // it, compiling takes about 7% less time and loading a module
        // registers nothing with the system unwinder.
        .native_unwind_info(false)
        .parallel_compilation(true)
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    // `WASABI_PERFMAP=1`: write /tmp/perf-PID.map, so `perf report` names
    // the guest's functions (how docs/performance-gaps.md's profiles are
    // taken).
    if std::env::var_os("WASABI_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if let Some(slots) = instance_slots {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            // A guest re-entered by a callback runs on a nested fiber: give
            // every instance room for a few levels at once.
            .total_stacks(slots.saturating_mul(FIBERS_PER_INSTANCE))
            .total_gc_heaps(0)
            .max_memory_size(4 << 30)
            .table_elements(MAX_TABLE_ELEMENTS);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
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

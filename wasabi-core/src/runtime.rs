//! [`Runtime`]: the engine, the module cache and the linkers, shared by every
//! tenant of a process; and [`Runtime::run`], which runs one tenant.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use wasabi_gojs::memory::MemoryMeter;
use wasabi_gojs::{Abi, GoHost, GoView, NetStats, Outcome};
use wasabi_wasi::WasiHost;
use wasmtime::{Engine, Instance, InstancePre, Linker, Module, Store};

use crate::cache::ModuleCache;
use crate::cpu::Metered;
use crate::engine::{build_engine, start_epoch_ticker};
use crate::limits::{Limiter, MemoryLimitExceeded};
use crate::module::{self, GuestKind, GuestModule, Inspected, LoadError, Pre, PrecompiledCode};
use crate::seal::{InstallKey, SealError, default_key_path};
use crate::store::TenantData;
use crate::tenant::{TenantError, TenantIo, TenantSpec, go_world, wasi_world};

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Folder of the compiled-module cache; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// `Some(n)`: reserve memory, tables and stacks for `n` concurrent
    /// instances up front (the pooling allocator), so that starting a tenant
    /// is a copy-on-write mapping into a free slot — the choice for many
    /// tenants. `None`: allocate per instance, the choice for one program.
    pub instance_slots: Option<u32>,
    /// The installation key that seals the code this runtime compiles (cache
    /// entries, `.cwasm` files) and proves it when loading it again; see
    /// [`crate::seal`]. `None`: [`default_key_path`]. It is read, or created,
    /// on first need.
    pub key_file: Option<PathBuf>,
}

/// Live figures of one running instance, readable from outside while it
/// runs (a supervisor's `/tenants` and `/metrics`).
#[derive(Debug, Default)]
pub struct InstanceStats {
    memory: Mutex<Option<Arc<MemoryMeter>>>,
    cpu_nanos: Arc<AtomicU64>,
    net: Mutex<Option<Arc<NetStats>>>,
    ingress: Mutex<Option<wasabi_gojs::IngressHandle>>,
}

impl InstanceStats {
    /// Stats whose CPU time adds to `cpu_nanos` (a supervisor counts a
    /// tenant's CPU over all its runs).
    pub fn with_cpu_counter(cpu_nanos: Arc<AtomicU64>) -> InstanceStats {
        InstanceStats {
            cpu_nanos,
            ..InstanceStats::default()
        }
    }

    /// CPU time used, in nanoseconds.
    pub fn cpu_nanos(&self) -> u64 {
        self.cpu_nanos.load(Ordering::Relaxed)
    }

    /// Memory the tenant uses, in bytes: its linear memory and the host
    /// memory held for it (JS objects, typed arrays, strings).
    pub fn memory_bytes(&self) -> u64 {
        self.memory
            .lock()
            .ok()
            .and_then(|m| m.as_ref().map(|m| m.total()))
            .unwrap_or(0)
    }

    /// Of [`InstanceStats::memory_bytes`], the host memory held for the
    /// guest.
    pub fn host_memory_bytes(&self) -> u64 {
        self.memory
            .lock()
            .ok()
            .and_then(|m| m.as_ref().map(|m| m.host()))
            .unwrap_or(0)
    }

    /// How a router reaches the instance's HTTP server, once it runs.
    pub fn ingress(&self) -> Option<wasabi_gojs::IngressHandle> {
        self.ingress.lock().ok().and_then(|i| i.clone())
    }

    /// Connections the guest holds open (0 once it has ended).
    pub fn open_connections(&self) -> usize {
        self.net
            .lock()
            .ok()
            .and_then(|n| n.as_ref().map(|n| n.open_connections()))
            .unwrap_or(0)
    }
}

/// The shared machinery of a Wasabi process: one engine (and its epoch
/// ticker), the compiled-module cache, and a linker per kind of guest (each
/// Go ABI, and WASI preview 1).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use wasabi_core::{Runtime, RuntimeConfig, TenantIo, TenantSpec};
///
/// let runtime = Runtime::new(RuntimeConfig::default())?;
/// let spec = TenantSpec::new("hello", "hello.wasm");
/// let module = runtime.load(&spec.module, spec.precompiled)?;
/// let outcome = runtime.run(&module, &spec, TenantIo::default()).await?;
/// std::process::exit(outcome.code());
/// # }
/// ```
pub struct Runtime {
    engine: Engine,
    cache: Option<ModuleCache>,
    key_file: Option<PathBuf>,
    key: OnceLock<Result<InstallKey, SealError>>,
    gojs: Linker<TenantData<GoHost>>,
    legacy: Linker<TenantData<GoHost>>,
    wasi: Linker<TenantData<WasiHost>>,
}

impl Runtime {
    /// Builds the engine and linkers and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Runtime> {
        let engine = build_engine(config.instance_slots)?;
        start_epoch_ticker(&engine);
        let mut gojs = Linker::new(&engine);
        wasabi_gojs::add_to_linker(&mut gojs, Abi::Gojs)?;
        let mut legacy = Linker::new(&engine);
        wasabi_gojs::add_to_linker(&mut legacy, Abi::Legacy)?;
        let mut wasi = Linker::new(&engine);
        wasabi_wasi::add_to_linker(&mut wasi, TenantData::wasi)?;
        let mut runtime = Runtime {
            engine,
            cache: None,
            key_file: config.key_file,
            key: OnceLock::new(),
            gojs,
            legacy,
            wasi,
        };
        if let Some(dir) = config.cache_dir {
            // Without a key nothing could be proven ours, so nothing is cached.
            match runtime.install_key() {
                Ok(key) => runtime.cache = Some(ModuleCache::new(dir, key.clone())),
                Err(e) => tracing::warn!("the compiled-module cache is off: {e}"),
            }
        }
        Ok(runtime)
    }

    /// The installation key, read or created on first use.
    fn install_key(&self) -> Result<&InstallKey, &SealError> {
        self.key
            .get_or_init(|| {
                let path = self
                    .key_file
                    .clone()
                    .or_else(default_key_path)
                    .ok_or(SealError::NoHome)?;
                InstallKey::load_or_create(&path)
            })
            .as_ref()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled-module cache, if enabled.
    pub fn cache(&self) -> Option<&ModuleCache> {
        self.cache.as_ref()
    }

    /// Loads a `.wasm` (compiling it, or taking it from the cache) or, if
    /// `precompiled` allows it, a `.cwasm` that [`Runtime::compile`] made
    /// with this installation's key, and resolves its imports once for every
    /// tenant that will run it.
    pub fn load(
        &self,
        path: &Path,
        precompiled: PrecompiledCode,
    ) -> Result<GuestModule, LoadError> {
        let mut module = match module::inspect(path, precompiled)? {
            Inspected::Wasm { bytes, kind } => {
                module::compile(&self.engine, self.cache.as_ref(), path, &bytes, kind)?
            }
            Inspected::Precompiled { bytes } => {
                module::load_precompiled(&self.engine, self.install_key(), path, &bytes)?
            }
        };
        // A module whose imports do not resolve keeps `pre` empty and fails,
        // with the linker's message, when a tenant instantiates it.
        module.pre = match module.kind() {
            GuestKind::GoJs(abi) => self
                .go_linker(abi)
                .instantiate_pre(&module.module)
                .map(Pre::Go),
            GuestKind::WasiP1 => self.wasi.instantiate_pre(&module.module).map(Pre::Wasi),
        }
        .ok();
        Ok(module)
    }

    fn go_linker(&self, abi: Abi) -> &Linker<TenantData<GoHost>> {
        match abi {
            Abi::Gojs => &self.gojs,
            Abi::Legacy => &self.legacy,
        }
    }

    /// Compiles the WebAssembly module `input` ahead of time into `output`,
    /// a `.cwasm` sealed with this installation's key, which
    /// [`Runtime::load`] accepts (when allowed) with the same key, Wasabi
    /// build and CPU features.
    pub fn compile(&self, input: &Path, output: &Path) -> Result<(), LoadError> {
        let write_error = |source| LoadError::Write {
            path: output.to_path_buf(),
            source,
        };
        let (bytes, kind) = match module::inspect(input, PrecompiledCode::Refused)? {
            Inspected::Wasm { bytes, kind } => (bytes, kind),
            Inspected::Precompiled { .. } => {
                return Err(LoadError::PrecompiledRefused {
                    path: input.to_path_buf(),
                });
            }
        };
        let key = self
            .install_key()
            .map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
        let module = module::compile(&self.engine, None, input, &bytes, kind)?;
        let artifact = module
            .module()
            .serialize()
            .map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
        crate::cache::write_atomically(output, &key.seal(&artifact)).map_err(write_error)
    }

    /// Runs one tenant of `module` to its end: the world `spec` describes,
    /// attached to `io`, within `spec.limits`.
    pub async fn run(
        &self,
        module: &GuestModule,
        spec: &TenantSpec,
        io: TenantIo,
    ) -> Result<Outcome, TenantError> {
        self.run_observed(module, spec, io, &Arc::default()).await
    }

    /// [`Runtime::run`], publishing the instance's live figures in `stats`.
    pub async fn run_observed(
        &self,
        module: &GuestModule,
        spec: &TenantSpec,
        io: TenantIo,
        stats: &Arc<InstanceStats>,
    ) -> Result<Outcome, TenantError> {
        // The module's kind decides the world its tenant gets.
        let tenant = async {
            match (module.kind(), &module.pre) {
                (GuestKind::GoJs(abi), pre) => {
                    let pre = match pre {
                        Some(Pre::Go(pre)) => Some(pre),
                        _ => None,
                    };
                    self.run_go(module, self.go_linker(abi), pre, spec, io, stats)
                        .await
                }
                (GuestKind::WasiP1, pre) => {
                    let pre = match pre {
                        Some(Pre::Wasi(pre)) => Some(pre),
                        _ => None,
                    };
                    self.run_wasi(module, pre, spec, io, stats).await
                }
            }
        };
        Metered::new(tenant, Arc::clone(&stats.cpu_nanos), spec.limits.max_cpu).await
    }

    /// A Go js/wasm tenant: its JS world, then Go's event loop.
    async fn run_go(
        &self,
        module: &GuestModule,
        linker: &Linker<TenantData<GoHost>>,
        pre: Option<&InstancePre<TenantData<GoHost>>>,
        spec: &TenantSpec,
        io: TenantIo,
        stats: &Arc<InstanceStats>,
    ) -> Result<Outcome, TenantError> {
        let go = go_world(spec, io)?
            .build()
            .map_err(TenantError::WorldTooBig)?;
        // One meter for linear memory and the host memory held for the
        // guest: the limiter and the JS world both count in it.
        let memory = go.memory_meter();
        if let Ok(mut net) = stats.net.lock() {
            *net = Some(go.net_stats());
        }
        if let Ok(mut ingress) = stats.ingress.lock() {
            *ingress = Some(go.router_handle());
        }
        let mut store = self.store(go, memory, stats);
        let instance = instantiate(&mut store, pre, linker, &module.module).await?;
        let outcome = wasabi_gojs::run(&mut store, &instance).await;
        store.data_mut().go().flush();
        outcome.map_err(TenantError::from_run)
    }

    /// A WASI preview-1 command: wasmtime-wasi's world, then `_start`.
    async fn run_wasi(
        &self,
        module: &GuestModule,
        pre: Option<&InstancePre<TenantData<WasiHost>>>,
        spec: &TenantSpec,
        io: TenantIo,
        stats: &Arc<InstanceStats>,
    ) -> Result<Outcome, TenantError> {
        let opens_own_listeners = module
            .module
            .imports()
            .any(|i| i.module() == "wasi_snapshot_preview1" && i.name() == "sock_listen");
        let wasi = wasi_world(spec, io, opens_own_listeners)?;
        if let Ok(mut net) = stats.net.lock() {
            *net = Some(wasi.net_stats());
        }
        let memory = Arc::new(MemoryMeter::new(spec.limits.max_memory));
        let mut store = self.store(wasi, memory, stats);
        let instance = instantiate(&mut store, pre, &self.wasi, &module.module).await?;
        match wasabi_wasi::run(&mut store, &instance).await {
            Ok(wasabi_wasi::Ending::Exited(code)) => Ok(Outcome::Exited(code)),
            Ok(wasabi_wasi::Ending::Drained) => Ok(Outcome::Drained),
            Err(wasabi_wasi::RunError::Trap(e)) => {
                Err(TenantError::from_run(wasabi_gojs::RunError::Trap(e)))
            }
            Err(e @ wasabi_wasi::RunError::NoStart) => Err(TenantError::Setup(e.to_string())),
        }
    }

    /// A store for `world`, its memory counted in `memory` (and published
    /// in `stats`), preempted at every epoch tick.
    fn store<W>(
        &self,
        world: W,
        memory: Arc<MemoryMeter>,
        stats: &InstanceStats,
    ) -> Store<TenantData<W>> {
        if let Ok(mut m) = stats.memory.lock() {
            *m = Some(Arc::clone(&memory));
        }
        let mut store = Store::new(
            &self.engine,
            TenantData {
                world,
                limiter: Limiter { memory },
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }
}

/// Instantiates `module` in `store` (from `pre` when the imports resolved
/// at load time, else through `linker`, which says what is missing).
/// Instantiation runs the module's `start` function, which is guest code
/// like any other: it is metered and held to the CPU budget too.
async fn instantiate<W: Send>(
    store: &mut Store<TenantData<W>>,
    pre: Option<&InstancePre<TenantData<W>>>,
    linker: &Linker<TenantData<W>>,
    module: &Module,
) -> Result<Instance, TenantError> {
    match pre {
        Some(pre) => pre.instantiate_async(&mut *store).await,
        None => linker.instantiate_async(&mut *store, module).await,
    }
    .map_err(|e| match e.downcast_ref::<MemoryLimitExceeded>() {
        Some(limit) => TenantError::MemoryLimit(*limit),
        None => TenantError::Instantiate(e),
    })
}

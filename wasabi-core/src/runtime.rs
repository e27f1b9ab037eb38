//! [`Runtime`]: the engine, the module cache and the linkers, shared by every
//! tenant of a process; and [`Runtime::run`], which runs one tenant.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use wasabi_gojs::memory::MemoryMeter;
use wasabi_gojs::{Abi, GoHost, GoView, NetStats, Outcome};
use wasabi_wasi::WasiHost;
use wasmtime::{Engine, Instance, InstancePre, Linker, Module, Store};

use crate::cache::{DEFAULT_MAX_BYTES, ModuleCache};
use crate::cpu::Metered;
use crate::engine::{Preemption, Tier, build_engine, start_epoch_ticker};
use crate::limits::{Limiter, MemoryLimitExceeded};
use crate::module::{
    self, GuestKind, GuestModule, Inspected, LoadError, ModuleOrigin, Pre, PrecompiledCode, Upgrade,
};
use crate::seal::{InstallKey, SealError, default_key_path};
use crate::store::TenantData;
use crate::tenant::{TenantError, TenantIo, TenantSpec, go_world, wasi_world};

/// How a [`Runtime`] is set up.
#[derive(Clone, Default)]
pub struct RuntimeConfig {
    /// Folder of the compiled-module cache; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// The cache's size cap in bytes; `None`:
    /// [`DEFAULT_MAX_BYTES`](crate::cache::DEFAULT_MAX_BYTES).
    pub cache_max_bytes: Option<u64>,
    /// `Some(n)`: reserve memory, tables and stacks for `n` concurrent
    /// instances up front (the pooling allocator), so that starting a tenant
    /// is a copy-on-write mapping into a free slot — the choice for many
    /// tenants. `None`: allocate per instance, the choice for one program.
    pub instance_slots: Option<u32>,
    /// The installation key that seals the code this runtime compiles (cache
    /// entries, `.cwasm` files) and proves it when loading it again; see
    /// [`crate::seal`].
    pub key: KeySource,
    /// Which compiler makes the code of a module not in the cache.
    pub tiering: Tiering,
    /// Where the Cranelift code of a module started on Winch is made.
    pub background: BackgroundCompile,
    /// How running guests give up their thread; epochs unless an embedder
    /// runs one program alone (no tenant of such a runtime may have a CPU
    /// share).
    pub preemption: Preemption,
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("cache_dir", &self.cache_dir)
            .field("cache_max_bytes", &self.cache_max_bytes)
            .field("instance_slots", &self.instance_slots)
            .field("key", &self.key)
            .field("tiering", &self.tiering)
            .field("preemption", &self.preemption)
            .finish_non_exhaustive()
    }
}

/// Where a [`Runtime`]'s installation key comes from.
#[derive(Debug, Clone, Default)]
pub enum KeySource {
    /// The file at [`default_key_path`], read or created on first need.
    #[default]
    DefaultFile,
    /// This file, read or created on first need.
    File(PathBuf),
    /// A key already read, for a process that cannot reach the file when it
    /// runs guests (a containerd shim's container, after its root moved).
    Loaded(InstallKey),
}

/// Which compiler tier a [`Runtime`] uses for a module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tiering {
    /// Cranelift code from the cache when it is there; otherwise Winch now
    /// (a quick start) and Cranelift in the background, for the cache and
    /// for later tenants of the module ([`BackgroundCompile`]).
    #[default]
    Auto,
    /// Only Winch (cached as Winch code): the quickest start, slower code.
    Winch,
    /// Only Cranelift: the fastest code, the slowest first start.
    Cranelift,
}

impl Tiering {
    /// The choice named `name`: `auto`, `winch` or `cranelift`.
    pub fn from_name(name: &str) -> Option<Tiering> {
        match name {
            "auto" => Some(Tiering::Auto),
            "winch" => Some(Tiering::Winch),
            "cranelift" => Some(Tiering::Cranelift),
            _ => None,
        }
    }
}

/// A module started on Winch, to be compiled by Cranelift in the
/// background (see [`BackgroundCompile::Detached`]).
#[derive(Debug)]
pub struct CompileRequest<'a> {
    /// The module's bytes.
    pub wasm: &'a [u8],
    /// Its file name, for the cache's listing.
    pub name: &'a str,
    /// The cache the result goes to.
    pub cache_dir: &'a Path,
}

/// Hands a [`CompileRequest`] to another process.
pub type DetachedCompile = Arc<dyn Fn(&CompileRequest<'_>) -> std::io::Result<()> + Send + Sync>;

/// Where a module started on Winch gets its Cranelift code (with
/// [`Tiering::Auto`]).
#[derive(Clone, Default)]
pub enum BackgroundCompile {
    /// On a low-priority thread of this process, which hands the result to
    /// the module's later tenants and to the cache: for a process that
    /// lives on (`wasabi serve`, an embedder).
    #[default]
    InProcess,
    /// In another process, through the cache: for a process that may end
    /// before the compile does (`wasabi run`), which must neither wait for
    /// it nor lose it. The function starts that process (`wasabi` starts
    /// `wasabi cache add` detached); later tenants find the result in the
    /// cache. Without a cache, nothing is compiled in the background.
    Detached(DetachedCompile),
    /// Nowhere: the module stays on Winch code.
    Off,
}

/// What [`Runtime::fill_cache`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// The cache already held sound Cranelift code of the module.
    AlreadyCached,
    /// Another process is compiling it now.
    InProgress,
    /// Skipped: as many background compiles as the cache allows are
    /// running (see [`ModuleCache::background_slot`]).
    Busy,
    /// Compiled and stored, taking this long.
    Compiled(std::time::Duration),
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

/// The shared machinery of a Wasabi process: an engine per compiler tier
/// (each with its epoch ticker and a linker per kind of guest: each Go ABI,
/// and WASI preview 1), and the compiled-module cache.
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
    instance_slots: Option<u32>,
    preemption: Preemption,
    /// Built on first use: a warm start never builds Winch's, and a cold
    /// one links only the tier it runs.
    cranelift: OnceLock<Result<Compiler, String>>,
    winch: OnceLock<Result<Compiler, String>>,
    cache: Option<ModuleCache>,
    key_source: KeySource,
    key: OnceLock<Result<InstallKey, SealError>>,
    tiering: Tiering,
    background: BackgroundCompile,
}

/// One tier's engine and the linkers over it.
struct Compiler {
    engine: Engine,
    linkers: OnceLock<Linkers>,
}

struct Linkers {
    gojs: Linker<TenantData<GoHost>>,
    legacy: Linker<TenantData<GoHost>>,
    wasi: Linker<TenantData<WasiHost>>,
}

impl Compiler {
    fn new(
        tier: Tier,
        instance_slots: Option<u32>,
        preemption: Preemption,
    ) -> Result<Compiler, String> {
        let engine = build_engine(tier, instance_slots, preemption)
            .map_err(|e| format!("could not build the {tier} engine: {e:#}"))?;
        if preemption == Preemption::Epochs {
            start_epoch_ticker(&engine);
        }
        Ok(Compiler {
            engine,
            linkers: OnceLock::new(),
        })
    }

    /// The linkers, built on first need (a compile for the cache needs
    /// none).
    fn linkers(&self) -> &Linkers {
        self.linkers.get_or_init(|| {
            let define = || -> wasmtime::Result<Linkers> {
                let mut gojs = Linker::new(&self.engine);
                wasabi_gojs::add_to_linker(&mut gojs, Abi::Gojs)?;
                let mut legacy = Linker::new(&self.engine);
                wasabi_gojs::add_to_linker(&mut legacy, Abi::Legacy)?;
                let mut wasi = Linker::new(&self.engine);
                wasabi_wasi::add_to_linker(&mut wasi, TenantData::wasi)?;
                Ok(Linkers { gojs, legacy, wasi })
            };
            // Defining host functions fails only on a name defined twice:
            // a bug in Wasabi, caught by every test that runs a guest.
            define().expect("the host functions are defined once each")
        })
    }

    fn go_linker(&self, abi: Abi) -> &Linker<TenantData<GoHost>> {
        match abi {
            Abi::Gojs => &self.linkers().gojs,
            Abi::Legacy => &self.linkers().legacy,
        }
    }
}

impl Runtime {
    /// Builds the Cranelift engine (and its epoch ticker) and opens the
    /// cache; Winch's engine is built when first needed.
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Runtime> {
        let mut runtime = Runtime {
            instance_slots: config.instance_slots,
            preemption: config.preemption,
            cranelift: OnceLock::new(),
            winch: OnceLock::new(),
            cache: None,
            key_source: config.key,
            key: OnceLock::new(),
            tiering: config.tiering,
            background: config.background,
        };
        // An engine that cannot be built is an error now, not at first load.
        runtime
            .compiler(Tier::Cranelift)
            .map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        if let Some(dir) = config.cache_dir {
            // Without a key nothing could be proven ours, so nothing is cached.
            match runtime.install_key() {
                Ok(key) => {
                    runtime.cache = Some(ModuleCache::new(
                        dir,
                        key.clone(),
                        config.cache_max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
                    ))
                }
                Err(e) => tracing::warn!("the compiled-module cache is off: {e}"),
            }
        }
        Ok(runtime)
    }

    fn compiler(&self, tier: Tier) -> Result<&Compiler, LoadError> {
        let cell = match tier {
            Tier::Cranelift => &self.cranelift,
            Tier::Winch => &self.winch,
        };
        cell.get_or_init(|| Compiler::new(tier, self.instance_slots, self.preemption))
            .as_ref()
            .map_err(|e| LoadError::Engine(e.clone()))
    }

    /// The installation key, read or created on first use.
    fn install_key(&self) -> Result<&InstallKey, &SealError> {
        self.key
            .get_or_init(|| match &self.key_source {
                KeySource::DefaultFile => {
                    InstallKey::load_or_create(&default_key_path().ok_or(SealError::NoHome)?)
                }
                KeySource::File(path) => InstallKey::load_or_create(path),
                KeySource::Loaded(key) => Ok(key.clone()),
            })
            .as_ref()
    }

    /// The engine of Cranelift code (the cache's, and `wasabi compile`'s).
    pub fn engine(&self) -> &Engine {
        // Built in `new`, or `new` failed.
        &self
            .cranelift
            .get()
            .and_then(|c| c.as_ref().ok())
            .expect("Runtime::new built the Cranelift engine")
            .engine
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
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(path, bytes, precompiled)
    }

    /// [`Runtime::load`] for a module already in memory (a layer of an OCI
    /// image, say), named `path` in messages; the same checks, the same
    /// cache.
    pub fn load_bytes(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        precompiled: PrecompiledCode,
    ) -> Result<GuestModule, LoadError> {
        let mut module = match module::inspect(path, bytes, precompiled)? {
            Inspected::Wasm { bytes, kind } => self.load_wasm(path, &bytes, kind)?,
            Inspected::Precompiled { bytes } => module::load_precompiled(
                &self.compiler(Tier::Cranelift)?.engine,
                self.install_key(),
                path,
                &bytes,
            )?,
        };
        self.link(&mut module)?;
        Ok(module)
    }

    /// Resolves `module`'s imports with its tier's linker. A module whose
    /// imports do not resolve keeps `pre` empty and fails, with the
    /// linker's message, when a tenant instantiates it.
    fn link(&self, module: &mut GuestModule) -> Result<(), LoadError> {
        let compiler = self.compiler(module.tier)?;
        module.pre = match module.kind() {
            GuestKind::GoJs(abi) => compiler
                .go_linker(abi)
                .instantiate_pre(&module.module)
                .map(Pre::Go),
            GuestKind::WasiP1 => compiler
                .linkers()
                .wasi
                .instantiate_pre(&module.module)
                .map(Pre::Wasi),
        }
        .ok();
        Ok(())
    }

    /// The machine code of WebAssembly `bytes`, as [`Tiering`] decides:
    /// Cranelift's from the cache; else Winch's, compiled now, with
    /// Cranelift's made in the background.
    fn load_wasm(
        &self,
        path: &Path,
        bytes: &[u8],
        kind: GuestKind,
    ) -> Result<GuestModule, LoadError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let module = |module, tier, origin| GuestModule {
            module,
            kind,
            path: path.to_path_buf(),
            origin,
            tier,
            upgrade: None,
            pre: None,
        };
        let first = match self.tiering {
            Tiering::Winch => Tier::Winch,
            Tiering::Auto | Tiering::Cranelift => Tier::Cranelift,
        };
        let compiler = self.compiler(first)?;
        let key = self
            .cache
            .as_ref()
            .map(|_| ModuleCache::key(&compiler.engine, first, bytes));
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some(code) = cache.get(&compiler.engine, first, key)
        {
            tracing::info!(module = %path.display(), "loaded from the compiled-module cache ({first} code)");
            return Ok(module(code, first, ModuleOrigin::Cached));
        }
        if self.tiering != Tiering::Auto {
            let (code, took) = module::compile(&compiler.engine, first, path, bytes)?;
            if let (Some(cache), Some(key)) = (&self.cache, &key) {
                cache.put(key, first, &name, &code);
            }
            return Ok(module(code, first, ModuleOrigin::Compiled(took)));
        }
        // A cache miss under `Auto`: Winch now, then Cranelift in the
        // background. Not both at once: on two cores the background compile
        // slowed Winch's by up to 2.5 times even at the lowest priority
        // (cores share caches and memory bandwidth, and a VM's cores may be
        // one physical core's threads), while after it the guest runs on
        // one core and leaves the other to the background.
        let winch = self.compiler(Tier::Winch)?;
        let (code, took) = module::compile(&winch.engine, Tier::Winch, path, bytes)?;
        let upgrade = Arc::new(Upgrade {
            cranelift_key: key.clone(),
            ready: Mutex::new(None),
        });
        self.compile_in_background(bytes, &name, path, kind, &upgrade);
        let mut started = module(code, Tier::Winch, ModuleOrigin::Compiled(took));
        started.upgrade = Some(upgrade);
        Ok(started)
    }

    /// Starts compiling `bytes` with Cranelift as [`BackgroundCompile`]
    /// says, for the cache and for `upgrade`.
    fn compile_in_background(
        &self,
        bytes: &[u8],
        name: &str,
        path: &Path,
        kind: GuestKind,
        upgrade: &Arc<Upgrade>,
    ) {
        match &self.background {
            BackgroundCompile::Off => {}
            BackgroundCompile::Detached(start) => {
                let Some(cache) = &self.cache else { return };
                let request = CompileRequest {
                    wasm: bytes,
                    name,
                    cache_dir: cache.dir(),
                };
                match start(&request) {
                    Ok(()) => tracing::info!(
                        module = %path.display(),
                        "compiling with cranelift in the background, for the cache"
                    ),
                    Err(e) => tracing::warn!(
                        module = %path.display(),
                        "could not start compiling with cranelift in the background: {e}"
                    ),
                }
            }
            BackgroundCompile::InProcess => {
                let Ok(compiler) = self.compiler(Tier::Cranelift) else {
                    return;
                };
                let engine = compiler.engine.clone();
                let cache = self.cache.clone();
                let bytes = bytes.to_vec();
                let name = name.to_string();
                let path = path.to_path_buf();
                let upgrade = Arc::clone(upgrade);
                let spawned = std::thread::Builder::new()
                    .name("wasabi-tier-up".into())
                    .spawn(move || {
                        let compiled = background_pool()
                            .install(|| module::compile(&engine, Tier::Cranelift, &path, &bytes));
                        let (code, took) = match compiled {
                            Ok(compiled) => compiled,
                            Err(e) => {
                                tracing::warn!("background compile failed: {e}");
                                return;
                            }
                        };
                        if let (Some(cache), Some(key)) = (&cache, &upgrade.cranelift_key) {
                            cache.put(key, Tier::Cranelift, &name, &code);
                        }
                        let ready = GuestModule {
                            module: code,
                            kind,
                            path,
                            origin: ModuleOrigin::Compiled(took),
                            tier: Tier::Cranelift,
                            upgrade: None,
                            pre: None,
                        };
                        // Linked when a tenant first takes it (the linker
                        // lives in the runtime).
                        *upgrade.ready.lock().unwrap_or_else(|e| e.into_inner()) = Some(ready);
                    });
                if let Err(e) = spawned {
                    tracing::warn!("could not start the background compile: {e}");
                }
            }
        }
    }

    /// The code a new tenant of `module` runs: Cranelift's once the
    /// background compile has made it (found in the cache, or handed over
    /// by this process's own compile), else `module`'s own. A tenant keeps
    /// the code it started on until it ends.
    fn current(&self, module: &GuestModule) -> GuestModule {
        let Some(upgrade) = &module.upgrade else {
            return module.clone();
        };
        let mut ready = upgrade.ready.lock().unwrap_or_else(|e| e.into_inner());
        if ready.is_none()
            && let (Some(cache), Some(key)) = (&self.cache, &upgrade.cranelift_key)
            && cache.contains(key)
            && let Ok(compiler) = self.compiler(Tier::Cranelift)
            && let Some(code) = cache.get(&compiler.engine, Tier::Cranelift, key)
        {
            *ready = Some(GuestModule {
                module: code,
                kind: module.kind,
                path: module.path.clone(),
                origin: ModuleOrigin::Cached,
                tier: Tier::Cranelift,
                upgrade: None,
                pre: None,
            });
        }
        match ready.as_mut() {
            Some(better) => {
                if better.pre.is_none() {
                    let _ = self.link(better);
                }
                tracing::info!(module = %module.path.display(), "a new tenant runs the cranelift code");
                better.clone()
            }
            None => module.clone(),
        }
    }

    /// Compiles `wasm` (the module named `name`) with Cranelift into the
    /// cache, unless the cache holds it already or another process is at
    /// it: what `wasabi cache add` does, in the background of a run or by
    /// hand.
    ///
    /// `background`: only if one of the cache's background slots is free.
    pub fn fill_cache(
        &self,
        wasm: &[u8],
        name: &str,
        background: bool,
    ) -> Result<Filled, LoadError> {
        let path = Path::new(name);
        let cache = self.cache.as_ref().ok_or_else(|| LoadError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other("the compiled-module cache is off"),
        })?;
        let compiler = self.compiler(Tier::Cranelift)?;
        let key = ModuleCache::key(&compiler.engine, Tier::Cranelift, wasm);
        let write_error = |source| LoadError::Write {
            path: cache.dir().to_path_buf(),
            source,
        };
        let _slot = match background {
            true => match cache.background_slot().map_err(write_error)? {
                Some(slot) => Some(slot),
                None => return Ok(Filled::Busy),
            },
            false => None,
        };
        let Some(_lock) = cache.lock_fill(&key).map_err(write_error)? else {
            return Ok(Filled::InProgress);
        };
        if cache.contains(&key) && cache.get(&compiler.engine, Tier::Cranelift, &key).is_some() {
            return Ok(Filled::AlreadyCached);
        }
        let (code, took) = module::compile(&compiler.engine, Tier::Cranelift, path, wasm)?;
        cache.put(&key, Tier::Cranelift, name, &code);
        Ok(Filled::Compiled(took))
    }

    /// Compiles the WebAssembly module `input` ahead of time into `output`,
    /// a `.cwasm` of Cranelift code sealed with this installation's key,
    /// which [`Runtime::load`] accepts (when allowed) with the same key,
    /// Wasabi build and CPU features.
    pub fn compile(&self, input: &Path, output: &Path) -> Result<(), LoadError> {
        let bytes = std::fs::read(input).map_err(|source| LoadError::Read {
            path: input.to_path_buf(),
            source,
        })?;
        let sealed = self.compile_bytes(input, bytes)?;
        crate::cache::write_atomically(output, &sealed).map_err(|source| LoadError::Write {
            path: output.to_path_buf(),
            source,
        })
    }

    /// [`Runtime::compile`] in memory: the sealed Cranelift code of the
    /// WebAssembly module `wasm` (named `name` in messages), which
    /// [`Runtime::load_bytes`] accepts with [`PrecompiledCode::Allowed`].
    pub fn compile_bytes(&self, name: &Path, wasm: Vec<u8>) -> Result<Vec<u8>, LoadError> {
        let unsealable = |e: String| LoadError::Precompiled {
            path: name.to_path_buf(),
            reason: format!("cannot seal it: {e}"),
        };
        let bytes = match module::inspect(name, wasm, PrecompiledCode::Refused)? {
            Inspected::Wasm { bytes, .. } => bytes,
            Inspected::Precompiled { .. } => {
                return Err(LoadError::PrecompiledRefused {
                    path: name.to_path_buf(),
                });
            }
        };
        let key = self.install_key().map_err(|e| unsealable(e.to_string()))?;
        let compiler = self.compiler(Tier::Cranelift)?;
        let (module, _) = module::compile(&compiler.engine, Tier::Cranelift, name, &bytes)?;
        let artifact = module.serialize().map_err(|e| unsealable(e.to_string()))?;
        Ok(key.seal(&artifact))
    }

    /// What code this runtime compiles must match to be loaded by it: the
    /// Wasabi build, wasmtime's compatibility hash of the Cranelift engine
    /// (its version, settings and CPU features), and which installation key
    /// seals it. Not secret; for naming code kept elsewhere, such as a
    /// containerd shim's precompiled layers.
    pub fn code_identity(&self) -> Result<String, LoadError> {
        use std::hash::{Hash, Hasher};
        let key = self
            .install_key()
            .map_err(|e| LoadError::Engine(format!("no installation key: {e}")))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.compiler(Tier::Cranelift)?
            .engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Ok(format!(
            "wasabi-{}-{:016x}-{}",
            env!("CARGO_PKG_VERSION"),
            hasher.finish(),
            key.fingerprint()
        ))
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
        if self.preemption == Preemption::Off && spec.limits.max_cpu.is_some() {
            return Err(TenantError::Setup(
                "a CPU share needs preemption, which this runtime has off".into(),
            ));
        }
        let module = &self.current(module);
        let compiler = self
            .compiler(module.tier)
            .map_err(|e| TenantError::Setup(e.to_string()))?;
        // The module's kind decides the world its tenant gets.
        let tenant = async {
            match (module.kind(), &module.pre) {
                (GuestKind::GoJs(abi), pre) => {
                    let pre = match pre {
                        Some(Pre::Go(pre)) => Some(pre),
                        _ => None,
                    };
                    self.run_go(module, compiler.go_linker(abi), pre, spec, io, stats)
                        .await
                }
                (GuestKind::WasiP1, pre) => {
                    let pre = match pre {
                        Some(Pre::Wasi(pre)) => Some(pre),
                        _ => None,
                    };
                    self.run_wasi(module, &compiler.linkers().wasi, pre, spec, io, stats)
                        .await
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
        let mut store = self.store(module, go, memory, stats);
        let instance = instantiate(&mut store, pre, linker, &module.module).await?;
        let outcome = wasabi_gojs::run(&mut store, &instance).await;
        store.data_mut().go().flush();
        outcome.map_err(TenantError::from_run)
    }

    /// A WASI preview-1 command: wasmtime-wasi's world, then `_start`.
    async fn run_wasi(
        &self,
        module: &GuestModule,
        linker: &Linker<TenantData<WasiHost>>,
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
        let mut store = self.store(module, wasi, memory, stats);
        let instance = instantiate(&mut store, pre, linker, &module.module).await?;
        match wasabi_wasi::run(&mut store, &instance).await {
            Ok(wasabi_wasi::Ending::Exited(code)) => Ok(Outcome::Exited(code)),
            Ok(wasabi_wasi::Ending::Drained) => Ok(Outcome::Drained),
            Err(wasabi_wasi::RunError::Trap(e)) => {
                Err(TenantError::from_run(wasabi_gojs::RunError::Trap(e)))
            }
            Err(e @ wasabi_wasi::RunError::NoStart) => Err(TenantError::Setup(e.to_string())),
        }
    }

    /// A store for `world` on `module`'s engine, its memory counted in
    /// `memory` (and published in `stats`), preempted at every epoch tick.
    fn store<W>(
        &self,
        module: &GuestModule,
        world: W,
        memory: Arc<MemoryMeter>,
        stats: &InstanceStats,
    ) -> Store<TenantData<W>> {
        if let Ok(mut m) = stats.memory.lock() {
            *m = Some(Arc::clone(&memory));
        }
        let mut store = Store::new(
            module.module.engine(),
            TenantData {
                world,
                limiter: Limiter { memory },
            },
        );
        store.limiter(|state| &mut state.limiter);
        if self.preemption == Preemption::Epochs {
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
        }
        store
    }
}

/// The threads a background compile runs on: as many as the machine has
/// cores, each at nice 10, so tenants (and Winch compiles they wait on)
/// get the CPU first and the compile takes what is left.
fn background_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("wasabi-tier-up-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
            .expect("a one-thread pool can be built")
    })
}

/// Lowers the calling thread's scheduling priority to nice 10 (Linux
/// keeps a nice value per thread).
pub fn lower_priority() {
    // SAFETY: setpriority only reads its arguments; `gettid` names this
    // thread. Failure leaves the priority as it was, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
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

//! [`Runtime`]: the engine, the module cache and the linkers, shared by every
//! tenant of a process; and [`Runtime::run`], which runs one tenant.

use std::path::{Path, PathBuf};

use wasabi_gojs::{Abi, GoHost, GoHostBuilder, GoView, Outcome, RunError};
use wasmtime::{Engine, Linker, Store};

use crate::cache::ModuleCache;
use crate::engine::{build_engine, start_epoch_ticker};
use crate::limits::{Limiter, MemoryLimitExceeded, TenantLimits};
use crate::module::{self, GoModule, Inspected, LoadError};

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Folder of the compiled-module cache; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The store data of one tenant: its JS world and its limiter.
pub struct TenantState {
    go: GoHost,
    limiter: Limiter,
}

impl GoView for TenantState {
    fn go(&mut self) -> &mut GoHost {
        &mut self.go
    }
}

/// Why a tenant did not run to its exit.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The guest grew its memory past its limit.
    #[error(transparent)]
    MemoryLimit(MemoryLimitExceeded),
    /// The instance could not be created (for example, its initial memory
    /// is already over the limit).
    #[error("could not instantiate the module: {0:#}")]
    Instantiate(wasmtime::Error),
    /// The program failed to run: a trap, an uncaught JS exception, a deadlock.
    #[error(transparent)]
    Run(RunError),
    /// The tenant's JS world could not be set up.
    #[error("could not set up the JS world: {0}")]
    Setup(String),
}

impl TenantError {
    fn from_run(e: RunError) -> TenantError {
        if let RunError::Trap(trap) = &e
            && let Some(limit) = trap.downcast_ref::<MemoryLimitExceeded>()
        {
            return TenantError::MemoryLimit(*limit);
        }
        TenantError::Run(e)
    }
}

/// The shared machinery of a Wasabi process: one engine (and its epoch
/// ticker), the compiled-module cache, and a linker per Go ABI.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use wasabi_core::{Runtime, RuntimeConfig, TenantLimits};
/// use wasabi_gojs::GoHostBuilder;
///
/// let runtime = Runtime::new(RuntimeConfig::default())?;
/// let module = runtime.load("hello.wasm".as_ref())?;
/// let outcome = runtime
///     .run(&module, GoHostBuilder::new().arg("hello"), TenantLimits::default())
///     .await?;
/// std::process::exit(outcome.code());
/// # }
/// ```
pub struct Runtime {
    engine: Engine,
    cache: Option<ModuleCache>,
    gojs: Linker<TenantState>,
    legacy: Linker<TenantState>,
}

impl Runtime {
    /// Builds the engine and linkers and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Runtime> {
        let engine = build_engine()?;
        start_epoch_ticker(&engine);
        let mut gojs = Linker::new(&engine);
        wasabi_gojs::add_to_linker(&mut gojs, Abi::Gojs)?;
        let mut legacy = Linker::new(&engine);
        wasabi_gojs::add_to_linker(&mut legacy, Abi::Legacy)?;
        Ok(Runtime {
            engine,
            cache: config.cache_dir.map(ModuleCache::new),
            gojs,
            legacy,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled-module cache, if enabled.
    pub fn cache(&self) -> Option<&ModuleCache> {
        self.cache.as_ref()
    }

    /// Loads a `.wasm` (compiling it, or taking it from the cache) or a
    /// `.cwasm` made by [`Runtime::compile`].
    pub fn load(&self, path: &Path) -> Result<GoModule, LoadError> {
        match module::inspect(path)? {
            Inspected::Wasm { bytes, abi } => {
                module::compile(&self.engine, self.cache.as_ref(), path, &bytes, abi)
            }
            Inspected::Precompiled => module::load_precompiled(&self.engine, path),
        }
    }

    /// Compiles `input` ahead of time into `output`, a `.cwasm` that
    /// [`Runtime::load`] (and `wasabi run`) accepts on a machine with the same
    /// Wasabi build and CPU features.
    pub fn compile(&self, input: &Path, output: &Path) -> Result<(), LoadError> {
        let module = match module::inspect(input)? {
            Inspected::Wasm { bytes, abi } => {
                module::compile(&self.engine, None, input, &bytes, abi)?
            }
            Inspected::Precompiled => module::load_precompiled(&self.engine, input)?,
        };
        let bytes = module.module().serialize().map_err(|e| LoadError::Write {
            path: output.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        std::fs::write(output, bytes).map_err(|source| LoadError::Write {
            path: output.to_path_buf(),
            source,
        })
    }

    /// Runs one tenant of `module` to its end, with the JS world `host`
    /// configures and under `limits`.
    pub async fn run(
        &self,
        module: &GoModule,
        host: GoHostBuilder,
        limits: TenantLimits,
    ) -> Result<Outcome, TenantError> {
        let go = host
            .object_budget(limits.max_object_bytes)
            .max_sockets(limits.max_sockets)
            .build()
            .map_err(|e| TenantError::Setup(e.to_string()))?;
        let mut store = Store::new(
            &self.engine,
            TenantState {
                go,
                limiter: Limiter { limits },
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let linker = match module.abi() {
            Abi::Gojs => &self.gojs,
            Abi::Legacy => &self.legacy,
        };
        let instance = linker
            .instantiate_async(&mut store, &module.module)
            .await
            .map_err(|e| match e.downcast_ref::<MemoryLimitExceeded>() {
                Some(limit) => TenantError::MemoryLimit(*limit),
                None => TenantError::Instantiate(e),
            })?;
        let outcome = wasabi_gojs::run(&mut store, &instance).await;
        store.data_mut().go().flush();
        outcome.map_err(TenantError::from_run)
    }
}

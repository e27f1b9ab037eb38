//! Inside the container: the image's module runs as one Wasabi tenant.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, Source};
use tokio::signal::unix::{SignalKind, signal};
use wasabi_core::manifest::ManifestAdvice;
use wasabi_core::seal::InstallKey;
use wasabi_core::{
    BackgroundCompile, DrainSignal, InstanceStats, KeySource, PrecompiledCode, Runtime,
    RuntimeConfig, TenantIo, Tiering, wait_drained,
};

/// How long a stopped container's guest may take to finish its open
/// connections; Kubernetes' own grace period (30 s by default) ends it
/// with SIGKILL anyway.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The exit code of a guest stopped by SIGTERM before it finished, as a
/// process killed by it reports.
const EXIT_TERMINATED: i32 = 128 + 15;

/// Runs a container's WebAssembly entrypoint with Wasabi.
#[derive(Default)]
pub struct WasabiSandbox;

/// The runtime of a container, and of the shim's compiler: they must agree
/// for precompiled code to load. Cranelift's code, since a container is
/// usually long-lived and its image's layer is compiled once per node; no
/// cache folder, since the container's files are the image's.
pub fn runtime_config(key: InstallKey) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: None,
        tiering: Tiering::Cranelift,
        background: BackgroundCompile::Off,
        key: KeySource::Loaded(key),
        ..RuntimeConfig::default()
    }
}

impl Sandbox for WasabiSandbox {
    /// Any module file, or an image's module layer: what it holds is for
    /// Wasabi's loader to judge, which says why it refuses one (native
    /// code, a forged seal, WebAssembly text) in the container's log.
    async fn can_handle(&self, ctx: &impl RuntimeContext) -> anyhow::Result<()> {
        match ctx.entrypoint().source {
            Source::Oci(_) => Ok(()),
            Source::File(path) => {
                let meta = std::fs::metadata(&path)
                    .with_context(|| format!("the entrypoint {}", path.display()))?;
                anyhow::ensure!(
                    meta.is_file(),
                    "the entrypoint {} is not a file",
                    path.display()
                );
                Ok(())
            }
        }
    }

    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        // Every failure is the container's log line and exit code, not a
        // bare 137 from the shim.
        match run(ctx).await {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("wasabi: {e:#}");
                Ok(1)
            }
        }
    }
}

async fn run(ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
    // The guest is the container's first process: the kernel delivers it
    // no signal it has no handler for but SIGKILL, so SIGTERM and SIGINT
    // are handled here, from the start (a stop during the compile too).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let entrypoint = ctx.entrypoint();
    let name = entrypoint
        .arg0
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("module.wasm"));
    let bytes = entrypoint.source.as_bytes()?.into_owned();
    // Only a layer the shim's compiler made may be machine code, and its
    // seal must still prove it.
    let precompiled = if entrypoint.source.is_precompiled()? {
        PrecompiledCode::Allowed
    } else {
        PrecompiledCode::Refused
    };
    let spec = crate::container::tenant_spec(&name, ctx.args(), ctx.envs())?;
    let key = crate::node::key().map_err(|e| anyhow::anyhow!("the node's key: {e}"))?;
    let runtime = Arc::new(
        Runtime::new(runtime_config(key))
            .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?,
    );
    // Compiling a large module takes seconds: off this thread, so a stop
    // is not held up by it.
    let load = tokio::task::spawn_blocking({
        let runtime = Arc::clone(&runtime);
        let name = name.clone();
        move || runtime.load_bytes(&name, bytes, precompiled)
    });
    let module = tokio::select! {
        loaded = load => loaded??,
        _ = term.recv() => return Ok(EXIT_TERMINATED),
        _ = int.recv() => return Ok(EXIT_TERMINATED),
    };
    log::info!("running {} ({:?})", name.display(), module.origin());
    let drain = DrainSignal::new();
    let io = TenantIo {
        drain: drain.clone(),
        advice: Arc::new(ManifestAdvice),
        ..TenantIo::default()
    };
    let stats = Arc::new(InstanceStats::default());
    let mut tenant = Box::pin(runtime.run_observed(&module, &spec, io, &stats));
    let result = tokio::select! {
        result = &mut tenant => result,
        _ = async { tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} } } => {
            // Stop accepting, let open connections finish, then end.
            drain.start();
            match wait_drained(&mut tenant, || stats.open_connections(), STOP_GRACE).await {
                Ok(result) => result,
                Err(reason) => {
                    eprintln!("wasabi: {reason}");
                    return Ok(EXIT_TERMINATED);
                }
            }
        }
    };
    match result {
        Ok(outcome) => Ok(outcome.code()),
        Err(e) => {
            eprintln!("wasabi: {}", e.report(&ManifestAdvice));
            Ok(i32::from(e.exit_code()))
        }
    }
}

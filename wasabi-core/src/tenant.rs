//! The one description of a tenant, [`TenantSpec`], and the one path that
//! turns it into a guest world, whatever edge made it: `wasabi run`,
//! `wasabi go-exec`, a `wasabi serve` manifest or an embedder.
//!
//! [`Runtime::run`](crate::Runtime::run) takes a loaded module and a spec;
//! the module's kind (a Go js/wasm program today) decides which world is
//! built from the spec, here, so a second kind of guest plugs in beside the
//! first rather than beside every caller.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasabi_gojs::{DrainSignal, GoHostBuilder, NetPolicy, OutputSink, RunError, SandboxSpec};
use wasabi_limits::{Advice, Cap, NoAdvice, SharedAdvice, TenantLimits};

use crate::limits::MemoryLimitExceeded;
use crate::module::PrecompiledCode;

/// When a tenant that ended is started again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never: it ends for good.
    #[default]
    Never,
    /// When it fails: a non-zero exit, a trap, a broken limit.
    OnFailure,
    /// Whenever it ends.
    Always,
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        })
    }
}

/// Everything that defines one tenant: what runs, what it sees, and within
/// which limits.
///
/// ```
/// use wasabi_core::{TenantLimits, TenantSpec};
///
/// let mut spec = TenantSpec::new("blog", "/srv/blog.wasm");
/// spec.env.push(("GREETING".into(), "hi".into()));
/// spec.limits = TenantLimits { max_memory: Some(64 << 20), ..TenantLimits::default() };
/// assert_eq!(spec.argv0(), "blog.wasm");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    /// Unique name; tags its output, logs and metrics.
    pub name: String,
    /// The `.wasm` it runs (or a `.cwasm`, if `precompiled` allows it).
    pub module: PathBuf,
    /// Whether `module` may be precompiled code this installation sealed.
    pub precompiled: PrecompiledCode,
    /// What the program sees as its own name (`os.Args[0]`); `None`: the
    /// module's file name.
    pub program_name: Option<String>,
    /// Its arguments after its own name.
    pub args: Vec<String>,
    /// Its environment: exactly these variables.
    pub env: Vec<(String, String)>,
    /// What it may reach on the network.
    pub net: NetPolicy,
    /// Which host directories it sees (host paths absolute), and its
    /// working directory. Nothing, by default.
    pub fs: SandboxSpec,
    /// Every cap it runs under.
    pub limits: TenantLimits,
    /// When it is started again after it ends.
    pub restart: RestartPolicy,
    /// Present the program as Go's own Node.js test runner does (see
    /// [`GoHostBuilder::go_test_runner`]): for `go test -exec`.
    pub go_test_runner: bool,
    /// The certificate and key the host serves HTTPS with, on every
    /// listener the program serves through the host; plain HTTP when
    /// `None`.
    pub server_tls: Option<wasabi_gojs::ServerTls>,
    /// Whom its HTTPS requests (`fetch`) trust: the system's certificate
    /// authorities, plus any its owner adds.
    pub client_tls: wasabi_gojs::ClientTls,
    /// Where a `wasabi serve` router sends requests to it: hosts, with an
    /// optional path prefix. None by default.
    pub routes: Vec<wasabi_gojs::Route>,
}

impl TenantSpec {
    /// A tenant running `module` with no arguments, no environment, no
    /// network, no files, default limits and no restarts.
    pub fn new(name: impl Into<String>, module: impl Into<PathBuf>) -> TenantSpec {
        TenantSpec {
            name: name.into(),
            module: module.into(),
            precompiled: PrecompiledCode::Refused,
            program_name: None,
            args: Vec::new(),
            env: Vec::new(),
            net: NetPolicy::deny_all(),
            fs: SandboxSpec::default(),
            limits: TenantLimits::default(),
            restart: RestartPolicy::Never,
            go_test_runner: false,
            server_tls: None,
            client_tls: wasabi_gojs::ClientTls::system(),
            routes: Vec::new(),
        }
    }

    /// The program's own name, `os.Args[0]`.
    pub fn argv0(&self) -> String {
        self.program_name.clone().unwrap_or_else(|| {
            self.module
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.name.clone())
        })
    }
}

/// What one run of a tenant is attached to: where its output goes, the
/// signal that asks it to drain, and how its refusals are worded for the
/// person who configured it.
pub struct TenantIo {
    /// Its standard output.
    pub stdout: OutputSink,
    /// Its standard error.
    pub stderr: OutputSink,
    /// Asks it to stop accepting and finish its connections.
    pub drain: DrainSignal,
    /// How a denial or a reached cap tells its owner what to change.
    pub advice: SharedAdvice,
    /// Where the host's HTTP server counts the requests it serves for it
    /// (a supervisor keeps one per tenant across its runs).
    pub http_stats: Arc<wasabi_gojs::RequestStats>,
}

impl Default for TenantIo {
    /// The process's stdout and stderr, a drain signal nobody gives, no
    /// advice.
    fn default() -> Self {
        TenantIo {
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            drain: DrainSignal::new(),
            advice: Arc::new(NoAdvice),
            http_stats: Arc::default(),
        }
    }
}

impl std::fmt::Debug for TenantIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantIo")
            .field("advice", &self.advice)
            .finish_non_exhaustive()
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
    /// The tenant's world could not be set up (a mount cannot be opened).
    #[error("could not set up the guest's world: {0}")]
    Setup(String),
    /// The JS world's own objects do not fit in the tenant's limits.
    #[error("could not set up the JS world: {0}")]
    WorldTooBig(wasabi_gojs::HeapError),
}

impl TenantError {
    /// What a person reads about this failure: [`TenantError::advised`],
    /// then the guest's backtrace when it trapped.
    pub fn report(&self, advice: &dyn Advice) -> String {
        let mut text = self.advised(advice);
        if let TenantError::Run(run @ RunError::Trap(_)) = self
            && let Some(backtrace) = run.guest_backtrace()
        {
            text.push_str(&format!("\nguest backtrace:\n{backtrace}"));
        }
        text
    }

    /// The exit code of a process that runs one tenant and ends with this
    /// failure: 1 when the program could not start, 134 (an abort's) when
    /// it failed while running — a trap, a broken limit.
    pub fn exit_code(&self) -> u8 {
        match self {
            TenantError::Instantiate(_)
            | TenantError::Setup(_)
            | TenantError::WorldTooBig(_)
            | TenantError::Run(RunError::MissingExport(_) | RunError::ArgsTooLong(_)) => 1,
            _ => 134,
        }
    }

    /// The message, followed by how to raise the limit it broke, as
    /// `advice` words it for whoever configured the tenant.
    pub fn advised(&self, advice: &dyn Advice) -> String {
        let hint = match self {
            TenantError::MemoryLimit(_) => advice.raise(Cap::Memory),
            TenantError::Run(run) => run.cap_reached().and_then(|cap| advice.raise(cap)),
            TenantError::WorldTooBig(wasabi_gojs::HeapError::Memory(_)) => {
                advice.raise(Cap::Memory)
            }
            TenantError::WorldTooBig(_) => advice.raise(Cap::ObjectBytes),
            _ => None,
        };
        wasabi_limits::advised(self, hint)
    }

    pub(crate) fn from_run(e: RunError) -> TenantError {
        if let RunError::Trap(trap) = &e
            && let Some(limit) = trap.downcast_ref::<MemoryLimitExceeded>()
        {
            return TenantError::MemoryLimit(*limit);
        }
        TenantError::Run(e)
    }
}

/// The JS world of a Go js/wasm tenant, as `spec` describes it. Mounts
/// must name absolute host directories: every edge makes them so (against
/// the current directory, or the manifest's folder), and a relative one is
/// refused rather than opened against some folder nobody chose.
pub(crate) fn go_world(spec: &TenantSpec, io: TenantIo) -> Result<GoHostBuilder, TenantError> {
    if let Some(m) = spec.fs.mounts.iter().find(|m| m.host.is_relative()) {
        return Err(TenantError::Setup(format!(
            "the mount of {} names a relative host directory; give an absolute path",
            m.host.display()
        )));
    }
    let fs = spec
        .fs
        .open(Path::new("/"))
        .map_err(|e| TenantError::Setup(e.to_string()))?;
    let mut host = GoHostBuilder::new();
    for (key, value) in &spec.env {
        host = host.env(key.clone(), value.clone());
    }
    Ok(host
        .arg(spec.argv0())
        .args(spec.args.iter().cloned())
        .stdout(io.stdout)
        .stderr(io.stderr)
        .net_policy(spec.net.clone())
        .filesystem(fs)
        .limits(spec.limits)
        .advice(io.advice)
        .request_stats(io.http_stats)
        .drain_signal(io.drain)
        .go_test_runner(spec.go_test_runner)
        .server_tls(spec.server_tls.clone())
        .client_tls(spec.client_tls.clone()))
}

/// The WASI world of a preview-1 command: its arguments, the environment it
/// was granted, its mounts as preopens (a read-only mount gives read-only
/// descriptors) and its output sinks.
pub(crate) fn wasi_world(
    spec: &TenantSpec,
    io: TenantIo,
    opens_own_listeners: bool,
) -> Result<wasabi_wasi::WasiHost, TenantError> {
    let preopens = spec
        .fs
        .mounts
        .iter()
        .map(|m| wasabi_wasi::Preopen {
            host: m.host.clone(),
            guest: m
                .guest
                .clone()
                .unwrap_or_else(|| m.host.to_string_lossy().into_owned()),
            read_only: m.read_only,
        })
        .collect();
    let args = std::iter::once(spec.argv0())
        .chain(spec.args.iter().cloned())
        .collect();
    // A guest that can open listeners itself (it imports the socket
    // extension's `sock_listen`) binds its granted addresses when it wants
    // them; one that cannot finds them already open.
    let listeners = if opens_own_listeners {
        Vec::new()
    } else {
        spec.net.listen_addresses()
    };
    wasabi_wasi::WasiWorld {
        args,
        env: spec.env.clone(),
        preopens,
        stdout: io.stdout,
        stderr: io.stderr,
        max_open_files: spec.limits.max_open_files,
        net: spec.net.clone(),
        max_sockets: spec.limits.max_sockets,
        listeners,
        advice: io.advice,
        drain: io.drain,
        // The test world of `go test -exec`: its own runner gives a test
        // binary the host's whole file system; Wasabi gives the two files
        // tests take for granted.
        builtins: spec.go_test_runner,
    }
    .build()
    .map_err(|e| TenantError::Setup(e.to_string()))
}

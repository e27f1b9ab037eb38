//! [`GoHost`]: everything one Go instance's JS world holds, and
//! [`GoHostBuilder`], how an embedder configures it.

use std::path::Path;

use wasmtime::{Memory, TypedFunc};

use wasabi_fs::Sandbox;
use wasabi_limits::{NoAdvice, SharedAdvice, TenantLimits};
use wasabi_net::{HttpClient, NetPolicy, Sockets};

use crate::globals::fetch::Requests;
use crate::globals::fs::Files;
use crate::globals::net::Network;
use crate::heap::{Heap, HeapError};
use crate::js::{Clock, Js};
use crate::memory::MemoryMeter;
use crate::output::{Output, OutputSink};
use crate::table::RefTable;
use crate::timers::Timers;
use crate::timezone::TimeZone;
use crate::value::Value;
use wasabi_net::DrainSignal;

/// How deeply JS and Go may call each other re-entrantly.
pub const MAX_REENTRY_DEPTH: u32 = 64;

/// The exports of a Go module the host calls.
#[derive(Clone)]
pub(crate) struct GuestExports {
    pub memory: Memory,
    pub resume: TypedFunc<(), ()>,
    pub getsp: TypedFunc<(), i32>,
}

/// The host side of one Go js/wasm instance: its JS heap and reference
/// table, its realm of globals, its timers, its process view (arguments,
/// environment, output) and the state of its run.
///
/// Embedders make one with [`GoHostBuilder`], put it in their store's data,
/// and expose it through [`GoView`](crate::GoView).
pub struct GoHost {
    /// The heap, the realm, the queues and the clock every global uses.
    pub(crate) js: Js,
    pub(crate) table: RefTable,
    pub(crate) timers: Timers,
    /// The instance's files: its mounts, working directory, open files.
    pub(crate) files: Files,
    /// The instance's sockets, under its network policy.
    pub(crate) network: Network,
    /// The instance's HTTP requests (`fetch`), under the same policy.
    pub(crate) requests: Requests,
    /// Its standard output and error.
    pub(crate) output: Output,
    /// Whether the host asked the instance to drain.
    pub(crate) drain: DrainSignal,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) exports: Option<GuestExports>,
    /// Values the host holds across a call into Go (roots for the collector).
    pub(crate) pinned: Vec<Value>,
    /// The code passed to `runtime.wasmExit`, once the guest has exited.
    pub(crate) exit_code: Option<i32>,
    /// How many Go calls are on the stack right now.
    pub(crate) depth: u32,
    /// How many times Go has been entered; a handler re-reads `sp` when this
    /// moved during its operation.
    pub(crate) entries: u64,
    /// The tenant's memory meter (linear and host memory, one limit).
    pub(crate) memory: std::sync::Arc<MemoryMeter>,
    /// What each host function number of the heap stands for.
    pub(crate) natives: Vec<crate::globals::Native>,
}

impl std::fmt::Debug for GoHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoHost")
            .field("args", &self.args)
            .field("objects", &self.js.heap.len())
            .field("refs", &self.table.live())
            .field("timers", &self.timers.len())
            .field("sockets", &self.network.sockets.open_sockets())
            .field("files", &self.files.sandbox.open_files())
            .field("exit_code", &self.exit_code)
            .finish_non_exhaustive()
    }
}

/// Configures a [`GoHost`]: arguments, environment, output and limits.
///
/// Nothing is inherited from the host process: the guest sees exactly the
/// arguments and environment given here.
///
/// ```
/// use wasabi_gojs::GoHostBuilder;
///
/// let host = GoHostBuilder::new()
///     .arg("hello.wasm")
///     .env("GREETING", "hi")
///     .stdout(Box::new(std::io::sink()))
///     .build()
///     .expect("a fresh JS world fits in the default budget");
/// assert!(format!("{host:?}").contains("hello.wasm"));
/// ```
pub struct GoHostBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: OutputSink,
    stderr: OutputSink,
    limits: TenantLimits,
    zoneinfo: std::path::PathBuf,
    net_policy: NetPolicy,
    drain: DrainSignal,
    fs: Option<Sandbox>,
    go_test_runner: bool,
    advice: SharedAdvice,
    server_tls: Option<wasabi_net::ServerTls>,
    client_tls: wasabi_net::ClientTls,
    request_stats: std::sync::Arc<wasabi_net::RequestStats>,
}

impl Default for GoHostBuilder {
    fn default() -> Self {
        GoHostBuilder::new()
    }
}

impl GoHostBuilder {
    /// No arguments, no environment, output to the host's stdout and stderr.
    pub fn new() -> GoHostBuilder {
        GoHostBuilder {
            args: Vec::new(),
            env: Vec::new(),
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            limits: TenantLimits::default(),
            zoneinfo: "/usr/share/zoneinfo".into(),
            net_policy: NetPolicy::deny_all(),
            drain: DrainSignal::new(),
            fs: None,
            go_test_runner: false,
            advice: std::sync::Arc::new(NoAdvice),
            server_tls: None,
            client_tls: wasabi_net::ClientTls::system(),
            request_stats: std::sync::Arc::default(),
        }
    }

    /// Where the host's HTTP server counts the requests it serves (fresh
    /// counters by default).
    pub fn request_stats(mut self, stats: std::sync::Arc<wasabi_net::RequestStats>) -> Self {
        self.request_stats = stats;
        self
    }

    /// Serve HTTPS with this certificate and key on every listener the
    /// program serves through the host (`wasabi.Serve`); plain HTTP by
    /// default.
    pub fn server_tls(mut self, tls: Option<wasabi_net::ServerTls>) -> Self {
        self.server_tls = tls;
        self
    }

    /// The certificate authorities the guest's HTTPS requests (`fetch`)
    /// trust: by default the system's.
    pub fn client_tls(mut self, tls: wasabi_net::ClientTls) -> Self {
        self.client_tls = tls;
        self
    }

    /// Appends one argument (`os.Args[0]` first).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable (a later value for the same key wins).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Where the guest's standard output goes.
    pub fn stdout(mut self, sink: OutputSink) -> Self {
        self.stdout = sink;
        self
    }

    /// Where the guest's standard error goes.
    pub fn stderr(mut self, sink: OutputSink) -> Self {
        self.stderr = sink;
        self
    }

    /// The caps the instance runs under (all of [`TenantLimits`]: memory, JS
    /// objects, references, timers, sockets, open files). Default:
    /// [`TenantLimits::default`].
    pub fn limits(mut self, limits: TenantLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How the guest's errors tell the tenant's owner to grant what was
    /// denied or raise a cap (the guest sees the words, e.g. in a
    /// `net.OpError`). Default: no advice, only what happened.
    pub fn advice(mut self, advice: SharedAdvice) -> Self {
        self.advice = advice;
        self
    }

    /// Where zone names in `TZ` are looked up.
    pub fn zoneinfo(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.zoneinfo = dir.into();
        self
    }

    /// What the guest may reach on the network (nothing, by default).
    pub fn net_policy(mut self, policy: NetPolicy) -> Self {
        self.net_policy = policy;
        self
    }

    /// The instance's filesystem (by default an empty one: nothing is
    /// visible, and the working directory is `/`).
    pub fn filesystem(mut self, fs: Sandbox) -> Self {
        self.fs = Some(fs);
        self
    }

    /// Present the guest as Go's own Node.js runner (`go_js_wasm_exec`)
    /// does, where Go's standard library looks: `process.argv0` is `node`.
    /// Go's `net/http` client then talks over Go's in-process network,
    /// where `httptest` servers listen, instead of calling `fetch` (as it
    /// does under Node.js, go.dev/issue/57613). For running Go's tests; by
    /// default (`false`) `argv0` is `wasabi` and `http.Get` uses `fetch`.
    pub fn go_test_runner(mut self, on: bool) -> Self {
        self.go_test_runner = on;
        self
    }

    /// The signal that asks this instance to drain.
    pub fn drain_signal(mut self, drain: DrainSignal) -> Self {
        self.drain = drain;
        self
    }

    /// Builds the host. Fails only if the realm does not fit in the object
    /// budget.
    pub fn build(self) -> Result<GoHost, HeapError> {
        let limits = self.limits;
        // One meter for linear memory and the host memory held for the
        // guest: the embedder's resource limiter counts in it too
        // ([`GoHost::memory_meter`]).
        let memory = std::sync::Arc::new(MemoryMeter::new(limits.max_memory));
        let mut heap = Heap::with_meter(limits.max_object_bytes, std::sync::Arc::clone(&memory));
        let (realm, natives) = crate::globals::install(&mut heap)?;
        let process = heap.get_property(
            &Value::Object(realm.global),
            crate::heap::Key::Name("process"),
        )?;
        let argv0 = if self.go_test_runner {
            "node"
        } else {
            "wasabi"
        };
        heap.set_property(&process, crate::heap::Key::Name("argv0"), argv0.into())?;
        let table = RefTable::new(
            realm.global,
            realm.go,
            limits.max_references,
            std::sync::Arc::clone(&memory),
        );
        let timezone = self
            .env
            .iter()
            .find(|(k, _)| k == "TZ")
            .map(|(_, tz)| TimeZone::from_tz(tz, Path::new(&self.zoneinfo)))
            .unwrap_or_default();
        // One cap for sockets and fetch requests together.
        let sockets = wasabi_net::SocketQuota::new(limits.max_sockets);
        let memory_for_requests =
            std::sync::Arc::clone(&memory) as std::sync::Arc<dyn wasabi_limits::HostMemory>;
        // One doorbell for everything the companion's imports wait for.
        let doorbell = std::sync::Arc::new(wasabi_net::Doorbell::default());
        Ok(GoHost {
            js: Js {
                heap,
                realm,
                jobs: Default::default(),
                completions: Default::default(),
                memory_trap: None,
                advice: self.advice,
                clock: Clock::start(timezone),
            },
            table,
            timers: Timers::new(limits.max_timers),
            files: Files {
                sandbox: self
                    .fs
                    .unwrap_or_else(Sandbox::empty)
                    .with_max_files(limits.max_open_files),
                umask: 0o022,
            },
            network: Network {
                sockets: Sockets::new(
                    self.net_policy.clone(),
                    std::sync::Arc::clone(&sockets),
                    std::sync::Arc::clone(&doorbell),
                ),
                ingress: wasabi_net::Ingress::new(
                    std::sync::Arc::clone(&doorbell),
                    limits.http,
                    self.server_tls,
                    std::sync::Arc::clone(&sockets),
                    std::sync::Arc::clone(&memory) as std::sync::Arc<dyn wasabi_limits::HostMemory>,
                    self.request_stats,
                ),
                doorbell,
                wake: None,
                pending_head: None,
                last_error: None,
                polled: false,
            },
            requests: Requests {
                http: HttpClient::new(
                    self.net_policy,
                    sockets,
                    memory_for_requests,
                    &self.client_tls,
                ),
                pending: Default::default(),
            },
            output: Output {
                stdout: self.stdout,
                stderr: self.stderr,
            },
            drain: self.drain,
            args: self.args,
            env: self.env,
            exports: None,
            pinned: Vec::new(),
            exit_code: None,
            depth: 0,
            entries: 0,
            memory,
            natives,
        })
    }
}

impl GoHost {
    /// The exit code, once the guest called `runtime.wasmExit`.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// Number of JS objects alive in the heap.
    pub fn object_count(&self) -> usize {
        self.js.heap.len()
    }

    /// Number of sockets the guest holds open.
    pub fn open_sockets(&self) -> usize {
        self.network.sockets.open_sockets()
    }

    /// Live socket counts, shared: they stay readable (and drop to zero)
    /// after the instance ends.
    pub fn net_stats(&self) -> std::sync::Arc<wasabi_net::NetStats> {
        self.network.sockets.stats()
    }

    /// How a router reaches this instance's HTTP server from outside it.
    pub fn router_handle(&self) -> wasabi_net::IngressHandle {
        self.network.ingress.router_handle()
    }

    /// The instance's memory meter: its linear memory and the host memory
    /// held for it, under one limit. The embedder's wasmtime resource
    /// limiter must count linear memory growth in it.
    pub fn memory_meter(&self) -> std::sync::Arc<MemoryMeter> {
        std::sync::Arc::clone(&self.memory)
    }

    /// Number of references Go holds.
    pub fn live_refs(&self) -> usize {
        self.table.live()
    }

    /// Flushes the guest's output sinks.
    pub fn flush(&mut self) {
        self.output.flush();
    }

    /// Runs the collector if enough was allocated since the last run.
    pub(crate) fn maybe_collect(&mut self) {
        if !self.js.heap.wants_collection() {
            return;
        }
        let started = std::time::Instant::now();
        let roots = self.js.realm.roots();
        // What requests may still call back, and the queued callbacks and
        // their arguments, wait for a later turn.
        let pending: Vec<Value> = self
            .requests
            .pending
            .values()
            .flat_map(|r| r.values())
            .chain(self.js.queued().cloned())
            .collect();
        let freed = self.js.heap.collect(
            roots
                .iter()
                .chain(self.table.values())
                .chain(self.timers.values())
                .chain(self.pinned.iter())
                .chain(self.network.wake.iter())
                .chain(pending.iter()),
        );
        tracing::debug!(
            freed,
            live = self.js.heap.len(),
            micros = started.elapsed().as_micros() as u64,
            "collected JS objects"
        );
    }
}

//! [`GoHost`]: everything one Go instance's JS world holds, and
//! [`GoHostBuilder`], how an embedder configures it.

use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Memory, TypedFunc};

use wasabi_fs::Sandbox;
use wasabi_limits::{Cap, NoAdvice, SharedAdvice, TenantLimits};
use wasabi_net::{FetchId, HttpClient, NetError, NetPolicy, Sockets};

use crate::heap::{Heap, HeapError, Object, ObjectKind};
use crate::memory::MemoryMeter;
use crate::realm::Realm;
use crate::table::RefTable;
use crate::timers::Timers;
use crate::timezone::TimeZone;
use crate::value::{ObjectId, Value};

/// Asks a running instance to drain: stop accepting connections, let the
/// open ones finish, then end with [`Outcome::Drained`](crate::Outcome).
/// Clones share one signal; a host built without one never drains.
///
/// ```
/// use wasabi_gojs::{DrainSignal, GoHostBuilder};
///
/// let drain = DrainSignal::new();
/// let host = GoHostBuilder::new().drain_signal(drain.clone()).build()?;
/// // ... later, from the supervisor:
/// drain.start();
/// assert!(drain.draining());
/// # Ok::<(), wasabi_gojs::heap::HeapError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DrainSignal {
    tx: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    rx: tokio::sync::watch::Receiver<bool>,
}

impl Default for DrainSignal {
    fn default() -> Self {
        DrainSignal::new()
    }
}

impl DrainSignal {
    /// A signal not yet given.
    pub fn new() -> DrainSignal {
        let (tx, rx) = tokio::sync::watch::channel(false);
        DrainSignal {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Gives the signal (idempotent).
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// `true` once the signal was given.
    pub fn draining(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once the signal is given.
    pub(crate) async fn requested(&mut self) {
        let _ = self.rx.wait_for(|d| *d).await;
    }
}

/// Where a guest's standard output or error goes.
pub type OutputSink = Box<dyn Write + Send>;

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
    pub(crate) heap: Heap,
    pub(crate) table: RefTable,
    pub(crate) realm: Realm,
    pub(crate) timers: Timers,
    /// The instance's sockets and network policy.
    pub(crate) net: Sockets,
    /// The instance's HTTP requests (`fetch`), under the same policy.
    pub(crate) http: HttpClient,
    /// What Go may still wait on, per request.
    pub(crate) fetches: std::collections::HashMap<FetchId, crate::globals::fetch::FetchRecord>,
    /// Promise reactions to run once the current call into Go returns.
    pub(crate) jobs: std::collections::VecDeque<(Value, Vec<Value>)>,
    /// Completions of `fs` calls to call back, in order, each in its own
    /// turn of the event loop after due timers and ready network events, as
    /// Node.js delivers I/O callbacks.
    pub(crate) completions: std::collections::VecDeque<(Value, Vec<Value>)>,
    /// The instance's files: its mounts, working directory and open files.
    pub(crate) fs: Sandbox,
    /// The guest's callback for network events (`wasabi.net.setNotify`).
    pub(crate) net_notify: Option<Value>,
    /// Whether the host asked the instance to drain.
    pub(crate) drain: DrainSignal,
    pub(crate) stdout: OutputSink,
    pub(crate) stderr: OutputSink,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) timezone: TimeZone,
    pub(crate) clock_origin: Instant,
    pub(crate) clock_origin_unix_ns: u128,
    pub(crate) umask: u32,
    pub(crate) exports: Option<GuestExports>,
    /// Values the host holds across a call into Go (roots for the collector).
    pub(crate) pinned: Vec<Value>,
    /// The code passed to `runtime.wasmExit`, once the guest has exited.
    pub(crate) exit_code: Option<i32>,
    /// Set when a host allocation broke the tenant's memory limit; the call
    /// into the host that did it traps with it.
    pub(crate) memory_trap: Option<crate::memory::MemoryLimitExceeded>,
    /// How many Go calls are on the stack right now.
    pub(crate) depth: u32,
    /// How many times Go has been entered; a handler re-reads `sp` when this
    /// moved during its operation.
    pub(crate) entries: u64,
    /// The tenant's memory meter (linear and host memory, one limit).
    pub(crate) memory: std::sync::Arc<MemoryMeter>,
    /// How the guest's errors tell its owner to change what was refused.
    pub(crate) advice: SharedAdvice,
    /// What each host function number of the heap stands for.
    pub(crate) natives: Vec<crate::globals::Native>,
}

impl std::fmt::Debug for GoHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoHost")
            .field("args", &self.args)
            .field("objects", &self.heap.len())
            .field("refs", &self.table.live())
            .field("timers", &self.timers.len())
            .field("sockets", &self.net.open_sockets())
            .field("files", &self.fs.open_files())
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
        }
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
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // One cap for sockets and fetch requests together.
        let sockets = wasabi_net::SocketQuota::new(limits.max_sockets);
        Ok(GoHost {
            heap,
            table,
            realm,
            timers: Timers::new(limits.max_timers),
            http: HttpClient::new(self.net_policy.clone(), std::sync::Arc::clone(&sockets)),
            fetches: std::collections::HashMap::new(),
            jobs: std::collections::VecDeque::new(),
            completions: std::collections::VecDeque::new(),
            net: Sockets::new(self.net_policy, sockets),
            fs: self
                .fs
                .unwrap_or_else(Sandbox::empty)
                .with_max_files(limits.max_open_files),
            net_notify: None,
            drain: self.drain,
            stdout: self.stdout,
            stderr: self.stderr,
            args: self.args,
            env: self.env,
            timezone,
            clock_origin: Instant::now(),
            clock_origin_unix_ns: unix_ns,
            umask: 0o022,
            exports: None,
            pinned: Vec::new(),
            exit_code: None,
            memory_trap: None,
            depth: 0,
            entries: 0,
            memory,
            advice: self.advice,
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
        self.heap.len()
    }

    /// Number of sockets the guest holds open.
    pub fn open_sockets(&self) -> usize {
        self.net.open_sockets()
    }

    /// Live socket counts, shared: they stay readable (and drop to zero)
    /// after the instance ends.
    pub fn net_stats(&self) -> std::sync::Arc<wasabi_net::NetStats> {
        self.net.stats()
    }

    /// The instance's memory meter: its linear memory and the host memory
    /// held for it, under one limit. The embedder's wasmtime resource
    /// limiter must count linear memory growth in it.
    pub fn memory_meter(&self) -> std::sync::Arc<MemoryMeter> {
        std::sync::Arc::clone(&self.memory)
    }

    /// The text of a network error as the guest sees it: what happened,
    /// then the tenant owner's advice.
    pub(crate) fn network_message(&self, error: &NetError) -> String {
        error.advised(&*self.advice)
    }

    /// Number of references Go holds.
    pub fn live_refs(&self) -> usize {
        self.table.live()
    }

    /// Flushes the guest's output sinks.
    pub fn flush(&mut self) {
        let _ = self.stdout.flush();
        let _ = self.stderr.flush();
    }

    /// Nanoseconds on the monotonic clock, counted from the Unix epoch at
    /// start (like `performance.timeOrigin + performance.now()`).
    pub(crate) fn nanotime(&self) -> i64 {
        let ns = self.clock_origin_unix_ns + self.clock_origin.elapsed().as_nanos();
        i64::try_from(ns).unwrap_or(i64::MAX)
    }

    /// Milliseconds since the Unix epoch on the wall clock.
    pub(crate) fn now_ms(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as f64)
            .unwrap_or(0.0)
    }

    /// Runs the collector if enough was allocated since the last run.
    pub(crate) fn maybe_collect(&mut self) {
        if !self.heap.wants_collection() {
            return;
        }
        let roots = self.realm.roots();
        let pending: Vec<Value> = self
            .fetches
            .values()
            .flat_map(|r| r.values())
            .chain(
                // Queued callbacks and their arguments wait for a later turn.
                self.jobs
                    .iter()
                    .chain(self.completions.iter())
                    .flat_map(|(f, args)| std::iter::once(f).chain(args).cloned()),
            )
            .collect();
        let freed = self.heap.collect(
            roots
                .iter()
                .chain(self.table.values())
                .chain(self.timers.values())
                .chain(self.pinned.iter())
                .chain(self.net_notify.iter())
                .chain(pending.iter()),
        );
        tracing::trace!(freed, live = self.heap.len(), "collected JS objects");
    }

    /// Allocates an object of `kind` with prototype `proto`.
    pub(crate) fn alloc_object(
        &mut self,
        kind: ObjectKind,
        proto: ObjectId,
    ) -> Result<ObjectId, HeapError> {
        self.heap.alloc(Object::new(kind, Some(proto)))
    }

    /// Allocates an ordinary object with `Object.prototype`.
    pub(crate) fn new_object(&mut self) -> Result<ObjectId, HeapError> {
        let proto = self.realm.object_proto;
        self.alloc_object(ObjectKind::Ordinary, proto)
    }

    /// Allocates an array.
    pub(crate) fn new_array(&mut self, items: Vec<Value>) -> Result<ObjectId, HeapError> {
        let proto = self.realm.array_proto;
        self.alloc_object(ObjectKind::Array(items), proto)
    }

    /// Allocates an error object with `proto` and `message`.
    pub(crate) fn new_error(&mut self, proto: ObjectId, message: &str) -> Value {
        match self.heap.alloc(Object::new(ObjectKind::Error, Some(proto))) {
            Ok(id) => {
                self.heap.define(id, "message", Value::string(message));
                Value::Object(id)
            }
            // Out of object budget: throw the message as a string, as an
            // engine out of memory would throw something rather than nothing.
            Err(_) => Value::string(message),
        }
    }

    /// A `TypeError` with `message`.
    pub(crate) fn type_error(&mut self, message: &str) -> Value {
        let proto = self.realm.type_error_proto;
        self.new_error(proto, message)
    }

    /// A `RangeError` with `message`.
    pub(crate) fn range_error(&mut self, message: &str) -> Value {
        let proto = self.realm.range_error_proto;
        self.new_error(proto, message)
    }

    /// A Node.js-style system error: an `Error` with a `code` such as `ENOSYS`.
    pub(crate) fn system_error(&mut self, code: &str, message: &str) -> Value {
        let proto = self.realm.error_proto;
        let err = self.new_error(proto, message);
        if let Value::Object(id) = err {
            self.heap.define(id, "code", Value::string(code));
        }
        err
    }

    /// The thrown value for a failed heap operation. A broken memory limit
    /// is also kept in `memory_trap`: the call that caused it ends the
    /// tenant, as linear memory growing past the limit does.
    pub(crate) fn heap_error(&mut self, err: HeapError) -> Value {
        if let HeapError::Memory(limit) = &err {
            self.memory_trap = Some(*limit);
        }
        match err {
            HeapError::NotAnObject { .. } => self.type_error(&err.to_string()),
            HeapError::Budget { .. } => {
                let message = wasabi_limits::advised(&err, self.advice.raise(Cap::ObjectBytes));
                self.range_error(&message)
            }
            HeapError::ArrayLength | HeapError::StringLength | HeapError::Memory(_) => {
                self.range_error(&err.to_string())
            }
        }
    }
}

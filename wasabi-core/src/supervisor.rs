//! [`Supervisor`]: many tenants in one process, each in its own limits,
//! restarted by policy, drained gracefully, observable while they run.
//!
//! Every tenant is a tokio task running its instance (its CPU time counted,
//! within an optional CPU budget), its output tagged line by line
//! with its name, its network confined by its [`NetPolicy`]. A tenant that
//! traps, panics or breaks a limit ends alone: its store, sockets and
//! timers are dropped with it, and its neighbours never notice.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use wasabi_core::{Runtime, RuntimeConfig, Supervisor, TenantSpec};
//!
//! let supervisor = Supervisor::new(Runtime::new(RuntimeConfig::default())?);
//! supervisor.start(TenantSpec::new("blog", "blog.wasm")).await?;
//! // ... serve until asked to stop, then drain for up to ten seconds:
//! supervisor.shutdown(Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wasabi_gojs::DrainSignal;
use wasabi_limits::{Cap, NoAdvice, SharedAdvice};

use crate::module::{GuestModule, LoadError, PrecompiledCode};
use crate::output::{LogFormat, SharedWriter, Stream, TenantOutput};
use crate::runtime::{InstanceStats, Runtime};
use crate::tenant::{RestartPolicy, TenantError, TenantIo, TenantSpec};

/// First delay before a restart; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run at least this long resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TenantState {
    /// Its instance is running.
    Running,
    /// It ended and waits to be restarted.
    Backoff,
    /// It was asked to stop and is finishing its connections.
    Draining,
    /// It ended and will not be restarted.
    Ended,
}

/// A snapshot of one tenant, as `/tenants` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantStatus {
    /// Its name.
    pub name: String,
    /// Where it is in its life.
    pub state: TenantState,
    /// Its module.
    pub module: String,
    /// How many times it was restarted.
    pub restarts: u64,
    /// Memory of its current instance, in bytes: linear memory and the host
    /// memory held for it, together (what its memory limit bounds).
    pub memory_bytes: u64,
    /// Of that, the host memory held for it: JS objects, typed arrays and
    /// the strings Go holds references to.
    pub host_memory_bytes: u64,
    /// Connections its current instance holds open.
    pub open_connections: usize,
    /// CPU time it used, over all its runs, in seconds.
    pub cpu_seconds: f64,
    /// How its last run ended, if one did.
    pub last_exit: Option<String>,
    /// Whether its last run ended well (exit code 0, or drained).
    pub last_exit_ok: Option<bool>,
    /// Every cap it runs under, by [`Cap::key`](wasabi_limits::Cap::key)
    /// (`null`: not capped).
    pub limits: BTreeMap<&'static str, Option<f64>>,
    /// What the host's HTTP server did for it, over all its runs.
    pub http: HttpStatus,
}

/// A tenant's requests served by the host's HTTP server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpStatus {
    /// Responses by status class (`"2xx"`, ...).
    pub responses: BTreeMap<&'static str, u64>,
    /// Requests whose client went away before the response ended.
    pub abandoned: u64,
    /// Request body bytes the handler read.
    pub request_bytes: u64,
    /// Response body bytes the handler wrote.
    pub response_bytes: u64,
    /// Latency histogram: cumulative counts per bound of
    /// `wasabi_gojs::LATENCY_BOUNDS`, then `+Inf`; and the sum in seconds.
    #[serde(skip)]
    pub latency_cumulative: Vec<u64>,
    #[serde(skip)]
    #[allow(missing_docs)]
    pub latency_sum_seconds: f64,
}

impl From<wasabi_gojs::RequestStatsSnapshot> for HttpStatus {
    fn from(s: wasabi_gojs::RequestStatsSnapshot) -> HttpStatus {
        const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        HttpStatus {
            responses: CLASSES.iter().copied().zip(s.by_class).collect(),
            abandoned: s.abandoned,
            request_bytes: s.request_bytes,
            response_bytes: s.response_bytes,
            latency_cumulative: s.latency_cumulative,
            latency_sum_seconds: s.latency_sum_seconds,
        }
    }
}

/// What the supervisor keeps about a tenant while it lives.
struct Record {
    spec: TenantSpec,
    state: Mutex<TenantState>,
    restarts: AtomicU64,
    cpu_nanos: Arc<AtomicU64>,
    /// The requests the host's HTTP server served for it, over all runs.
    http: Arc<wasabi_gojs::RequestStats>,
    stats: Mutex<Arc<InstanceStats>>,
    last_exit: Mutex<Option<(String, bool)>>,
    /// The drain signal of the current run.
    drain: Mutex<DrainSignal>,
    /// Set once the tenant is asked to stop: no more restarts.
    stopping: watch::Sender<bool>,
}

impl Record {
    fn set_state(&self, state: TenantState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    fn status(&self) -> TenantStatus {
        let stats = self
            .stats
            .lock()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default();
        let last = self.last_exit.lock().ok().and_then(|l| l.clone());
        TenantStatus {
            name: self.spec.name.clone(),
            state: self.state.lock().map(|s| *s).unwrap_or(TenantState::Ended),
            module: self.spec.module.display().to_string(),
            restarts: self.restarts.load(Ordering::Relaxed),
            memory_bytes: stats.memory_bytes(),
            host_memory_bytes: stats.host_memory_bytes(),
            open_connections: stats.open_connections(),
            cpu_seconds: Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed)).as_secs_f64(),
            last_exit_ok: last.as_ref().map(|(_, ok)| *ok),
            last_exit: last.map(|(text, _)| text),
            limits: Cap::ALL
                .iter()
                .map(|&cap| (cap.key(), self.spec.limits.get(cap)))
                .collect(),
            http: self.http.snapshot().into(),
        }
    }
}

struct Tenant {
    record: Arc<Record>,
    task: JoinHandle<()>,
}

/// Why a tenant could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A tenant of that name is already running.
    #[error("a tenant named `{0}` is already running")]
    Duplicate(String),
    /// Its module could not be loaded.
    #[error("tenant `{name}`: {source}")]
    Load {
        /// The tenant.
        name: String,
        /// Why.
        source: LoadError,
    },
}

/// Runs many tenants side by side on the current tokio runtime.
pub struct Supervisor {
    runtime: Arc<Runtime>,
    tenants: Mutex<BTreeMap<String, Tenant>>,
    modules: Mutex<BTreeMap<(PathBuf, PrecompiledCode), GuestModule>>,
    format: LogFormat,
    stdout: SharedWriter,
    stderr: SharedWriter,
    advice: SharedAdvice,
}

impl Supervisor {
    /// A supervisor over `runtime`, writing tenant output as text to the
    /// process's stdout and stderr.
    pub fn new(runtime: Runtime) -> Supervisor {
        Supervisor::with_output(
            runtime,
            LogFormat::Text,
            Arc::new(Mutex::new(Box::new(std::io::stdout()))),
            Arc::new(Mutex::new(Box::new(std::io::stderr()))),
        )
    }

    /// A supervisor writing tenant output in `format` to `stdout` and
    /// `stderr`.
    pub fn with_output(
        runtime: Runtime,
        format: LogFormat,
        stdout: SharedWriter,
        stderr: SharedWriter,
    ) -> Supervisor {
        Supervisor {
            runtime: Arc::new(runtime),
            tenants: Mutex::new(BTreeMap::new()),
            modules: Mutex::new(BTreeMap::new()),
            format,
            stdout,
            stderr,
            advice: Arc::new(NoAdvice),
        }
    }

    /// Words the tenants' refusals (a denied address, a broken limit) with
    /// `advice`: `wasabi serve` names the manifest's fields. Default: no
    /// advice, only what happened.
    pub fn with_advice(mut self, advice: SharedAdvice) -> Supervisor {
        self.advice = advice;
        self
    }

    /// Loads (or reuses) the module at `path`: a module several tenants run
    /// is compiled and linked once.
    fn module(&self, spec: &TenantSpec) -> Result<GuestModule, StartError> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        let key = (spec.module.clone(), spec.precompiled);
        if let Some(m) = modules.get(&key) {
            return Ok(m.clone());
        }
        let module = self
            .runtime
            .load(&spec.module, spec.precompiled)
            .map_err(|source| StartError::Load {
                name: spec.name.clone(),
                source,
            })?;
        modules.insert(key, module.clone());
        Ok(module)
    }

    /// Starts every tenant of `specs`, or none: all their modules are loaded
    /// first, and the first that fails is the error.
    pub async fn start_all(&self, specs: Vec<TenantSpec>) -> Result<(), StartError> {
        for spec in &specs {
            self.module(spec)?;
        }
        for spec in specs {
            self.start(spec).await?;
        }
        Ok(())
    }

    /// Starts a tenant. Its module is loaded first, so a bad module is an
    /// error here rather than a tenant that fails at once.
    pub async fn start(&self, spec: TenantSpec) -> Result<(), StartError> {
        let module = self.module(&spec)?;
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = tenants.get(&spec.name)
            && !existing.task.is_finished()
        {
            return Err(StartError::Duplicate(spec.name));
        }
        let (stopping, _) = watch::channel(false);
        let record = Arc::new(Record {
            spec: spec.clone(),
            state: Mutex::new(TenantState::Running),
            restarts: AtomicU64::new(0),
            cpu_nanos: Arc::default(),
            http: Arc::default(),
            stats: Mutex::default(),
            last_exit: Mutex::new(None),
            drain: Mutex::new(DrainSignal::new()),
            stopping,
        });
        let run = TenantRun {
            runtime: Arc::clone(&self.runtime),
            module,
            record: Arc::clone(&record),
            format: self.format,
            stdout: Arc::clone(&self.stdout),
            stderr: Arc::clone(&self.stderr),
            advice: Arc::clone(&self.advice),
        };
        let task = tokio::spawn(run.supervise());
        tenants.insert(spec.name, Tenant { record, task });
        Ok(())
    }

    /// Stops a tenant: it stops accepting connections, its open ones get
    /// `grace` to finish, then it ends. Returns `false` if no such tenant
    /// exists.
    pub async fn stop(&self, name: &str, grace: Duration) -> bool {
        let tenant = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        match tenant {
            Some(tenant) => {
                stop_tenant(tenant, grace).await;
                true
            }
            None => false,
        }
    }

    /// Stops every tenant, draining them all at once within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let tenants: Vec<Tenant> =
            std::mem::take(&mut *self.tenants.lock().unwrap_or_else(|e| e.into_inner()))
                .into_values()
                .collect();
        let stops: Vec<_> = tenants
            .into_iter()
            .map(|t| tokio::spawn(stop_tenant(t, grace)))
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }

    /// Brings the running set in line with `specs`: starts the new tenants,
    /// stops (gracefully) the ones no longer listed, restarts the ones whose
    /// spec changed, and leaves the rest untouched. Returns the errors of the
    /// tenants that could not start.
    pub async fn reconcile(&self, specs: Vec<TenantSpec>, grace: Duration) -> Vec<StartError> {
        let current: BTreeMap<String, TenantSpec> = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, t)| (name.clone(), t.record.spec.clone()))
            .collect();
        let wanted: BTreeMap<&str, &TenantSpec> =
            specs.iter().map(|s| (s.name.as_str(), s)).collect();
        for (name, spec) in &current {
            if wanted.get(name.as_str()).is_none_or(|w| *w != spec) {
                self.stop(name, grace).await;
            }
        }
        // A changed module file must be loaded again.
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut errors = Vec::new();
        for spec in specs {
            if current.get(&spec.name) == Some(&spec) {
                continue;
            }
            if let Err(e) = self.start(spec).await {
                errors.push(e);
            }
        }
        errors
    }

    /// A snapshot of every tenant, by name.
    pub fn status(&self) -> Vec<TenantStatus> {
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|t| t.record.status())
            .collect()
    }

    /// How a router reaches tenant `name`'s HTTP server in its current run;
    /// `None` when there is no such tenant or it is not running.
    pub fn ingress(&self, name: &str) -> Option<wasabi_gojs::IngressHandle> {
        let tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let tenant = tenants.get(name)?;
        if tenant.task.is_finished() {
            return None;
        }
        let stats = tenant.record.stats.lock().ok()?.clone();
        stats.ingress()
    }

    /// `true` when every tenant has ended for good (or there are none).
    pub fn all_ended(&self) -> bool {
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|t| t.task.is_finished())
    }
}

/// How often a draining tenant is checked.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Waits for `run`, a tenant's run that was asked to drain, to end: its
/// output when it ends by itself; otherwise why it should be stopped — the
/// `grace` period passed with connections still open, or it has had none
/// in flight (`open_connections`) for two polls in a row, which means it
/// is computing rather than serving and nothing is left to wait for.
pub async fn wait_drained<F: std::future::Future + Unpin>(
    run: &mut F,
    open_connections: impl Fn() -> usize,
    grace: Duration,
) -> Result<F::Output, String> {
    let deadline = tokio::time::Instant::now() + grace;
    let mut idle_checks = 0;
    loop {
        let check = deadline.min(tokio::time::Instant::now() + DRAIN_POLL);
        if let Ok(output) = tokio::time::timeout_at(check, &mut *run).await {
            return Ok(output);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "stopped: connections still open after the {grace:?} grace period"
            ));
        }
        idle_checks = if open_connections() == 0 {
            idle_checks + 1
        } else {
            0
        };
        if idle_checks >= 2 {
            return Err("stopped: no connection in flight".to_string());
        }
    }
}

async fn stop_tenant(tenant: Tenant, grace: Duration) {
    let Tenant { record, mut task } = tenant;
    record.stopping.send_replace(true);
    if !task.is_finished() {
        record.set_state(TenantState::Draining);
    }
    if let Ok(drain) = record.drain.lock() {
        drain.start();
    }
    let open_connections = || {
        record
            .stats
            .lock()
            .map(|s| s.open_connections())
            .unwrap_or(0)
    };
    if let Err(reason) = wait_drained(&mut task, open_connections, grace).await {
        task.abort();
        let _ = task.await;
        let mut last = record.last_exit.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some((reason, true));
        crate::release::return_freed_memory();
    }
    record.set_state(TenantState::Ended);
}

/// One tenant's supervision loop.
struct TenantRun {
    runtime: Arc<Runtime>,
    module: GuestModule,
    record: Arc<Record>,
    format: LogFormat,
    stdout: SharedWriter,
    stderr: SharedWriter,
    advice: SharedAdvice,
}

impl TenantRun {
    fn output(&self, stream: Stream) -> TenantOutput {
        let dest = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        TenantOutput::new(
            self.record.spec.name.as_str(),
            stream,
            self.format,
            Arc::clone(dest),
        )
    }

    /// Says something about the tenant, on its stderr stream.
    fn say(&self, message: &str) {
        let _ = self
            .output(Stream::Stderr)
            .line(format!("wasabi: {message}").as_bytes());
    }

    /// What one run is attached to: the tagged output streams, its drain
    /// signal, the supervisor's advice.
    fn io(&self, drain: DrainSignal) -> TenantIo {
        TenantIo {
            stdout: Box::new(self.output(Stream::Stdout)),
            stderr: Box::new(self.output(Stream::Stderr)),
            drain,
            advice: Arc::clone(&self.advice),
            http_stats: Arc::clone(&self.record.http),
        }
    }

    async fn supervise(self) {
        let spec = &self.record.spec;
        let mut stopping = self.record.stopping.subscribe();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let drain = DrainSignal::new();
            if let Ok(mut current) = self.record.drain.lock() {
                *current = drain.clone();
            }
            if *stopping.borrow() {
                return;
            }
            let stats = Arc::new(InstanceStats::with_cpu_counter(Arc::clone(
                &self.record.cpu_nanos,
            )));
            if let Ok(mut current) = self.record.stats.lock() {
                *current = Arc::clone(&stats);
            }
            self.record.set_state(TenantState::Running);
            let started = Instant::now();
            let result = self
                .runtime
                .run_observed(&self.module, spec, self.io(drain), &stats)
                .await;
            // The instance and everything it held are gone by now.
            crate::release::return_freed_memory();
            let (text, ok) = describe(&result, &*self.advice);
            self.say(&text);
            if let Ok(mut last) = self.record.last_exit.lock() {
                *last = Some((text, ok));
            }
            let again = match spec.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => !ok,
                RestartPolicy::Always => true,
            };
            if !again || *stopping.borrow() {
                self.record.set_state(TenantState::Ended);
                return;
            }
            if started.elapsed() >= STABLE_RUN {
                backoff = FIRST_BACKOFF;
            }
            self.record.set_state(TenantState::Backoff);
            self.say(&format!(
                "restarting in {backoff:?} (restart = \"{}\")",
                spec.restart
            ));
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stopping.wait_for(|s| *s) => {
                    self.record.set_state(TenantState::Ended);
                    return;
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            self.record.restarts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How a run ended, in words, and whether that counts as success.
fn describe(
    result: &Result<wasabi_gojs::Outcome, TenantError>,
    advice: &dyn wasabi_limits::Advice,
) -> (String, bool) {
    match result {
        Ok(wasabi_gojs::Outcome::Exited(0)) => ("exited with status 0".into(), true),
        Ok(wasabi_gojs::Outcome::Exited(code)) => (format!("exited with status {code}"), false),
        Ok(wasabi_gojs::Outcome::Drained) => (
            "drained: stopped accepting and finished its connections".into(),
            true,
        ),
        Err(e) => (e.advised(advice), false),
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("tenants", &self.status())
            .finish_non_exhaustive()
    }
}

/// A metric: name, type, help text, and its value for one tenant.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TenantStatus) -> f64,
);

/// Renders tenant snapshots in the Prometheus text exposition format.
pub fn prometheus_metrics(tenants: &[TenantStatus]) -> String {
    let mut out = String::new();
    let metrics: [Metric; 6] = [
        (
            "wasabi_tenant_up",
            "gauge",
            "1 while the tenant's instance runs",
            |t| f64::from(u8::from(t.state == TenantState::Running)),
        ),
        (
            "wasabi_tenant_restarts_total",
            "counter",
            "times the tenant was restarted",
            |t| t.restarts as f64,
        ),
        (
            "wasabi_tenant_memory_bytes",
            "gauge",
            "memory of the tenant's instance: linear memory and host memory held for it",
            |t| t.memory_bytes as f64,
        ),
        (
            "wasabi_tenant_host_memory_bytes",
            "gauge",
            "host memory held for the tenant's instance (JS objects, typed arrays, strings)",
            |t| t.host_memory_bytes as f64,
        ),
        (
            "wasabi_tenant_open_connections",
            "gauge",
            "connections the tenant holds open",
            |t| t.open_connections as f64,
        ),
        (
            "wasabi_tenant_cpu_seconds_total",
            "counter",
            "CPU time the tenant used",
            |t| t.cpu_seconds,
        ),
    ];
    let label = |t: &TenantStatus| t.name.replace('\\', "\\\\").replace('"', "\\\"");
    for (name, kind, help, value) in metrics {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for t in tenants {
            out.push_str(&format!("{name}{{tenant=\"{}\"}} {}\n", label(t), value(t)));
        }
    }
    let name = "wasabi_tenant_limit";
    out.push_str(&format!(
        "# HELP {name} each cap the tenant runs under, in the unit its name ends with (absent: not capped)\n# TYPE {name} gauge\n"
    ));
    for t in tenants {
        for (key, value) in &t.limits {
            if let Some(value) = value {
                out.push_str(&format!(
                    "{name}{{tenant=\"{}\",limit=\"{key}\"}} {value}\n",
                    label(t)
                ));
            }
        }
    }
    http_metrics(&mut out, tenants, &label);
    out
}

/// The host's HTTP server's figures per tenant: responses by status
/// class, a latency histogram, body bytes each way.
fn http_metrics(
    out: &mut String,
    tenants: &[TenantStatus],
    label: &dyn Fn(&TenantStatus) -> String,
) {
    let name = "wasabi_tenant_http_responses_total";
    out.push_str(&format!(
        "# HELP {name} responses the host's HTTP server sent for the tenant, by status class\n# TYPE {name} counter\n"
    ));
    for t in tenants {
        for (class, n) in &t.http.responses {
            out.push_str(&format!(
                "{name}{{tenant=\"{}\",class=\"{class}\"}} {n}\n",
                label(t)
            ));
        }
    }
    type Counter = (&'static str, &'static str, fn(&HttpStatus) -> u64);
    let counters: [Counter; 3] = [
        (
            "wasabi_tenant_http_abandoned_total",
            "requests whose client went away before the response ended",
            |h| h.abandoned,
        ),
        (
            "wasabi_tenant_http_request_bytes_total",
            "request body bytes the tenant's handlers read",
            |h| h.request_bytes,
        ),
        (
            "wasabi_tenant_http_response_bytes_total",
            "response body bytes the tenant's handlers wrote",
            |h| h.response_bytes,
        ),
    ];
    for (name, help, value) in counters {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for t in tenants {
            out.push_str(&format!(
                "{name}{{tenant=\"{}\"}} {}\n",
                label(t),
                value(&t.http)
            ));
        }
    }
    let name = "wasabi_tenant_http_request_duration_seconds";
    out.push_str(&format!(
        "# HELP {name} time from a request's arrival to the end of its response\n# TYPE {name} histogram\n"
    ));
    for t in tenants {
        let h = &t.http;
        let bounds = wasabi_gojs::LATENCY_BOUNDS
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("+Inf".to_string()));
        for (le, n) in bounds.zip(&h.latency_cumulative) {
            out.push_str(&format!(
                "{name}_bucket{{tenant=\"{}\",le=\"{le}\"}} {n}\n",
                label(t)
            ));
        }
        let count = h.latency_cumulative.last().copied().unwrap_or(0);
        out.push_str(&format!(
            "{name}_sum{{tenant=\"{}\"}} {}\n",
            label(t),
            h.latency_sum_seconds
        ));
        out.push_str(&format!(
            "{name}_count{{tenant=\"{}\"}} {count}\n",
            label(t)
        ));
    }
}

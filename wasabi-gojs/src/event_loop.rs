//! The event loop: start the program with `run`, then wait for the next
//! event (a timer, a network wait or dial completing, an HTTP request
//! progressing) and deliver it with `resume`, until the program exits.
//! Promise reactions queued by the host run first, one per turn.
//!
//! Go returns from `run`/`resume` whenever all its goroutines are blocked.
//! The host then owns the thread of control: it sleeps on tokio until the
//! earliest timer or the next network event (a goroutine blocked on a socket
//! parks only itself: Go returns here, and the socket's readiness comes back
//! as a call of the guest's notify callback), and when there is nothing left
//! that could wake the program
//! it delivers Go's "deadlock" event (id 0), on which Go prints its own
//! `all goroutines are asleep` report and exits with code 2, exactly as a
//! native Go program does.
//!
//! Calls into Go also happen *inside* imports: when Go calls a JS function
//! that is itself a Go function (`js.FuncOf`), or a host function that calls
//! back (`fs.write(..., cb)`), the host sets `_pendingEvent` and calls
//! `resume` re-entrantly, then reads the result from the event object.

use std::time::Instant;

use wasmtime::{AsContextMut, Caller, Instance, Memory, Store, TypedFunc};

use crate::GoView;
use crate::calling::{GuestExit, HostError, import_error, store};
use crate::globals::{self, Completion, is_callable, promise};
use crate::guest_memory::{Frame, GuestMemory};
use crate::heap::{Callable, Key, ObjectKind};
use crate::host::{GoHost, GuestExports, MAX_REENTRY_DEPTH};
use crate::js::Job;
use crate::strings::to_js_string;
use crate::timers::TimerAction;
use crate::value::{Ref, Value};

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It called `runtime.wasmExit` (`os.Exit`, the end of `main`, or a Go
    /// panic, which exits with 2).
    Exited(i32),
    /// The host asked it to drain ([`DrainSignal`](crate::DrainSignal)): it
    /// stopped accepting and its last connection closed.
    Drained,
}

impl Outcome {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        match self {
            Outcome::Exited(code) => *code,
            Outcome::Drained => 0,
        }
    }
}

/// Why a program could not run to its exit.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The module lacks an export every Go js/wasm module has.
    #[error("not a Go js/wasm module: missing export `{0}`")]
    MissingExport(&'static str),
    /// Arguments and environment do not fit where Go expects them.
    #[error(
        "arguments and environment take {0} bytes, more than the 8 KiB a Go js/wasm program accepts"
    )]
    ArgsTooLong(usize),
    /// The guest trapped (including errors raised by host imports).
    #[error("trap: {}", trap_reason(.0))]
    Trap(wasmtime::Error),
    /// A JS callback run by the host threw and nothing caught it.
    #[error("uncaught JavaScript exception in {what}: {thrown}")]
    Uncaught {
        /// Which callback.
        what: &'static str,
        /// The thrown value, as text.
        thrown: String,
    },
    /// Go was told it is deadlocked but did not exit.
    #[error("the program is blocked forever: every goroutine waits and no event can wake it")]
    Deadlock,
}

impl RunError {
    /// The cap of the tenant's limits the guest ran into, when that is what
    /// ended it: the edge words how to raise it.
    pub fn cap_reached(&self) -> Option<wasabi_limits::Cap> {
        use wasabi_limits::Cap;
        let RunError::Trap(e) = self else {
            return None;
        };
        if e.downcast_ref::<crate::memory::MemoryLimitExceeded>()
            .is_some()
        {
            return Some(Cap::Memory);
        }
        match &e.downcast_ref::<crate::ImportError>()?.kind {
            HostError::MemoryLimit(_) => Some(Cap::Memory),
            HostError::Timers(_) => Some(Cap::Timers),
            HostError::Table(crate::table::TableError::Full(_)) => Some(Cap::References),
            _ => None,
        }
    }

    /// The guest's wasm call stack at the trap, one frame a line, innermost
    /// first, when there is one.
    pub fn guest_backtrace(&self) -> Option<String> {
        let RunError::Trap(e) = self else {
            return None;
        };
        let text = e.downcast_ref::<wasmtime::WasmBacktrace>()?.to_string();
        // wasmtime's rendering starts with a heading line; keep the frames.
        let frames: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
        (!frames.is_empty()).then(|| frames.join("\n"))
    }
}

/// The reason for a trap: the innermost error (an [`ImportError`] names its
/// import; a wasm trap says what the guest did), without the backtrace
/// wasmtime attaches as context.
///
/// [`ImportError`]: crate::ImportError
fn trap_reason(e: &wasmtime::Error) -> String {
    e.root_cause().to_string()
}

/// Which of the three calling imports is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueCallKind {
    /// `valueCall(v, m, args)`: `v[m](...args)`.
    Method,
    /// `valueInvoke(v, args)`: `v(...args)`.
    Invoke,
    /// `valueNew(v, args)`: `new v(...args)`.
    New,
}

/// The shared body of `valueCall`, `valueInvoke` and `valueNew`.
pub(crate) async fn value_call<T: GoView>(
    caller: &mut Caller<'_, T>,
    import: &'static str,
    kind: ValueCallKind,
    sp: i32,
) -> wasmtime::Result<()> {
    let frame = Frame::new(sp);
    // Where the arguments slice and the results sit in the frame.
    let (args_at, result_at) = match kind {
        ValueCallKind::Method => (32, 56),
        ValueCallKind::Invoke | ValueCallKind::New => (16, 40),
    };
    let exports = exports_of(caller, import)?;
    let (func, this, args, entries) = {
        let (bytes, data) = exports.memory.data_and_store_mut(caller.as_context_mut());
        let host = data.go();
        host.maybe_collect();
        let mem = GuestMemory::new(bytes);
        read_call(host, &mem, frame, kind, args_at).map_err(|e| import_error(import, e))?
    };
    let completion = match func {
        Ok(func) => {
            let this = if kind == ValueCallKind::Method {
                this
            } else {
                Value::Undefined
            };
            invoke(caller, func, this, args, kind == ValueCallKind::New).await?
        }
        Err(thrown) => Err(thrown),
    };
    // Go may have run (and moved its stack) during the call.
    let moved = caller.data_mut().go().entries != entries;
    let frame = if moved {
        Frame::new(exports.getsp.call_async(&mut *caller, ()).await?)
    } else {
        frame
    };
    let (bytes, data) = exports.memory.data_and_store_mut(caller.as_context_mut());
    let host = data.go();
    let mut mem = GuestMemory::new(bytes);
    let (value, ok) = match completion {
        Ok(v) => (v, true),
        Err(e) => (e, false),
    };
    store(host, &mut mem, frame, result_at, &value)
        .and_then(|()| Ok(frame.set_bool(&mut mem, result_at + 8, ok)?))
        .map_err(|e| import_error(import, e))
}

type LoadedCall = (Result<Value, Value>, Value, Vec<Value>, u64);

/// Reads the callee, receiver and arguments of a calling import.
fn read_call(
    host: &mut GoHost,
    mem: &GuestMemory<'_>,
    frame: Frame,
    kind: ValueCallKind,
    args_at: u64,
) -> Result<LoadedCall, HostError> {
    let target = host.table.load(Ref(frame.u64(mem, 8)?))?;
    let (addr, len) = frame.span(mem, args_at)?;
    let words = mem.slice(
        addr,
        len.checked_mul(8).ok_or(crate::guest_memory::MemoryError {
            addr,
            len,
            size: mem.size(),
        })?,
    )?;
    let args = words
        .chunks_exact(8)
        .map(|w| {
            host.table
                .load(Ref(u64::from_le_bytes(w.try_into().unwrap_or_default())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let func = match kind {
        ValueCallKind::Method => {
            let name = frame.string(mem, 16)?;
            match host.js.heap.get_property(&target, Key::Name(&name)) {
                Ok(f) if globals::is_callable(&host.js.heap, &f) => Ok(f),
                Ok(_) => {
                    let what = describe(host, &target);
                    Err(host
                        .js
                        .type_error(&format!("{what}.{name} is not a function")))
                }
                Err(e) => Err(host.js.heap_error(e)),
            }
        }
        ValueCallKind::Invoke | ValueCallKind::New => Ok(target.clone()),
    };
    Ok((func, target, args, host.entries))
}

/// A short description of a value for error messages, as engines print them.
fn describe(host: &GoHost, v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Object(id) => match host.js.heap.get(*id).kind {
            ObjectKind::Function(_) => "function".into(),
            ObjectKind::Array(_) => "array".into(),
            _ => "object".into(),
        },
        other => to_js_string(&host.js.heap, other),
    }
}

fn exports_of<T: GoView>(
    ctx: &mut impl AsContextMut<Data = T>,
    import: &'static str,
) -> wasmtime::Result<GuestExports> {
    ctx.as_context_mut()
        .data_mut()
        .go()
        .exports
        .clone()
        .ok_or_else(|| import_error(import, HostError::NotStarted))
}

/// Calls `func` with `this` and `args` (as `new func(...args)` when
/// `construct`), entering Go when the
/// function is a Go function. `Ok(Err(v))` is a thrown JS value; `Err` is a
/// trap or the program's exit, which unwinds everything.
pub(crate) async fn invoke<T: GoView>(
    ctx: &mut impl AsContextMut<Data = T>,
    func: Value,
    this: Value,
    args: Vec<Value>,
    construct: bool,
) -> wasmtime::Result<Result<Value, Value>> {
    let mut store = ctx.as_context_mut();
    let host = store.data_mut().go();
    let callable = match &func {
        Value::Object(id) => match host.js.heap.get(*id).kind {
            ObjectKind::Function(c) => Some(c),
            _ => None,
        },
        _ => None,
    };
    match callable {
        None => {
            let what = describe(host, &func);
            Ok(Err(host
                .js
                .type_error(&format!("{what} is not a function"))))
        }
        Some(Callable::Host(f)) => {
            let completion = crate::dispatch::call(host, f, &this, &args, construct);
            if let Some(limit) = host.js.memory_trap.take() {
                return Err(wasmtime::Error::new(limit));
            }
            match completion {
                Completion::Return(v) => Ok(Ok(v)),
                Completion::Throw(e) => Ok(Err(e)),
                Completion::Execute {
                    executor,
                    resolvers,
                    promise,
                } => {
                    // `new Promise(executor)`: the executor runs before the
                    // constructor returns. The promise is held as a root
                    // meanwhile (the executor may be Go, which may collect).
                    host.pinned.push(promise.clone());
                    let ran =
                        Box::pin(invoke(ctx, executor, Value::Undefined, resolvers, false)).await;
                    let mut store = ctx.as_context_mut();
                    let host = store.data_mut().go();
                    host.pinned.pop();
                    if let Ok(Err(thrown)) = &ran {
                        promise::settle(&mut host.js, &promise, Err(thrown.clone()));
                    }
                    let _thrown_or_returned = ran?;
                    Ok(Ok(promise))
                }
            }
        }
        Some(Callable::Resolve { promise, reject }) => {
            let value = args.into_iter().next().unwrap_or(Value::Undefined);
            promise::call_resolver(&mut host.js, promise, reject, value);
            Ok(Ok(Value::Undefined))
        }
        Some(Callable::Go(_)) if construct => Ok(Err(host
            .js
            .type_error("a Go function is not a constructor"))),
        Some(Callable::Go(id)) => return call_go(ctx, id, this, args).await,
    }
}

/// Calls the Go function `id` (from `js.FuncOf`): posts it as the pending
/// event, resumes Go, and reads back `event.result`.
async fn call_go<T: GoView>(
    ctx: &mut impl AsContextMut<Data = T>,
    id: u32,
    this: Value,
    args: Vec<Value>,
) -> wasmtime::Result<Result<Value, Value>> {
    let (resume, event) = {
        let mut store = ctx.as_context_mut();
        let host = store.data_mut().go();
        if host.depth >= MAX_REENTRY_DEPTH {
            return Ok(Err(host.js.range_error("Maximum call stack size exceeded")));
        }
        let Some(exports) = host.exports.clone() else {
            return Err(import_error("resume", HostError::NotStarted));
        };
        let event = match make_event(host, id, this, args) {
            Ok(event) => event,
            Err(e) => return Ok(Err(host.js.heap_error(e))),
        };
        let go = Value::Object(host.js.realm.go);
        host.js
            .heap
            .set_property(&go, Key::Name("_pendingEvent"), event.clone())
            .map_err(|e| import_error("resume", e.into()))?;
        host.pinned.push(event.clone());
        host.depth += 1;
        host.entries += 1;
        (exports.resume, event)
    };
    let resumed = resume.call_async(&mut *ctx, ()).await;
    let mut store = ctx.as_context_mut();
    let host = store.data_mut().go();
    host.depth -= 1;
    host.pinned.pop();
    resumed?;
    let result = host
        .js
        .heap
        .get_property(&event, Key::Name("result"))
        .unwrap_or(Value::Undefined);
    Ok(Ok(result))
}

fn make_event(
    host: &mut GoHost,
    id: u32,
    this: Value,
    args: Vec<Value>,
) -> Result<Value, crate::heap::HeapError> {
    let args = host.js.new_array(args)?;
    let event = host.js.new_object()?;
    host.js
        .heap
        .define(event, "id", Value::Number(f64::from(id)));
    host.js.heap.define(event, "this", this);
    host.js.heap.define(event, "args", Value::Object(args));
    Ok(Value::Object(event))
}

/// Where `run` expects `argv`: Go's linker keeps 4096..12288 free for it.
const ARGV_START: usize = 4096;
const ARGV_END: usize = 4096 + 8192;

/// Lays out argv and envp the way `wasm_exec.js` does: NUL-terminated
/// strings, each 8-byte aligned, then the pointer arrays. Returns (argc, argv).
fn write_args(host: &GoHost, mem: &mut GuestMemory<'_>) -> Result<(i32, i32), RunError> {
    let mut env: Vec<&(String, String)> = host.env.iter().collect();
    env.sort();
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let too_long = |at: usize| RunError::ArgsTooLong(at - ARGV_START);
    let mut offset = ARGV_START;
    // Writes one NUL-terminated string at `offset`, 8-byte aligned after it.
    let mut put_string = |mem: &mut GuestMemory<'_>, s: &str| -> Result<u64, RunError> {
        let at = offset;
        let end = at + s.len() + 1;
        if end >= ARGV_END {
            return Err(too_long(end));
        }
        mem.write(at as u64, s.as_bytes())
            .and_then(|()| mem.write_u8((end - 1) as u64, 0))
            .map_err(|_| too_long(end))?;
        offset = end.next_multiple_of(8);
        Ok(at as u64)
    };
    // argv pointers, a NULL, envp pointers, a NULL.
    let mut pointers = Vec::with_capacity(host.args.len() + env.len() + 2);
    for s in &host.args {
        pointers.push(put_string(mem, s)?);
    }
    pointers.push(0);
    for s in &env {
        pointers.push(put_string(mem, s)?);
    }
    pointers.push(0);
    let argv = offset;
    let end = argv + 8 * pointers.len();
    if end >= ARGV_END {
        return Err(too_long(end));
    }
    for (i, p) in pointers.into_iter().enumerate() {
        mem.write_u64((argv + 8 * i) as u64, p)
            .map_err(|_| too_long(end))?;
    }
    Ok((host.args.len() as i32, argv as i32))
}

/// Runs a Go js/wasm instance to its end: calls `run`, then delivers timers
/// and callbacks through `resume` until the program exits.
///
/// Traps, including host errors raised for bad guest input, come back as
/// [`RunError::Trap`]; the program's own exit (also by panic, code 2) is
/// [`Outcome::Exited`].
pub async fn run<T: GoView>(
    store: &mut Store<T>,
    instance: &Instance,
) -> Result<Outcome, RunError> {
    let (memory, run, resume) = attach(store, instance)?;
    let (argc, argv) = {
        let (bytes, data) = memory.data_and_store_mut(&mut *store);
        write_args(data.go(), &mut GuestMemory::new(bytes))?
    };
    let mut result = run.call_async(&mut *store, (argc, argv)).await;
    let mut told_deadlock = false;
    loop {
        if let Some(outcome) = settle(store, result)? {
            return Ok(outcome);
        }
        result = loop {
            let turn = match next_turn(store.data_mut().go(), &mut told_deadlock).await? {
                Turn::Done(outcome) => return Ok(outcome),
                Turn::Again => continue,
                Turn::Run(turn) => turn,
            };
            if let Some(result) = take_turn(store, &resume, turn).await? {
                break result;
            }
        };
    }
}

/// The exports the host calls: memory, `run` and `resume`.
type Attached = (Memory, TypedFunc<(i32, i32), ()>, TypedFunc<(), ()>);

/// Finds the exports the host calls, and keeps them in the host.
fn attach<T: GoView>(store: &mut Store<T>, instance: &Instance) -> Result<Attached, RunError> {
    let memory = instance
        .get_memory(&mut *store, "mem")
        .ok_or(RunError::MissingExport("mem"))?;
    let run = instance
        .get_typed_func::<(i32, i32), ()>(&mut *store, "run")
        .map_err(|_| RunError::MissingExport("run"))?;
    let resume = instance
        .get_typed_func::<(), ()>(&mut *store, "resume")
        .map_err(|_| RunError::MissingExport("resume"))?;
    let getsp = instance
        .get_typed_func::<(), i32>(&mut *store, "getsp")
        .map_err(|_| RunError::MissingExport("getsp"))?;
    store.data_mut().go().exports = Some(GuestExports {
        memory,
        resume: resume.clone(),
        getsp,
    });
    Ok((memory, run, resume))
}

/// What the event loop does next.
enum Turn {
    /// The program is over.
    Done(Outcome),
    /// Nothing to run yet: look again.
    Again,
    /// Run something in Go.
    Run(Work),
}

/// Something to run in Go.
enum Work {
    /// A promise reaction (a JS job) whose handler is a function.
    Job(Job),
    /// Tell Go every goroutine is asleep (the pending event is posted).
    Deadlock,
    /// What woke the loop.
    Wake(Wake),
}

/// Decides the next turn, waiting for an event when nothing is ready.
/// Promise reactions run first, each in its own turn, as JS jobs do.
async fn next_turn(host: &mut GoHost, told_deadlock: &mut bool) -> Result<Turn, RunError> {
    // Whatever runs next is a new turn for the sockets' fairness budget.
    host.network.sockets.begin_turn();
    while let Some(job) = host.js.jobs.pop_front() {
        if is_callable(&host.js.heap, &job.handler) {
            return Ok(Turn::Run(Work::Job(job)));
        }
        // Passing an outcome along a chain calls nothing.
        promise::finish(&mut host.js, job, Ok(Value::Undefined));
    }
    if host.drain.draining() {
        // Stop accepting; end once the last connection has closed.
        host.network.sockets.stop_listening();
        host.network.ingress.stop();
        if host.network.sockets.open_connections() == 0
            && host.network.ingress.connections() == 0
            && host.network.ingress.active_requests() == 0
        {
            return Ok(Turn::Done(Outcome::Drained));
        }
    }
    let deadline = host.timers.next_deadline();
    let completed = !host.js.completions.is_empty();
    let waiting = host.network.waiting() || host.requests.http.has_pending() || completed;
    if deadline.is_none() && !waiting && !host.drain.draining() {
        if *told_deadlock {
            return Err(RunError::Deadlock);
        }
        *told_deadlock = true;
        post_deadlock(host)?;
        return Ok(Turn::Run(Work::Deadlock));
    }
    Ok(match wait(host, deadline, completed).await {
        Some(wake) => Turn::Run(Work::Wake(wake)),
        None => Turn::Again,
    })
}

/// Posts event id 0, which tells Go it is deadlocked; it reports and exits.
fn post_deadlock(host: &mut GoHost) -> Result<(), RunError> {
    let go = Value::Object(host.js.realm.go);
    let event = host.js.new_object().map_err(|e| RunError::Trap(e.into()))?;
    host.js.heap.define(event, "id", Value::Number(0.0));
    let _ = host
        .js
        .heap
        .set_property(&go, Key::Name("_pendingEvent"), Value::Object(event));
    Ok(())
}

/// Waits for the next event: a due timer, a socket or request event, a
/// drain request (`None`: look again), or a completed fs call.
async fn wait(host: &mut GoHost, deadline: Option<Instant>, completed: bool) -> Option<Wake> {
    // A due timer goes first, so network traffic cannot starve timers.
    if deadline.is_some_and(|at| at <= Instant::now()) {
        return Some(Wake::Timer);
    }
    let timer = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    let GoHost {
        network,
        requests,
        drain,
        ..
    } = host;
    let draining = drain.draining();
    // In this order: a completed fs call is always ready, so it goes last,
    // and a goroutine looping on file calls cannot starve timers, sockets
    // or requests (nor, since it waits for each callback, the other
    // goroutines).
    tokio::select! {
        biased;
        () = timer => Some(Wake::Timer),
        () = network.doorbell.rung() => Some(Wake::Doorbell),
        event = requests.http.next_event() => Some(Wake::Fetch(event)),
        // Draining: look again when a connection of the host's server goes.
        () = network.ingress.settled(), if draining => None,
        () = drain.requested(), if !draining => None,
        () = std::future::ready(()), if completed => Some(Wake::Completion),
    }
}

/// Runs `work` in Go; `None` when it turned out to need no call into Go.
async fn take_turn<T: GoView>(
    store: &mut Store<T>,
    resume: &TypedFunc<(), ()>,
    work: Work,
) -> Result<Option<wasmtime::Result<()>>, RunError> {
    let wake = match work {
        Work::Job(mut job) => {
            let handler = std::mem::replace(&mut job.handler, Value::Undefined);
            let args = std::mem::take(&mut job.args);
            // The job's values stay rooted while Go runs the handler.
            let host = store.data_mut().go();
            let pins = host.pinned.len();
            host.pinned.extend(job.values().cloned());
            let ran = invoke(store, handler, Value::Undefined, args, false).await;
            let host = store.data_mut().go();
            host.pinned.truncate(pins);
            return Ok(Some(ran.map(|ran| promise::finish(&mut host.js, job, ran))));
        }
        Work::Deadlock => return Ok(Some(resume.call_async(&mut *store, ()).await)),
        Work::Wake(wake) => wake,
    };
    let host = store.data_mut().go();
    Ok(Some(match wake {
        Wake::Timer => {
            let Some((_, action)) = host.timers.pop_due(Instant::now()) else {
                return Ok(None);
            };
            match action {
                TimerAction::Resume => {
                    host.entries += 1;
                    resume.call_async(&mut *store, ()).await
                }
                TimerAction::Call { func, args } => {
                    call_back(store, func, args, "a timer callback").await?
                }
            }
        }
        Wake::Completion => {
            let Some((func, args)) = host.js.completions.pop_front() else {
                return Ok(None);
            };
            call_back(store, func, args, "an fs callback").await?
        }
        Wake::Fetch(event) => {
            // Settling queues the reactions; the next turn runs them.
            crate::globals::fetch::deliver(&mut host.fetch_host(), event);
            return Ok(None);
        }
        Wake::Doorbell => {
            let Some(wake) = host.network.wake.clone() else {
                // Nobody to tell: the tokens mean nothing to this guest.
                host.network.doorbell.clear();
                return Ok(None);
            };
            tracing::trace!("waking the guest for its tokens");
            host.network.polled = false;
            let result = call_back(store, wake, Vec::new(), "the wake callback").await?;
            let host = store.data_mut().go();
            if !host.network.polled {
                // A guest that is woken but never asks what for would have
                // its loop spin on the same tokens: they are dropped.
                host.network.doorbell.clear();
            }
            result
        }
    }))
}

/// What woke the event loop.
enum Wake {
    /// The earliest timer is due.
    Timer,
    /// An HTTP request progressed.
    Fetch(wasabi_net::FetchEvent),
    /// An `fs` call completed; its callback is queued.
    Completion,
    /// The doorbell rang: the companion's imports (sockets, the host's
    /// HTTP server) have tokens for the guest.
    Doorbell,
}

/// Calls a JS callback from the event loop. A value it throws that nothing
/// catches ends the program, as an uncaught exception ends a Node.js process.
async fn call_back<T: GoView>(
    store: &mut Store<T>,
    func: Value,
    args: Vec<Value>,
    what: &'static str,
) -> Result<wasmtime::Result<()>, RunError> {
    match invoke(store, func, Value::Undefined, args, false).await {
        Ok(Ok(_)) => Ok(Ok(())),
        Ok(Err(thrown)) => {
            let host = store.data_mut().go();
            Err(RunError::Uncaught {
                what,
                thrown: to_js_string(&host.js.heap, &thrown),
            })
        }
        Err(e) => Ok(Err(e)),
    }
}

/// Turns the result of a call into Go into the program's outcome, if the
/// program is over.
fn settle<T: GoView>(
    store: &mut Store<T>,
    result: wasmtime::Result<()>,
) -> Result<Option<Outcome>, RunError> {
    let host = store.data_mut().go();
    host.flush();
    match result {
        Err(e) => match e.downcast_ref::<GuestExit>() {
            Some(GuestExit(code)) => Ok(Some(Outcome::Exited(*code))),
            None => Err(RunError::Trap(e)),
        },
        Ok(()) => Ok(host.exit_code.map(Outcome::Exited)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHostBuilder;

    #[test]
    fn argv_and_envp_are_laid_out_like_wasm_exec() {
        let host = GoHostBuilder::new()
            .args(["prog", "a"])
            .env("B", "2")
            .env("A", "1")
            .build()
            .unwrap();
        let mut buf = vec![0u8; 16384];
        let mut mem = GuestMemory::new(&mut buf);
        let (argc, argv) = write_args(&host, &mut mem).unwrap();
        assert_eq!(argc, 2);
        let read_ptr = |i: usize| mem.read_u64(argv as u64 + 8 * i as u64).unwrap();
        let read_str = |p: u64| {
            let bytes = mem.slice(p, 64).unwrap();
            let end = bytes.iter().position(|b| *b == 0).unwrap();
            String::from_utf8(bytes[..end].to_vec()).unwrap()
        };
        assert_eq!(read_str(read_ptr(0)), "prog");
        assert_eq!(read_str(read_ptr(1)), "a");
        assert_eq!(read_ptr(2), 0);
        // The environment is sorted by key.
        assert_eq!(read_str(read_ptr(3)), "A=1");
        assert_eq!(read_str(read_ptr(4)), "B=2");
        assert_eq!(read_ptr(5), 0);
    }

    #[test]
    fn oversized_arguments_are_refused() {
        let host = GoHostBuilder::new().arg("x".repeat(9000)).build().unwrap();
        let mut buf = vec![0u8; 65536];
        let err = write_args(&host, &mut GuestMemory::new(&mut buf)).unwrap_err();
        assert!(matches!(err, RunError::ArgsTooLong(_)));
    }
}

//! [`Js`]: the part of a Go instance's host that every global uses — the
//! object heap, the realm's well-known objects, the queues of callbacks
//! waiting for a turn, the clock — and how errors are made in it. Each
//! global keeps its own state apart (files, sockets, requests, output) and
//! is handed only this and its own part, the way wasmtime-wasi keeps a
//! guest's sockets, clocks and random apart.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasabi_limits::{Cap, SharedAdvice};
use wasabi_net::NetError;

use crate::heap::{Heap, HeapError, Object, ObjectKind};
use crate::memory::MemoryLimitExceeded;
use crate::realm::Realm;
use crate::timezone::TimeZone;
use crate::value::{ObjectId, Value};

/// A callback and its arguments, waiting for its turn of the event loop.
pub(crate) type Queued = (Value, Vec<Value>);

/// A promise reaction waiting to run (a JS job): `handler` is called with
/// `args` if it is callable, then `derived` settles as [`Settles`] says.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) handler: Value,
    pub(crate) args: Vec<Value>,
    /// The promise `then` returned.
    pub(crate) derived: Value,
    pub(crate) settles: Settles,
}

impl Job {
    /// The values it holds (roots for the collector while it waits or runs).
    pub(crate) fn values(&self) -> impl Iterator<Item = &Value> {
        let outcome = match &self.settles {
            Settles::WithOutcome(Ok(v) | Err(v)) => Some(v),
            Settles::WithResult => None,
        };
        [&self.handler, &self.derived]
            .into_iter()
            .chain(&self.args)
            .chain(outcome)
    }
}

/// How a job settles its derived promise once its handler has run (a
/// handler that throws always rejects it).
#[derive(Debug, Clone)]
pub(crate) enum Settles {
    /// With what the handler returned (`undefined` if there is none).
    WithResult,
    /// As the original promise did: a `finally`, or a `then` without a
    /// handler for this outcome, passes it on.
    WithOutcome(Result<Value, Value>),
}

/// The instance's clocks and time zone.
#[derive(Debug)]
pub(crate) struct Clock {
    /// When the instance started, on the monotonic clock.
    pub(crate) origin: Instant,
    /// The same moment, in nanoseconds since the Unix epoch.
    pub(crate) origin_unix_ns: u128,
    /// The guest's local time zone (its `TZ`, or UTC).
    pub(crate) timezone: TimeZone,
}

impl Clock {
    /// Starts now, in `timezone`.
    pub(crate) fn start(timezone: TimeZone) -> Clock {
        Clock {
            origin: Instant::now(),
            origin_unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            timezone,
        }
    }

    /// Nanoseconds on the monotonic clock, counted from the Unix epoch at
    /// start (like `performance.timeOrigin + performance.now()`).
    pub(crate) fn nanotime(&self) -> i64 {
        let ns = self.origin_unix_ns + self.origin.elapsed().as_nanos();
        i64::try_from(ns).unwrap_or(i64::MAX)
    }

    /// Milliseconds since the Unix epoch on the wall clock.
    pub(crate) fn now_ms(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as f64)
            .unwrap_or(0.0)
    }
}

/// What every global of one instance works in.
pub(crate) struct Js {
    pub(crate) heap: Heap,
    pub(crate) realm: Realm,
    /// Promise reactions to run once the current call into Go returns.
    pub(crate) jobs: VecDeque<Job>,
    /// Completions of `fs` calls to call back, in order, each in its own
    /// turn of the event loop after due timers and ready network events, as
    /// Node.js delivers I/O callbacks.
    pub(crate) completions: VecDeque<Queued>,
    /// Set when a host allocation broke the tenant's memory limit; the call
    /// into the host that did it traps with it.
    pub(crate) memory_trap: Option<MemoryLimitExceeded>,
    /// How the guest's errors tell its owner to change what was refused.
    pub(crate) advice: SharedAdvice,
    pub(crate) clock: Clock,
}

impl Js {
    /// Every value waiting in a queue (roots for the collector).
    pub(crate) fn queued(&self) -> impl Iterator<Item = &Value> {
        self.completions
            .iter()
            .flat_map(|(f, args)| std::iter::once(f).chain(args))
            .chain(self.jobs.iter().flat_map(Job::values))
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

    /// The text of a network error as the guest sees it: what happened,
    /// then the tenant owner's advice.
    pub(crate) fn network_message(&self, error: &NetError) -> String {
        error.advised(&*self.advice)
    }
}

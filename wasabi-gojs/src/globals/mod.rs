//! The globals of the JS world, one file per global or family, each owning
//! its operations and its bindings:
//!
//! | global | file |
//! |---|---|
//! | `Object`, `Function` | [`object`] |
//! | `Array` | [`array`] |
//! | `Uint8Array` | [`bytes`] |
//! | `Error`, `TypeError`, `RangeError` | [`errors`] |
//! | `Date` | [`date`] |
//! | `console` | [`console`] |
//! | `crypto` | [`crypto`] |
//! | `performance` | [`performance`] |
//! | `setTimeout`, `clearTimeout` | [`timers`] |
//! | `process` | [`process`] |
//! | `path` | [`path`] |
//! | `fs` (and `fs.Stats`) | [`fs`] |
//! | `fetch`, `Headers`, `AbortController`, `Response` | [`fetch`] |
//! | `Promise` | [`promise`] |
//! | `wasabi` (and `wasabi.net`, the sockets) | [`net`] |
//! | the Go object (`_makeFuncWrapper`) | [`go`] |
//!
//! What lives here is exactly what `syscall/js`, `syscall`, `os`, `time`,
//! `net/http` and `crypto/rand` touch, plus the everyday globals a Go
//! program that uses `syscall/js` expects. Anything else is `undefined`,
//! and calling it throws a `TypeError` the guest sees as a `js.Error`
//! panic, as in a browser.
//!
//! A function object holds its host function by number
//! ([`HostFn`](crate::heap::HostFn)); [`install`] numbers them as it binds
//! them and returns what each number stands for, a [`Native`]. Here is only
//! dispatch: [`call`] finds the global a number belongs to and hands it the
//! call. A native returns a [`Completion`]: a value or a thrown value. A
//! native that calls back into Go (`fs.write(..., cb)` ends with `cb(null,
//! n)`) queues the callback for the event loop instead of calling it, so no
//! borrow is held across a call into Go.

pub(crate) mod array;
pub(crate) mod bytes;
pub(crate) mod console;
pub(crate) mod crypto;
pub(crate) mod date;
pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod fs;
pub(crate) mod go;
pub(crate) mod net;
pub(crate) mod object;
pub(crate) mod path;
pub(crate) mod performance;
pub(crate) mod process;
pub(crate) mod promise;
pub(crate) mod timers;

use crate::heap::{Callable, Heap, HeapError, HostFn, Object, ObjectKind};
use crate::realm::Realm;
use crate::value::{ObjectId, Value};

/// Every host function of the JS world, by the global that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Native {
    Object(object::Op),
    Array(array::Op),
    Bytes(bytes::Op),
    Error(errors::Op),
    Date(date::Op),
    Console(console::Op),
    Crypto(crypto::Op),
    Performance(performance::Op),
    Timers(timers::Op),
    Process(process::Op),
    Path(path::Op),
    Fs(fs::FsOp),
    /// `fs.Stats.prototype.isDirectory` and its kin: the file type bits.
    StatsIs(u32),
    Net(net::NetOp),
    Fetch(fetch::FetchOp),
    Promise(promise::Op),
    Go(go::Op),
}

/// How a call ended.
#[derive(Debug, Clone)]
pub enum Completion {
    /// Returned a value.
    Return(Value),
    /// Threw a value.
    Throw(Value),
    /// Calls `executor` with `resolvers` now, then returns `promise` (an
    /// executor that throws rejects it): what `new Promise(executor)` does.
    /// The caller runs it, since the executor may be Go code, which a host
    /// function cannot call.
    Execute {
        /// The function `new Promise` was given.
        executor: Value,
        /// Its `resolve` and `reject`.
        resolvers: Vec<Value>,
        /// The new promise.
        promise: Value,
    },
}

/// A native's completion, or the value it throws.
pub(crate) type NativeResult = Result<Completion, Value>;

/// Returns `v`.
pub(crate) fn ret(v: impl Into<Value>) -> NativeResult {
    Ok(Completion::Return(v.into()))
}

/// Argument `i`, or `undefined` past the end (as JS passes missing ones).
pub(crate) fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Undefined)
}

/// `true` when `v` can be called.
pub(crate) fn is_callable(heap: &Heap, v: &Value) -> bool {
    matches!(v, Value::Object(id) if matches!(heap.get(*id).kind, ObjectKind::Function(_)))
}

/// Binds globals in a new realm, numbering the host functions it binds.
pub(crate) struct Binder<'h> {
    pub(crate) heap: &'h mut Heap,
    /// `Object.prototype`.
    pub(crate) object_proto: ObjectId,
    /// `Function.prototype`.
    pub(crate) function_proto: ObjectId,
    /// `globalThis`.
    pub(crate) global: ObjectId,
    /// What each [`HostFn`] number stands for, in the order bound.
    natives: Vec<Native>,
}

impl Binder<'_> {
    /// An object with prototype `proto`.
    pub(crate) fn object(&mut self, proto: Option<ObjectId>) -> Result<ObjectId, HeapError> {
        self.heap.alloc(Object::new(ObjectKind::Ordinary, proto))
    }

    /// A plain object (prototype `Object.prototype`).
    pub(crate) fn plain(&mut self) -> Result<ObjectId, HeapError> {
        self.object(Some(self.object_proto))
    }

    /// A function object for `native`, numbered.
    pub(crate) fn function(&mut self, native: Native) -> Result<ObjectId, HeapError> {
        let number = u32::try_from(self.natives.len()).unwrap_or(u32::MAX);
        self.natives.push(native);
        self.heap.alloc(Object::new(
            ObjectKind::Function(Callable::Host(HostFn(number))),
            Some(self.function_proto),
        ))
    }

    /// Binds `native` as method `name` of `on`.
    pub(crate) fn method(
        &mut self,
        on: ObjectId,
        name: &str,
        native: Native,
    ) -> Result<(), HeapError> {
        let f = self.function(native)?;
        self.heap.define(on, name, Value::Object(f));
        Ok(())
    }

    /// A constructor function with its prototype object, bound on `global`
    /// as `name`.
    pub(crate) fn class(
        &mut self,
        global: ObjectId,
        name: &str,
        native: Native,
        proto: ObjectId,
    ) -> Result<ObjectId, HeapError> {
        let ctor = self.function(native)?;
        self.heap.define(ctor, "prototype", Value::Object(proto));
        self.heap.define(proto, "constructor", Value::Object(ctor));
        self.heap.define(global, name, Value::Object(ctor));
        Ok(ctor)
    }
}

/// Builds the realm in `heap`: every global bound, in the order a JS
/// engine would lay them out. Returns the realm's well-known objects and
/// what each host function number stands for.
pub(crate) fn install(heap: &mut Heap) -> Result<(Realm, Vec<Native>), HeapError> {
    let object_proto = heap.alloc(Object::new(ObjectKind::Ordinary, None))?;
    let function_proto = heap.alloc(Object::new(ObjectKind::Ordinary, Some(object_proto)))?;
    let global = heap.alloc(Object::new(ObjectKind::Ordinary, Some(object_proto)))?;
    heap.define(global, "globalThis", Value::Object(global));
    let mut b = Binder {
        heap,
        object_proto,
        function_proto,
        global,
        natives: Vec::new(),
    };
    object::install(&mut b)?;
    let array_proto = array::install(&mut b)?;
    let bytes_proto = bytes::install(&mut b)?;
    let errors = errors::install(&mut b)?;
    let date_proto = date::install(&mut b)?;
    console::install(&mut b)?;
    crypto::install(&mut b)?;
    performance::install(&mut b)?;
    timers::install(&mut b)?;
    process::install(&mut b)?;
    path::install(&mut b)?;
    let stats_proto = fs::install(&mut b)?;
    let promise_proto = promise::install(&mut b)?;
    let fetch = fetch::install(&mut b)?;
    net::install(&mut b)?;
    let go = go::install(&mut b)?;
    let realm = Realm {
        global,
        go,
        object_proto,
        function_proto,
        array_proto,
        bytes_proto,
        error_proto: errors.error,
        type_error_proto: errors.type_error,
        range_error_proto: errors.range_error,
        date_proto,
        stats_proto,
        promise_proto,
        response_proto: fetch.response,
        headers_proto: fetch.headers,
        iterator_proto: fetch.iterator,
        stream_proto: fetch.stream,
        reader_proto: fetch.reader,
        abort_proto: fetch.abort,
    };
    Ok((realm, b.natives))
}

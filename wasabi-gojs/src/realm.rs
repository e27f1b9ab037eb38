//! The realm: the global object and the built-ins the Go standard library
//! reaches for under js/wasm, laid out as a JS engine lays them out
//! (constructors with `prototype` objects, methods on prototypes).
//!
//! What lives here is exactly what `syscall/js`, `syscall`, `os`, `time` and
//! `crypto/rand` touch, plus the everyday globals a Go program that uses
//! `syscall/js` expects (`console`, `setTimeout`, `Date.now`). Anything else
//! is `undefined`, and calling it throws a `TypeError` the guest sees as a
//! `js.Error` panic, as in a browser.
//!
//! One global is Wasabi's own: `wasabi` (`version`, and `net`, the socket
//! interface of [`crate::net`]) — how the Go companion module finds the host.

use crate::fetch::FetchOp;
use crate::fs::FsOp;
use crate::heap::{Callable, Heap, HeapError, HostFn, Object, ObjectKind};
use crate::natives::Native;
use crate::net::NetOp;
use crate::value::{ObjectId, Value};

/// The well-known objects of one instance's JS world.
#[derive(Debug, Clone, Copy)]
pub struct Realm {
    /// `globalThis` (Go's predefined value 5).
    pub global: ObjectId,
    /// The Go object (`this` of `wasm_exec.js`'s `Go` class; predefined value 6).
    pub go: ObjectId,
    /// `Object.prototype`.
    pub object_proto: ObjectId,
    /// `Function.prototype`.
    pub function_proto: ObjectId,
    /// `Array.prototype`.
    pub array_proto: ObjectId,
    /// `Uint8Array.prototype`.
    pub bytes_proto: ObjectId,
    /// `Error.prototype`.
    pub error_proto: ObjectId,
    /// `TypeError.prototype`.
    pub type_error_proto: ObjectId,
    /// `RangeError.prototype`.
    pub range_error_proto: ObjectId,
    /// `Date.prototype`.
    pub date_proto: ObjectId,
    /// The prototype of the `fs.Stats` objects `fs.stat` makes.
    pub stats_proto: ObjectId,
    /// `Promise.prototype` (`then`).
    pub promise_proto: ObjectId,
    /// `Headers.prototype`.
    pub headers_proto: ObjectId,
    /// The prototype of iterators (`next`).
    pub iterator_proto: ObjectId,
    /// The prototype of response body streams (`getReader`, `cancel`).
    pub stream_proto: ObjectId,
    /// The prototype of body readers (`read`, `cancel`, `releaseLock`).
    pub reader_proto: ObjectId,
    /// `AbortController.prototype` (`abort`).
    pub abort_proto: ObjectId,
}

struct Builder<'h> {
    heap: &'h mut Heap,
    function_proto: ObjectId,
    /// What each [`HostFn`] number stands for, in the order bound.
    natives: Vec<Native>,
}

impl Builder<'_> {
    fn object(&mut self, proto: Option<ObjectId>) -> Result<ObjectId, HeapError> {
        self.heap.alloc(Object::new(ObjectKind::Ordinary, proto))
    }

    fn function(&mut self, native: Native) -> Result<ObjectId, HeapError> {
        let number = u32::try_from(self.natives.len()).unwrap_or(u32::MAX);
        self.natives.push(native);
        self.heap.alloc(Object::new(
            ObjectKind::Function(Callable::Host(HostFn(number))),
            Some(self.function_proto),
        ))
    }

    fn method(&mut self, on: ObjectId, name: &str, native: Native) -> Result<(), HeapError> {
        let f = self.function(native)?;
        self.heap.define(on, name, Value::Object(f));
        Ok(())
    }

    /// A constructor function with its prototype object, bound on `global`.
    fn class(
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

impl Realm {
    /// Builds the realm in `heap`. The functions it binds are numbered
    /// ([`HostFn`]); the list says what each number stands for.
    pub fn new(heap: &mut Heap) -> Result<(Realm, Vec<Native>), HeapError> {
        let object_proto = heap.alloc(Object::new(ObjectKind::Ordinary, None))?;
        let function_proto = heap.alloc(Object::new(ObjectKind::Ordinary, Some(object_proto)))?;
        let mut b = Builder {
            heap,
            function_proto,
            natives: Vec::new(),
        };
        let global = b.object(Some(object_proto))?;
        b.heap.define(global, "globalThis", Value::Object(global));

        b.method(object_proto, "toString", Native::ObjectToString)?;
        b.method(object_proto, "hasOwnProperty", Native::ObjectHasOwnProperty)?;
        let object_ctor = b.class(global, "Object", Native::ObjectCtor, object_proto)?;
        b.method(object_ctor, "keys", Native::ObjectKeys)?;
        b.class(global, "Function", Native::FunctionCtor, function_proto)?;

        let array_proto = b.object(Some(object_proto))?;
        b.method(array_proto, "push", Native::ArrayPush)?;
        b.method(array_proto, "join", Native::ArrayJoin)?;
        let array_ctor = b.class(global, "Array", Native::ArrayCtor, array_proto)?;
        b.method(array_ctor, "isArray", Native::ArrayIsArray)?;

        let bytes_proto = b.object(Some(object_proto))?;
        b.method(bytes_proto, "set", Native::BytesSet)?;
        b.class(global, "Uint8Array", Native::BytesCtor, bytes_proto)?;

        let error_proto = b.object(Some(object_proto))?;
        b.heap.define(error_proto, "name", "Error".into());
        b.heap.define(error_proto, "message", "".into());
        b.method(error_proto, "toString", Native::ErrorToString)?;
        b.class(global, "Error", Native::ErrorCtor, error_proto)?;
        let type_error_proto = b.object(Some(error_proto))?;
        b.heap.define(type_error_proto, "name", "TypeError".into());
        b.class(global, "TypeError", Native::TypeErrorCtor, type_error_proto)?;
        let range_error_proto = b.object(Some(error_proto))?;
        b.heap
            .define(range_error_proto, "name", "RangeError".into());
        b.class(
            global,
            "RangeError",
            Native::RangeErrorCtor,
            range_error_proto,
        )?;

        let date_proto = b.object(Some(object_proto))?;
        b.method(date_proto, "getTime", Native::DateGetTime)?;
        b.method(date_proto, "valueOf", Native::DateGetTime)?;
        b.method(
            date_proto,
            "getTimezoneOffset",
            Native::DateGetTimezoneOffset,
        )?;
        b.method(date_proto, "toISOString", Native::DateToIsoString)?;
        let date_ctor = b.class(global, "Date", Native::DateCtor, date_proto)?;
        b.method(date_ctor, "now", Native::DateNow)?;

        let console = b.object(Some(object_proto))?;
        b.method(console, "log", Native::ConsoleLog)?;
        b.method(console, "info", Native::ConsoleLog)?;
        b.method(console, "error", Native::ConsoleError)?;
        b.method(console, "warn", Native::ConsoleError)?;
        b.heap.define(global, "console", Value::Object(console));

        let crypto = b.object(Some(object_proto))?;
        b.method(crypto, "getRandomValues", Native::GetRandomValues)?;
        b.heap.define(global, "crypto", Value::Object(crypto));

        let performance = b.object(Some(object_proto))?;
        b.method(performance, "now", Native::PerformanceNow)?;
        b.heap
            .define(global, "performance", Value::Object(performance));

        b.method(global, "setTimeout", Native::SetTimeout)?;
        b.method(global, "clearTimeout", Native::ClearTimeout)?;

        let process = b.object(Some(object_proto))?;
        b.heap.define(process, "pid", Value::Number(1.0));
        b.heap.define(process, "ppid", Value::Number(0.0));
        b.heap.define(process, "title", "wasabi".into());
        b.heap.define(process, "platform", "wasabi".into());
        // Fixed ids (wasabi_fs::stat::guest_uid/gid), which also own the
        // guest's files: the host's real ids do not show through.
        for (name, native) in [
            ("getuid", Native::ProcessUid),
            ("geteuid", Native::ProcessUid),
            ("getgid", Native::ProcessGid),
            ("getegid", Native::ProcessGid),
        ] {
            b.method(process, name, native)?;
        }
        b.method(process, "getgroups", Native::ProcessGetgroups)?;
        b.method(process, "umask", Native::ProcessUmask)?;
        b.method(process, "cwd", Native::ProcessCwd)?;
        b.method(process, "chdir", Native::ProcessChdir)?;
        b.heap.define(global, "process", Value::Object(process));

        let path = b.object(Some(object_proto))?;
        b.method(path, "resolve", Native::PathResolve)?;
        b.heap.define(global, "path", Value::Object(path));

        let fs = b.object(Some(object_proto))?;
        let constants = b.object(Some(object_proto))?;
        for (name, v) in wasabi_fs::flags::ALL {
            b.heap.define(constants, name, Value::Number(f64::from(v)));
        }
        b.heap.define(fs, "constants", Value::Object(constants));
        for (name, op) in FsOp::ALL {
            b.method(fs, name, Native::Fs(op))?;
        }
        let stats_proto = b.object(Some(object_proto))?;
        for (name, mask) in [
            ("isDirectory", 0o040_000),
            ("isFile", 0o100_000),
            ("isSymbolicLink", 0o120_000),
            ("isCharacterDevice", 0o020_000),
            ("isFIFO", 0o010_000),
            ("isSocket", 0o140_000),
            ("isBlockDevice", 0o060_000),
        ] {
            b.method(stats_proto, name, Native::StatsIs(mask))?;
        }
        b.heap.define(global, "fs", Value::Object(fs));

        let promise_proto = b.object(Some(object_proto))?;
        b.method(promise_proto, "then", Native::Fetch(FetchOp::PromiseThen))?;
        let headers_proto = b.object(Some(object_proto))?;
        for (name, op) in [
            ("append", FetchOp::HeadersAppend),
            ("set", FetchOp::HeadersSet),
            ("get", FetchOp::HeadersGet),
            ("has", FetchOp::HeadersHas),
            ("entries", FetchOp::HeadersEntries),
        ] {
            b.method(headers_proto, name, Native::Fetch(op))?;
        }
        b.class(
            global,
            "Headers",
            Native::Fetch(FetchOp::HeadersCtor),
            headers_proto,
        )?;
        let iterator_proto = b.object(Some(object_proto))?;
        b.method(iterator_proto, "next", Native::Fetch(FetchOp::IteratorNext))?;
        let stream_proto = b.object(Some(object_proto))?;
        b.method(stream_proto, "getReader", Native::Fetch(FetchOp::GetReader))?;
        b.method(stream_proto, "cancel", Native::Fetch(FetchOp::Cancel))?;
        let reader_proto = b.object(Some(object_proto))?;
        b.method(reader_proto, "read", Native::Fetch(FetchOp::Read))?;
        b.method(reader_proto, "cancel", Native::Fetch(FetchOp::Cancel))?;
        b.method(
            reader_proto,
            "releaseLock",
            Native::Fetch(FetchOp::ReleaseLock),
        )?;
        let abort_proto = b.object(Some(object_proto))?;
        b.method(abort_proto, "abort", Native::Fetch(FetchOp::Abort))?;
        b.class(
            global,
            "AbortController",
            Native::Fetch(FetchOp::AbortControllerCtor),
            abort_proto,
        )?;
        b.method(global, "fetch", Native::Fetch(FetchOp::Fetch))?;

        // Wasabi's own object: its presence tells a guest it runs on Wasabi.
        let wasabi = b.object(Some(object_proto))?;
        b.heap
            .define(wasabi, "version", env!("CARGO_PKG_VERSION").into());
        let net = b.object(Some(object_proto))?;
        for (name, op) in NetOp::ALL {
            b.method(net, name, Native::Net(op))?;
        }
        b.heap.define(wasabi, "net", Value::Object(net));
        b.heap.define(global, "wasabi", Value::Object(wasabi));

        let go = b.object(Some(object_proto))?;
        b.heap.define(go, "_pendingEvent", Value::Null);
        b.method(go, "_makeFuncWrapper", Native::MakeFuncWrapper)?;

        let realm = Realm {
            global,
            go,
            object_proto,
            function_proto,
            array_proto,
            bytes_proto,
            error_proto,
            type_error_proto,
            range_error_proto,
            date_proto,
            stats_proto,
            promise_proto,
            headers_proto,
            iterator_proto,
            stream_proto,
            reader_proto,
            abort_proto,
        };
        Ok((realm, b.natives))
    }

    /// The objects the realm keeps alive regardless of Go.
    pub fn roots(&self) -> [Value; 7] {
        [
            Value::Object(self.global),
            Value::Object(self.go),
            // Reachable from no global, but the host makes objects with them.
            Value::Object(self.stats_proto),
            Value::Object(self.promise_proto),
            Value::Object(self.iterator_proto),
            Value::Object(self.stream_proto),
            Value::Object(self.reader_proto),
        ]
    }
}

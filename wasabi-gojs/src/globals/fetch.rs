//! `fetch`, `Headers`, `AbortController` and the responses `fetch` makes:
//! what `net/http`'s js/wasm transport uses when `fetch` exists, so
//! `http.Get` works in a guest that never imports Wasabi's module.
//!
//! Requests run on the instance's [`HttpClient`](wasabi_net::HttpClient)
//! under its connect policy, with `https:` verified against the tenant's
//! trusted authorities. Promises are settled by the event loop as the
//! client reports progress (the response head, then one body chunk per
//! `reader.read()`), and their reactions run as jobs (see
//! [`promise`](super::promise)).
//!
//! What is here is what Go's transport, and a program using `syscall/js`
//! directly, touches: `fetch(url, {method, headers, body, signal,
//! redirect})`, where the body (a `Uint8Array` or a string) stays in the
//! guest and is copied out a chunk at a time as the connection takes it;
//! a `Response` with `status`, `statusText`, `ok`, `url`, `redirected`,
//! `headers` (with `entries()`), `bodyUsed`, a streaming `body`
//! (`getReader()`, `read()`, `cancel()`) and `arrayBuffer()`, `text()` and
//! `json()`; `new Headers()` with `append`, `set`, `get`, `has` and
//! `entries`; and `new AbortController()` with `signal` and `abort()`.
//! Redirects are followed by the host unless the request says otherwise
//! (`redirect: "manual"` or `"error"`; Go sets it from the
//! `js.fetch:redirect` request header).

use wasabi_net::{FetchEvent, FetchId, HttpRequest, NetError, RedirectMode};

use super::promise::{new_promise, settle};
use super::{NativeResult, arg, ret};
use crate::heap::{Custody, HeapError, Key, ObjectKind};
use crate::js::Js;
use crate::strings::to_js_string;
use crate::value::{ObjectId, Value};

/// What `fetch` works with: the JS world and the tenant's requests.
pub(crate) struct FetchHost<'a> {
    pub(crate) js: &'a mut Js,
    pub(crate) requests: &'a mut Requests,
}

/// The tenant's HTTP client and what Go may still wait on, per request.
pub(crate) struct Requests {
    pub(crate) http: wasabi_net::HttpClient,
    pub(crate) pending: std::collections::HashMap<FetchId, FetchRecord>,
}

/// A function of the fetch world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FetchOp {
    Fetch,
    ArrayBuffer,
    Text,
    Json,
    HeadersCtor,
    HeadersAppend,
    HeadersSet,
    HeadersGet,
    HeadersHas,
    HeadersEntries,
    IteratorNext,
    AbortControllerCtor,
    Abort,
    GetReader,
    Read,
    Cancel,
    ReleaseLock,
}

/// What the host remembers about a request while Go may still wait on it.
#[derive(Debug, Default)]
pub(crate) struct FetchRecord {
    /// The promise `fetch` returned, until the response head settles it.
    pending_response: Option<Value>,
    /// The promise of the `read()` in progress.
    pending_read: Option<Value>,
    /// An `arrayBuffer()`, `text()` or `json()` reading the whole body.
    whole: Option<WholeBody>,
    /// The `AbortSignal` passed in, if any.
    signal: Option<ObjectId>,
    /// The request body (a `Uint8Array`), read from as the client asks.
    body: Option<ObjectId>,
    /// The `Response`, once the head came (for `bodyUsed`).
    response: Option<ObjectId>,
    /// A reader or a whole-body read has taken the body (the host's own
    /// record: the guest may write `bodyUsed`).
    used: bool,
}

/// A body being read whole, and what it becomes.
#[derive(Debug)]
struct WholeBody {
    promise: Value,
    into: BodyFormat,
    bytes: Vec<u8>,
}

/// What `arrayBuffer()`, `text()` and `json()` make of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Bytes,
    Text,
    Json,
}

impl FetchRecord {
    /// Values the collector must keep.
    pub(crate) fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.pending_response
            .iter()
            .chain(self.pending_read.iter())
            .chain(self.whole.iter().map(|w| &w.promise))
            .cloned()
            .chain(self.signal.map(Value::Object))
            .chain(self.body.map(Value::Object))
            .chain(self.response.map(Value::Object))
    }
}

/// Calls a function of the fetch world.
/// The prototypes `fetch` and its companions give the objects they make.
pub(crate) struct FetchProtos {
    pub(crate) response: ObjectId,
    pub(crate) headers: ObjectId,
    pub(crate) iterator: ObjectId,
    pub(crate) stream: ObjectId,
    pub(crate) reader: ObjectId,
    pub(crate) abort: ObjectId,
}

/// Binds `fetch`, `Headers` and `AbortController`, and makes the
/// prototypes of responses, iterators, body streams and their readers.
pub(crate) fn install(b: &mut super::Binder<'_>) -> Result<FetchProtos, crate::heap::HeapError> {
    use super::Native;
    let response = b.plain()?;
    for (name, op) in [
        ("arrayBuffer", FetchOp::ArrayBuffer),
        ("text", FetchOp::Text),
        ("json", FetchOp::Json),
    ] {
        b.method(response, name, Native::Fetch(op))?;
    }
    let headers = b.plain()?;
    for (name, op) in [
        ("append", FetchOp::HeadersAppend),
        ("set", FetchOp::HeadersSet),
        ("get", FetchOp::HeadersGet),
        ("has", FetchOp::HeadersHas),
        ("entries", FetchOp::HeadersEntries),
    ] {
        b.method(headers, name, Native::Fetch(op))?;
    }
    b.class(
        b.global,
        "Headers",
        Native::Fetch(FetchOp::HeadersCtor),
        headers,
    )?;
    let iterator = b.plain()?;
    b.method(iterator, "next", Native::Fetch(FetchOp::IteratorNext))?;
    let stream = b.plain()?;
    b.method(stream, "getReader", Native::Fetch(FetchOp::GetReader))?;
    b.method(stream, "cancel", Native::Fetch(FetchOp::Cancel))?;
    let reader = b.plain()?;
    b.method(reader, "read", Native::Fetch(FetchOp::Read))?;
    b.method(reader, "cancel", Native::Fetch(FetchOp::Cancel))?;
    b.method(reader, "releaseLock", Native::Fetch(FetchOp::ReleaseLock))?;
    let abort = b.plain()?;
    b.method(abort, "abort", Native::Fetch(FetchOp::Abort))?;
    b.class(
        b.global,
        "AbortController",
        Native::Fetch(FetchOp::AbortControllerCtor),
        abort,
    )?;
    b.method(b.global, "fetch", Native::Fetch(FetchOp::Fetch))?;
    Ok(FetchProtos {
        response,
        headers,
        iterator,
        stream,
        reader,
        abort,
    })
}

pub(crate) fn call(
    host: &mut FetchHost<'_>,
    op: FetchOp,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> NativeResult {
    match op {
        FetchOp::Fetch => fetch(host, args),
        FetchOp::ArrayBuffer => read_whole(host, this, BodyFormat::Bytes),
        FetchOp::Text => read_whole(host, this, BodyFormat::Text),
        FetchOp::Json => read_whole(host, this, BodyFormat::Json),
        FetchOp::HeadersCtor => headers_ctor(host, args, construct),
        FetchOp::HeadersAppend
        | FetchOp::HeadersSet
        | FetchOp::HeadersGet
        | FetchOp::HeadersHas
        | FetchOp::HeadersEntries => headers_method(host, op, this, args),
        FetchOp::IteratorNext => iterator_next(host, this),
        FetchOp::AbortControllerCtor => abort_controller_ctor(host, construct),
        FetchOp::Abort => abort_method(host, this),
        FetchOp::GetReader => get_reader(host, this),
        FetchOp::Read => read_method(host, this),
        FetchOp::Cancel => cancel_method(host, this),
        FetchOp::ReleaseLock => ret(Value::Undefined),
    }
}

/// `fetch(url, options)`: a promise of the response.
fn fetch(host: &mut FetchHost<'_>, args: &[Value]) -> NativeResult {
    let promise = new_promise(host.js).map_err(|e| host.js.heap_error(e))?;
    start(host, &promise, args)?;
    ret(promise)
}

/// `response.arrayBuffer()`, `text()` or `json()`: a promise of the whole
/// body, read to its end. A body reads once, whichever way.
fn read_whole(host: &mut FetchHost<'_>, this: &Value, into: BodyFormat) -> NativeResult {
    let Some(fetch) = body_of(host, this) else {
        return Err(host
            .js
            .type_error("Response method called on a non-response"));
    };
    let promise = new_promise(host.js).map_err(|e| host.js.heap_error(e))?;
    let Some(record) = host.requests.pending.get_mut(&fetch).filter(|r| !r.used) else {
        let reason = host
            .js
            .type_error("Body is unusable: Body has already been read");
        settle(host.js, &promise, Err(reason));
        return ret(promise);
    };
    record.whole = Some(WholeBody {
        promise: promise.clone(),
        into,
        bytes: Vec::new(),
    });
    mark_used(host, fetch);
    if let Err(e) = host.requests.http.pull(fetch) {
        host.requests.pending.remove(&fetch);
        let reason = fetch_failed(host, &e);
        settle(host.js, &promise, Err(reason));
    }
    ret(promise)
}

/// Marks the body taken, and says so in the response's `bodyUsed`.
fn mark_used(host: &mut FetchHost<'_>, fetch: FetchId) {
    let Some(record) = host.requests.pending.get_mut(&fetch) else {
        return;
    };
    record.used = true;
    if let Some(response) = record.response {
        host.js.heap.define(response, "bodyUsed", Value::Bool(true));
    }
}

/// `new Headers(init)`.
fn headers_ctor(host: &mut FetchHost<'_>, args: &[Value], construct: bool) -> NativeResult {
    if !construct {
        return Err(host.js.type_error("Constructor Headers requires 'new'"));
    }
    let pairs = match arg(args, 0) {
        Value::Undefined => Vec::new(),
        init => header_pairs(host, &init)?,
    };
    let proto = host.js.realm.headers_proto;
    let id = host
        .js
        .alloc_object(ObjectKind::Headers(pairs), proto)
        .map_err(|e| host.js.heap_error(e))?;
    ret(Value::Object(id))
}

/// An iterator's `next()`.
fn iterator_next(host: &mut FetchHost<'_>, this: &Value) -> NativeResult {
    let Value::Object(id) = this else {
        return Err(host.js.type_error("next called on a non-iterator"));
    };
    let item = match &mut host.js.heap.get_mut(*id).kind {
        ObjectKind::Iterator { items, next } => {
            let item = items.get(*next).cloned();
            *next += usize::from(item.is_some());
            item
        }
        _ => return Err(host.js.type_error("next called on a non-iterator")),
    };
    let result = iter_result(host, item).map_err(|e| host.js.heap_error(e))?;
    ret(result)
}

/// `new AbortController()`, with its `signal`.
fn abort_controller_ctor(host: &mut FetchHost<'_>, construct: bool) -> NativeResult {
    if !construct {
        return Err(host
            .js
            .type_error("Constructor AbortController requires 'new'"));
    }
    let signal = host.js.new_object().map_err(|e| host.js.heap_error(e))?;
    host.js.heap.define(signal, "aborted", Value::Bool(false));
    let proto = host.js.realm.abort_proto;
    let controller = host
        .js
        .alloc_object(ObjectKind::Ordinary, proto)
        .map_err(|e| host.js.heap_error(e))?;
    host.js
        .heap
        .define(controller, "signal", Value::Object(signal));
    ret(Value::Object(controller))
}

/// `AbortController.prototype.abort`.
fn abort_method(host: &mut FetchHost<'_>, this: &Value) -> NativeResult {
    let signal = host
        .js
        .heap
        .get_property(this, Key::Name("signal"))
        .map_err(|e| host.js.heap_error(e))?;
    if let Value::Object(signal) = signal {
        abort(host, signal);
    }
    ret(Value::Undefined)
}

/// A body stream's `getReader()`.
fn get_reader(host: &mut FetchHost<'_>, this: &Value) -> NativeResult {
    let Some(fetch) = body_of(host, this) else {
        return Err(host.js.type_error("getReader called on a non-stream"));
    };
    if host
        .requests
        .pending
        .get(&fetch)
        .is_some_and(|r| r.whole.is_some())
    {
        return Err(host.js.type_error("ReadableStream is locked"));
    }
    mark_used(host, fetch);
    let proto = host.js.realm.reader_proto;
    let reader = host
        .js
        .alloc_object(ObjectKind::Body(fetch), proto)
        .map_err(|e| host.js.heap_error(e))?;
    ret(Value::Object(reader))
}

/// A body reader's `read()`: a promise of the next chunk.
fn read_method(host: &mut FetchHost<'_>, this: &Value) -> NativeResult {
    let Some(fetch) = body_of(host, this) else {
        return Err(host.js.type_error("read called on a non-reader"));
    };
    let promise = new_promise(host.js).map_err(|e| host.js.heap_error(e))?;
    read(host, fetch, &promise)?;
    ret(promise)
}

/// `cancel()` on a body stream or reader: the request ends.
fn cancel_method(host: &mut FetchHost<'_>, this: &Value) -> NativeResult {
    let Some(fetch) = body_of(host, this) else {
        return Err(host.js.type_error("cancel called on a non-stream"));
    };
    let promise = new_promise(host.js).map_err(|e| host.js.heap_error(e))?;
    // A body being read whole is locked to that read, as in JS: cancelling
    // it would leave `arrayBuffer()`'s promise waiting for ever.
    if host
        .requests
        .pending
        .get(&fetch)
        .is_some_and(|r| r.whole.is_some())
    {
        let reason = host.js.type_error("ReadableStream is locked");
        settle(host.js, &promise, Err(reason));
        return ret(promise);
    }
    host.requests.http.cancel(fetch);
    if let Some(record) = host.requests.pending.remove(&fetch)
        && let Some(read) = record.pending_read
    {
        let done = iter_result(host, None).map_err(|e| host.js.heap_error(e))?;
        settle(host.js, &read, Ok(done));
    }
    settle(host.js, &promise, Ok(Value::Undefined));
    ret(promise)
}

/// Starts the request `fetch(url, options)` describes; failures reject
/// `promise`.
fn start(host: &mut FetchHost<'_>, promise: &Value, args: &[Value]) -> Result<(), Value> {
    let url = to_js_string(&host.js.heap, &arg(args, 0));
    let options = arg(args, 1);
    let get = |host: &mut FetchHost<'_>, name| match &options {
        Value::Object(_) => host.js.heap.get_property(&options, Key::Name(name)),
        _ => Ok(Value::Undefined),
    };
    let method = match get(host, "method").map_err(|e| host.js.heap_error(e))? {
        Value::Undefined => "GET".to_string(),
        m => to_js_string(&host.js.heap, &m).to_ascii_uppercase(),
    };
    let headers = match get(host, "headers").map_err(|e| host.js.heap_error(e))? {
        Value::Undefined | Value::Null => Vec::new(),
        h => header_pairs(host, &h)?,
    };
    let body = match get(host, "body").map_err(|e| host.js.heap_error(e))? {
        Value::Undefined | Value::Null => None,
        Value::String(s) => {
            // Text becomes bytes once, in the guest's budget.
            let proto = host.js.realm.bytes_proto;
            let text = s.as_bytes();
            let id = host
                .js
                .heap
                .alloc_bytes(text.len(), proto)
                .map_err(|e| host.js.heap_error(e))?;
            if let ObjectKind::Bytes(b) = &mut host.js.heap.get_mut(id).kind {
                b.copy_from_slice(text);
            }
            Some(id)
        }
        Value::Object(id) if matches!(host.js.heap.get(id).kind, ObjectKind::Bytes(_)) => {
            // Held until the request is over: never released early.
            host.js.heap.share(&Value::Object(id));
            Some(id)
        }
        _ => {
            return Err(host
                .js
                .type_error("fetch: the body must be a Uint8Array or a string"));
        }
    };
    let body_length = body.map_or(0, |id| match &host.js.heap.get(id).kind {
        ObjectKind::Bytes(b) => b.len() as u64,
        _ => 0,
    });
    let redirect = match get(host, "redirect").map_err(|e| host.js.heap_error(e))? {
        Value::Undefined => RedirectMode::Follow,
        mode => {
            let mode = to_js_string(&host.js.heap, &mode);
            mode.parse().map_err(|_| {
                host.js.type_error(&format!(
                    "fetch: '{mode}' is not a valid redirect mode (follow, manual or error)"
                ))
            })?
        }
    };
    let signal = match get(host, "signal").map_err(|e| host.js.heap_error(e))? {
        Value::Object(id) => Some(id),
        _ => None,
    };
    if let Some(signal) = signal
        && host
            .js
            .heap
            .get_property(&Value::Object(signal), Key::Name("aborted"))
            == Ok(Value::Bool(true))
    {
        let reason = abort_error(host);
        settle(host.js, promise, Err(reason));
        return Ok(());
    }
    let request = HttpRequest {
        method,
        url,
        headers,
        body_length,
        redirect,
    };
    match host.requests.http.start(request) {
        Ok(id) => {
            host.requests.pending.insert(
                id,
                FetchRecord {
                    pending_response: Some(promise.clone()),
                    signal,
                    body,
                    ..FetchRecord::default()
                },
            );
        }
        Err(e) => {
            let reason = fetch_failed(host, &e);
            settle(host.js, promise, Err(reason));
        }
    }
    Ok(())
}

/// `reader.read()`: asks the client for the next chunk.
fn read(host: &mut FetchHost<'_>, fetch: FetchId, promise: &Value) -> Result<(), Value> {
    let Some(record) = host.requests.pending.get_mut(&fetch) else {
        // The body ended (or was cancelled): done.
        let done = iter_result(host, None).map_err(|e| host.js.heap_error(e))?;
        settle(host.js, promise, Ok(done));
        return Ok(());
    };
    if record.pending_read.is_some() || record.whole.is_some() {
        let reason = host
            .js
            .type_error("a read of this body is already in progress");
        settle(host.js, promise, Err(reason));
        return Ok(());
    }
    record.pending_read = Some(promise.clone());
    if let Err(e) = host.requests.http.pull(fetch) {
        host.requests.pending.remove(&fetch);
        let reason = fetch_failed(host, &e);
        settle(host.js, promise, Err(reason));
    }
    Ok(())
}

/// `controller.abort()`: every request under `signal` is cancelled, and
/// whatever Go waits on for it rejects with an `AbortError`.
fn abort(host: &mut FetchHost<'_>, signal: ObjectId) {
    host.js.heap.define(signal, "aborted", Value::Bool(true));
    let ids: Vec<FetchId> = host
        .requests
        .pending
        .iter()
        .filter(|(_, r)| r.signal == Some(signal))
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        host.requests.http.cancel(id);
        if let Some(record) = host.requests.pending.remove(&id) {
            for promise in record.waiting() {
                let reason = abort_error(host);
                settle(host.js, &promise, Err(reason));
            }
        }
    }
}

impl FetchRecord {
    /// Every promise Go may be waiting on for this request.
    fn waiting(self) -> impl Iterator<Item = Value> {
        [
            self.pending_response,
            self.pending_read,
            self.whole.map(|w| w.promise),
        ]
        .into_iter()
        .flatten()
    }
}

/// Applies an event of the HTTP client: settles the promise Go waits on,
/// or supplies the request body it asks for.
pub(crate) fn deliver(host: &mut FetchHost<'_>, event: FetchEvent) {
    let id = event.id();
    let outcome = match event {
        FetchEvent::BodyWanted { offset, len, .. } => {
            supply_body(host, id, offset, len);
            return;
        }
        FetchEvent::Head {
            status,
            headers,
            url,
            redirected,
            ..
        } => {
            let Some(promise) = host
                .requests
                .pending
                .get_mut(&id)
                .and_then(|r| r.pending_response.take())
            else {
                return;
            };
            let response = response(host, id, status, headers, url, redirected);
            (promise, response)
        }
        FetchEvent::Chunk { bytes, .. } => {
            if collect(host, id, &bytes) {
                return;
            }
            let Some(promise) = host
                .requests
                .pending
                .get_mut(&id)
                .and_then(|r| r.pending_read.take())
            else {
                return;
            };
            let proto = host.js.realm.bytes_proto;
            let result = host
                .js
                .heap
                .alloc_bytes(bytes.len(), proto)
                .and_then(|chunk| {
                    if let ObjectKind::Bytes(b) = &mut host.js.heap.get_mut(chunk).kind {
                        b.copy_from_slice(&bytes);
                    }
                    let result = iter_result(host, Some(Value::Object(chunk)));
                    // Go copies the chunk out once and drops it: its bytes are
                    // released then (see `Custody`).
                    host.js.heap.get_mut(chunk).custody = Custody::FilledForGo;
                    result
                });
            (promise, result.map_err(|e| host.js.heap_error(e)))
        }
        FetchEvent::End { .. } => {
            let Some(record) = host.requests.pending.remove(&id) else {
                return;
            };
            if let Some(whole) = record.whole {
                let value = whole_value(host, whole.into, whole.bytes);
                (whole.promise, value)
            } else if let Some(promise) = record.pending_read {
                let result = iter_result(host, None).map_err(|e| host.js.heap_error(e));
                (promise, result)
            } else {
                return;
            }
        }
        FetchEvent::Failed { error, .. } => {
            let Some(record) = host.requests.pending.remove(&id) else {
                return;
            };
            let Some(promise) = record.waiting().next() else {
                return;
            };
            let reason = fetch_failed(host, &error);
            (promise, Err(reason))
        }
    };
    let (promise, result) = outcome;
    settle(host.js, &promise, result);
}

/// Copies `len` bytes of request `id`'s body from `offset` to the client.
/// A body the guest has since shrunk (or replaced) supplies nothing, which
/// fails the request.
fn supply_body(host: &mut FetchHost<'_>, id: FetchId, offset: u64, len: u64) {
    let Some(body) = host.requests.pending.get(&id).and_then(|r| r.body) else {
        return;
    };
    let chunk = match &host.js.heap.get(body).kind {
        ObjectKind::Bytes(b) => usize::try_from(offset)
            .ok()
            .zip(usize::try_from(offset.saturating_add(len)).ok())
            .and_then(|(from, to)| b.get(from..to))
            .map(::bytes::Bytes::copy_from_slice)
            .unwrap_or_default(),
        _ => ::bytes::Bytes::new(),
    };
    host.requests.http.supply_body(id, offset, chunk);
}

/// Adds a chunk to a body being read whole, and asks for the next; `false`
/// if the body is not being read whole. The bytes count in the guest's
/// object budget as they arrive.
fn collect(host: &mut FetchHost<'_>, id: FetchId, bytes: &[u8]) -> bool {
    let Some(record) = host.requests.pending.get_mut(&id) else {
        return false;
    };
    let Some(whole) = record.whole.as_mut() else {
        return false;
    };
    if let Err(e) = host.js.heap.charge(bytes.len()) {
        let whole = record.whole.take();
        host.requests.pending.remove(&id);
        host.requests.http.cancel(id);
        if let Some(whole) = whole {
            let reason = host.js.heap_error(e);
            settle(host.js, &whole.promise, Err(reason));
        }
        return true;
    }
    whole.bytes.extend_from_slice(bytes);
    if let Err(e) = host.requests.http.pull(id)
        && let Some(whole) = host.requests.pending.remove(&id).and_then(|r| r.whole)
    {
        let reason = fetch_failed(host, &e);
        settle(host.js, &whole.promise, Err(reason));
    }
    true
}

/// What `arrayBuffer()`, `text()` or `json()` resolve with.
fn whole_value(host: &mut FetchHost<'_>, into: BodyFormat, bytes: Vec<u8>) -> Result<Value, Value> {
    match into {
        // A `Uint8Array` stands in for the `ArrayBuffer` (`new
        // Uint8Array(it)` and `byteLength` work on it alike).
        BodyFormat::Bytes => {
            let proto = host.js.realm.bytes_proto;
            let id = host
                .js
                .alloc_object(ObjectKind::Bytes(bytes), proto)
                .map_err(|e| host.js.heap_error(e))?;
            Ok(Value::Object(id))
        }
        BodyFormat::Text => Ok(Value::string(String::from_utf8_lossy(&bytes).into_owned())),
        BodyFormat::Json => match crate::json::parse(host.js, &bytes) {
            Ok(value) => Ok(value),
            Err(crate::json::JsonError::Heap(e)) => Err(host.js.heap_error(e)),
            Err(crate::json::JsonError::Syntax(e)) => {
                let proto = host.js.realm.error_proto;
                let err = host.js.new_error(proto, &format!("Unexpected JSON: {e}"));
                if let Value::Object(id) = err {
                    host.js.heap.define(id, "name", Value::from("SyntaxError"));
                }
                Err(err)
            }
        },
    }
}

/// The `Response` for a head.
fn response(
    host: &mut FetchHost<'_>,
    id: FetchId,
    status: u16,
    headers: Vec<(String, String)>,
    url: String,
    redirected: bool,
) -> Result<Value, Value> {
    let build = |host: &mut FetchHost<'_>| -> Result<ObjectId, HeapError> {
        let realm = host.js.realm;
        let headers = host
            .js
            .alloc_object(ObjectKind::Headers(headers), realm.headers_proto)?;
        let body = host
            .js
            .alloc_object(ObjectKind::Body(id), realm.stream_proto)?;
        let response = host
            .js
            .alloc_object(ObjectKind::Body(id), realm.response_proto)?;
        let reason = reason_phrase(status);
        for (name, value) in [
            ("status", Value::Number(f64::from(status))),
            ("statusText", Value::string(reason)),
            ("ok", Value::Bool((200..300).contains(&status))),
            ("redirected", Value::Bool(redirected)),
            ("type", Value::from("basic")),
            ("url", Value::string(url)),
            ("headers", Value::Object(headers)),
            ("body", Value::Object(body)),
            ("bodyUsed", Value::Bool(false)),
        ] {
            host.js.heap.define(response, name, value);
        }
        Ok(response)
    };
    let response = build(host).map_err(|e| host.js.heap_error(e))?;
    // The request body stays until the request is over: a server may
    // answer before it has read all of it, and the connection still sends
    // the rest.
    if let Some(record) = host.requests.pending.get_mut(&id) {
        record.response = Some(response);
    }
    Ok(Value::Object(response))
}

/// The reason phrase of a status code, as servers usually send it.
fn reason_phrase(status: u16) -> String {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
    .to_string()
}

/// The methods of `Headers.prototype`.
fn headers_method(
    host: &mut FetchHost<'_>,
    op: FetchOp,
    this: &Value,
    args: &[Value],
) -> NativeResult {
    let Some(id) = object_of(host, this, |k| matches!(k, ObjectKind::Headers(_))) else {
        return Err(host
            .js
            .type_error("Headers method called on a non-Headers object"));
    };
    let name = to_js_string(&host.js.heap, &arg(args, 0)).to_ascii_lowercase();
    let value = to_js_string(&host.js.heap, &arg(args, 1));
    if matches!(op, FetchOp::HeadersAppend | FetchOp::HeadersSet) {
        host.js
            .heap
            .charge(name.len() + value.len() + 48)
            .map_err(|e| host.js.heap_error(e))?;
    }
    let ObjectKind::Headers(pairs) = &mut host.js.heap.get_mut(id).kind else {
        return Err(host
            .js
            .type_error("Headers method called on a non-Headers object"));
    };
    match op {
        FetchOp::HeadersAppend => pairs.push((name, value)),
        FetchOp::HeadersSet => {
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
        }
        FetchOp::HeadersGet => {
            let values: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
                .collect();
            return ret(if values.is_empty() {
                Value::Null
            } else {
                Value::string(values.join(", "))
            });
        }
        FetchOp::HeadersHas => return ret(Value::Bool(pairs.iter().any(|(k, _)| *k == name))),
        _ => {
            let pairs = pairs.clone();
            let mut items = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let pair = host
                    .js
                    .new_array(vec![Value::string(k), Value::string(v)])
                    .map_err(|e| host.js.heap_error(e))?;
                items.push(Value::Object(pair));
            }
            let proto = host.js.realm.iterator_proto;
            let iter = host
                .js
                .alloc_object(ObjectKind::Iterator { items, next: 0 }, proto)
                .map_err(|e| host.js.heap_error(e))?;
            return ret(Value::Object(iter));
        }
    }
    ret(Value::Undefined)
}

/// Header pairs from a `Headers` object or a plain object of names to values.
fn header_pairs(host: &mut FetchHost<'_>, init: &Value) -> Result<Vec<(String, String)>, Value> {
    let Value::Object(id) = init else {
        return Err(host.js.type_error("Headers: the init must be an object"));
    };
    let object = host.js.heap.get(*id);
    if let ObjectKind::Headers(pairs) = &object.kind {
        return Ok(pairs.clone());
    }
    let keys: Vec<String> = object.keys().map(|k| k.to_string()).collect();
    let mut pairs = Vec::with_capacity(keys.len());
    for key in keys {
        let value = host
            .js
            .heap
            .get_property(init, Key::Name(&key))
            .map_err(|e| host.js.heap_error(e))?;
        let value = to_js_string(&host.js.heap, &value);
        pairs.push((key.to_ascii_lowercase(), value));
    }
    Ok(pairs)
}

/// `{done, value}`: `Some(value)` for an item, `None` for the end.
fn iter_result(host: &mut FetchHost<'_>, item: Option<Value>) -> Result<Value, HeapError> {
    let result = host.js.new_object()?;
    host.js
        .heap
        .define(result, "done", Value::Bool(item.is_none()));
    host.js
        .heap
        .define(result, "value", item.unwrap_or(Value::Undefined));
    Ok(Value::Object(result))
}

/// `TypeError: fetch failed` with the reason as its `cause`, as Node.js
/// reports a failed request (Go prints both).
fn fetch_failed(host: &mut FetchHost<'_>, error: &NetError) -> Value {
    let err = host.js.type_error("fetch failed");
    let message = host.js.network_message(error);
    let cause = host.js.system_error(error.code(), &message);
    if let Value::Object(id) = err {
        host.js.heap.define(id, "cause", cause);
    }
    err
}

/// `DOMException: This operation was aborted` (name `AbortError`).
fn abort_error(host: &mut FetchHost<'_>) -> Value {
    let proto = host.js.realm.error_proto;
    let err = host.js.new_error(proto, "This operation was aborted");
    if let Value::Object(id) = err {
        host.js.heap.define(id, "name", Value::from("AbortError"));
    }
    err
}

fn object_of(
    host: &FetchHost<'_>,
    v: &Value,
    kind: impl Fn(&ObjectKind) -> bool,
) -> Option<ObjectId> {
    match v {
        Value::Object(id) if kind(&host.js.heap.get(*id).kind) => Some(*id),
        _ => None,
    }
}

fn body_of(host: &FetchHost<'_>, v: &Value) -> Option<FetchId> {
    match v {
        Value::Object(id) => match host.js.heap.get(*id).kind {
            ObjectKind::Body(fetch) => Some(fetch),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHost;
    use crate::GoHostBuilder;
    use crate::globals::Completion;
    use crate::heap::PromiseState;

    fn host() -> GoHost {
        GoHostBuilder::new()
            .limits(wasabi_limits::TenantLimits {
                max_object_bytes: 1 << 16,
                ..Default::default()
            })
            .build()
            .unwrap()
    }

    fn state(host: &GoHost, promise: &Value) -> PromiseState {
        let Value::Object(id) = promise else {
            panic!("not a promise: {promise:?}")
        };
        match &host.js.heap.get(*id).kind {
            ObjectKind::Promise(s) => s.clone(),
            other => panic!("not a promise: {other:?}"),
        }
    }

    fn returned(r: NativeResult) -> Value {
        match r {
            Ok(Completion::Return(v)) => v,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn hostile_calls_throw_or_reject_without_a_request() {
        let mut host = host();
        let global = Value::Object(host.js.realm.global);
        // Methods on the wrong receiver throw.
        for op in [
            FetchOp::ArrayBuffer,
            FetchOp::Text,
            FetchOp::HeadersAppend,
            FetchOp::IteratorNext,
            FetchOp::Read,
            FetchOp::GetReader,
        ] {
            assert!(
                call(&mut host.fetch_host(), op, &global, &[], false).is_err(),
                "{op:?}"
            );
        }
        // Constructors need `new`.
        assert!(
            call(
                &mut host.fetch_host(),
                FetchOp::HeadersCtor,
                &Value::Undefined,
                &[],
                false
            )
            .is_err()
        );
        assert!(
            call(
                &mut host.fetch_host(),
                FetchOp::AbortControllerCtor,
                &Value::Undefined,
                &[],
                false
            )
            .is_err()
        );
        // A denied address, a bad URL, another scheme: a rejected promise, no request.
        for url in [
            "http://10.9.8.7/",
            "not a url",
            "https://10.9.8.7/",
            "file:///etc/passwd",
        ] {
            let p = returned(call(
                &mut host.fetch_host(),
                FetchOp::Fetch,
                &Value::Undefined,
                &[url.into()],
                false,
            ));
            assert!(
                matches!(state(&host, &p), PromiseState::Rejected(_)),
                "{url}"
            );
        }
        assert_eq!(host.requests.http.in_flight(), 0);
        assert!(host.requests.pending.is_empty());
        // A body that is neither bytes nor text throws.
        let options = host.js.new_object().unwrap();
        host.js.heap.define(options, "body", Value::Number(3.0));
        let r = call(
            &mut host.fetch_host(),
            FetchOp::Fetch,
            &Value::Undefined,
            &["http://127.0.0.1/".into(), Value::Object(options)],
            false,
        );
        assert!(r.is_err());
        // Appending headers forever runs into the object budget.
        let headers = returned(call(
            &mut host.fetch_host(),
            FetchOp::HeadersCtor,
            &Value::Undefined,
            &[],
            true,
        ));
        let big = Value::string("x".repeat(4096));
        let mut failed = false;
        for _ in 0..64 {
            if call(
                &mut host.fetch_host(),
                FetchOp::HeadersAppend,
                &headers,
                &["x-big".into(), big.clone()],
                false,
            )
            .is_err()
            {
                failed = true;
                break;
            }
        }
        assert!(failed, "64 × 4 KiB of headers fit in a 64 KiB budget");
    }

    /// A body being read whole cannot be cancelled from under the read (its
    /// promise would never settle), nor read again; a body arriving past
    /// the budget rejects the read instead of growing the host.
    #[test]
    fn a_body_read_whole_is_locked_and_held_to_the_budget() {
        let mut host = host();
        let stream_proto = host.js.realm.stream_proto;
        let stream = host
            .js
            .alloc_object(ObjectKind::Body(7), stream_proto)
            .unwrap();
        let whole = new_promise(&mut host.js).unwrap();
        host.requests.pending.insert(
            7,
            FetchRecord {
                whole: Some(WholeBody {
                    promise: whole.clone(),
                    into: BodyFormat::Bytes,
                    bytes: Vec::new(),
                }),
                used: true,
                ..FetchRecord::default()
            },
        );
        let stream = Value::Object(stream);
        // The guest writing `bodyUsed` does not let it read the body twice.
        let response_proto = host.js.realm.response_proto;
        let response = host
            .js
            .alloc_object(ObjectKind::Body(7), response_proto)
            .unwrap();
        host.js
            .heap
            .define(response, "bodyUsed", Value::Bool(false));
        let again = returned(call(
            &mut host.fetch_host(),
            FetchOp::ArrayBuffer,
            &Value::Object(response),
            &[],
            false,
        ));
        assert!(matches!(state(&host, &again), PromiseState::Rejected(_)));
        let cancelled = returned(call(
            &mut host.fetch_host(),
            FetchOp::Cancel,
            &stream,
            &[],
            false,
        ));
        assert!(matches!(
            state(&host, &cancelled),
            PromiseState::Rejected(_)
        ));
        assert!(host.requests.pending.contains_key(&7), "the read goes on");
        assert!(
            call(
                &mut host.fetch_host(),
                FetchOp::GetReader,
                &stream,
                &[],
                false
            )
            .is_err()
        );
        // 128 KiB arriving under a 64 KiB budget: the read is rejected.
        deliver(
            &mut host.fetch_host(),
            FetchEvent::Chunk {
                id: 7,
                bytes: vec![0; 128 << 10].into(),
            },
        );
        assert!(matches!(state(&host, &whole), PromiseState::Rejected(_)));
        assert!(host.requests.pending.is_empty());
    }
}

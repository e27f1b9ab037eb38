//! `fetch`, `Headers`, `AbortController` and the promises they return: what
//! `net/http`'s js/wasm transport uses when `fetch` exists, so `http.Get`
//! works in a guest that never imports Wasabi's module.
//!
//! Requests run on the instance's [`HttpClient`] under its connect policy.
//! Promises are settled by the event loop as the client reports progress
//! (the response head, then one body chunk per `reader.read()`), and their
//! reactions run as jobs, after the current call into Go returns — never
//! inside it, as in JS.
//!
//! What is here is what Go's transport touches: `fetch(url, {method,
//! headers, body, signal})`; a response with `status`, `statusText`, `ok`,
//! `url`, `redirected`, `headers` (with `entries()`) and a streaming `body`
//! (`getReader()`, `read()`, `cancel()`); `new Headers()` with `append`,
//! `set`, `get`, `has` and `entries`; `new AbortController()` with `signal`
//! and `abort()`; and `promise.then(onFulfilled, onRejected)`, which does
//! not chain (it returns `undefined`). Redirects are not followed: the 3xx
//! response reaches Go's client, which follows it itself.

use wasabi_net::{FetchEvent, FetchId, HttpRequest, NetError};

use super::{NativeResult, arg, is_callable, ret};
use crate::heap::{Custody, HeapError, Key, ObjectKind, PromiseState};
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
    PromiseThen,
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
    /// The `AbortSignal` passed in, if any.
    signal: Option<ObjectId>,
    /// The URL, for the response's `url`.
    url: String,
}

impl FetchRecord {
    /// Values the collector must keep.
    pub(crate) fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.pending_response
            .iter()
            .chain(self.pending_read.iter())
            .cloned()
            .chain(self.signal.map(Value::Object))
    }
}

/// Calls a function of the fetch world.
/// The prototypes `fetch` and its companions give the objects they make.
pub(crate) struct FetchProtos {
    pub(crate) promise: ObjectId,
    pub(crate) headers: ObjectId,
    pub(crate) iterator: ObjectId,
    pub(crate) stream: ObjectId,
    pub(crate) reader: ObjectId,
    pub(crate) abort: ObjectId,
}

/// Binds `fetch`, `Headers`, `AbortController` and `Promise.prototype.then`,
/// and makes the prototypes of iterators, body streams and their readers.
pub(crate) fn install(b: &mut super::Binder<'_>) -> Result<FetchProtos, crate::heap::HeapError> {
    use super::Native;
    let promise = b.plain()?;
    b.method(promise, "then", Native::Fetch(FetchOp::PromiseThen))?;
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
        promise,
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
        FetchOp::PromiseThen => promise_then(host, this, args),
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
    let promise = new_promise(host).map_err(|e| host.js.heap_error(e))?;
    start(host, &promise, args)?;
    ret(promise)
}

/// `Promise.prototype.then`.
fn promise_then(host: &mut FetchHost<'_>, this: &Value, args: &[Value]) -> NativeResult {
    let Some(id) = object_of(host, this, |k| matches!(k, ObjectKind::Promise(_))) else {
        return Err(host
            .js
            .type_error("Promise.prototype.then called on a non-promise"));
    };
    then(host, id, arg(args, 0), arg(args, 1));
    ret(Value::Undefined)
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
    let promise = new_promise(host).map_err(|e| host.js.heap_error(e))?;
    read(host, fetch, &promise)?;
    ret(promise)
}

/// `cancel()` on a body stream or reader: the request ends.
fn cancel_method(host: &mut FetchHost<'_>, this: &Value) -> NativeResult {
    let Some(fetch) = body_of(host, this) else {
        return Err(host.js.type_error("cancel called on a non-stream"));
    };
    host.requests.http.cancel(fetch);
    if let Some(record) = host.requests.pending.remove(&fetch)
        && let Some(read) = record.pending_read
    {
        let done = iter_result(host, None).map_err(|e| host.js.heap_error(e))?;
        settle(host, &read, Ok(done));
    }
    let promise = new_promise(host).map_err(|e| host.js.heap_error(e))?;
    settle(host, &promise, Ok(Value::Undefined));
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
        Value::Undefined | Value::Null => Vec::new(),
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(id) => match &host.js.heap.get(id).kind {
            ObjectKind::Bytes(b) => b.clone(),
            _ => {
                return Err(host
                    .js
                    .type_error("fetch: the body must be a Uint8Array or a string"));
            }
        },
        _ => {
            return Err(host
                .js
                .type_error("fetch: the body must be a Uint8Array or a string"));
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
        settle(host, promise, Err(reason));
        return Ok(());
    }
    let request = HttpRequest {
        method,
        url: url.clone(),
        headers,
        body,
    };
    match host.requests.http.start(request) {
        Ok(id) => {
            host.requests.pending.insert(
                id,
                FetchRecord {
                    pending_response: Some(promise.clone()),
                    signal,
                    url,
                    ..FetchRecord::default()
                },
            );
        }
        Err(e) => {
            let reason = fetch_failed(host, &e);
            settle(host, promise, Err(reason));
        }
    }
    Ok(())
}

/// `reader.read()`: asks the client for the next chunk.
fn read(host: &mut FetchHost<'_>, fetch: FetchId, promise: &Value) -> Result<(), Value> {
    let Some(record) = host.requests.pending.get_mut(&fetch) else {
        // The body ended (or was cancelled): done.
        let done = iter_result(host, None).map_err(|e| host.js.heap_error(e))?;
        settle(host, promise, Ok(done));
        return Ok(());
    };
    if record.pending_read.is_some() {
        let reason = host
            .js
            .type_error("a read of this body is already in progress");
        settle(host, promise, Err(reason));
        return Ok(());
    }
    record.pending_read = Some(promise.clone());
    if let Err(e) = host.requests.http.pull(fetch) {
        host.requests.pending.remove(&fetch);
        let reason = fetch_failed(host, &e);
        settle(host, promise, Err(reason));
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
            for promise in [record.pending_response, record.pending_read]
                .into_iter()
                .flatten()
            {
                let reason = abort_error(host);
                settle(host, &promise, Err(reason));
            }
        }
    }
}

/// Applies an event of the HTTP client: settles the promise Go waits on.
pub(crate) fn deliver(host: &mut FetchHost<'_>, event: FetchEvent) {
    let id = event.id();
    let outcome = match event {
        FetchEvent::Head {
            status, headers, ..
        } => {
            let Some(promise) = host
                .requests
                .pending
                .get_mut(&id)
                .and_then(|r| r.pending_response.take())
            else {
                return;
            };
            let response = response(host, id, status, headers);
            (promise, response)
        }
        FetchEvent::Chunk { bytes, .. } => {
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
            let Some(promise) = host
                .requests
                .pending
                .remove(&id)
                .and_then(|r| r.pending_read)
            else {
                return;
            };
            let result = iter_result(host, None).map_err(|e| host.js.heap_error(e));
            (promise, result)
        }
        FetchEvent::Failed { error, .. } => {
            let Some(record) = host.requests.pending.remove(&id) else {
                return;
            };
            let Some(promise) = record.pending_response.or(record.pending_read) else {
                return;
            };
            let reason = fetch_failed(host, &error);
            (promise, Err(reason))
        }
    };
    let (promise, result) = outcome;
    settle(host, &promise, result);
}

/// The `Response` for a head.
fn response(
    host: &mut FetchHost<'_>,
    id: FetchId,
    status: u16,
    headers: Vec<(String, String)>,
) -> Result<Value, Value> {
    let build = |host: &mut FetchHost<'_>| -> Result<Value, HeapError> {
        let (headers_proto, stream_proto) =
            (host.js.realm.headers_proto, host.js.realm.stream_proto);
        let headers = host
            .js
            .alloc_object(ObjectKind::Headers(headers), headers_proto)?;
        let body = host.js.alloc_object(ObjectKind::Body(id), stream_proto)?;
        let response = host.js.new_object()?;
        let url = host
            .requests
            .pending
            .get(&id)
            .map(|r| r.url.clone())
            .unwrap_or_default();
        let reason = reason_phrase(status);
        for (name, value) in [
            ("status", Value::Number(f64::from(status))),
            ("statusText", Value::string(reason)),
            ("ok", Value::Bool((200..300).contains(&status))),
            ("redirected", Value::Bool(false)),
            ("type", Value::from("basic")),
            ("url", Value::string(url)),
            ("headers", Value::Object(headers)),
            ("body", Value::Object(body)),
        ] {
            host.js.heap.define(response, name, value);
        }
        Ok(Value::Object(response))
    };
    build(host).map_err(|e| host.js.heap_error(e))
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

/// A new pending promise.
pub(crate) fn new_promise(host: &mut FetchHost<'_>) -> Result<Value, HeapError> {
    let proto = host.js.realm.promise_proto;
    host.js
        .alloc_object(
            ObjectKind::Promise(PromiseState::Pending(Vec::new())),
            proto,
        )
        .map(Value::Object)
}

/// Fulfils (`Ok`) or rejects (`Err`) a pending promise, queueing its
/// reactions as jobs. A settled promise stays as it is.
pub(crate) fn settle(host: &mut FetchHost<'_>, promise: &Value, outcome: Result<Value, Value>) {
    let Value::Object(id) = promise else { return };
    let ObjectKind::Promise(state) = &mut host.js.heap.get_mut(*id).kind else {
        return;
    };
    let PromiseState::Pending(reactions) = state else {
        return;
    };
    let reactions = std::mem::take(reactions);
    *state = match &outcome {
        Ok(v) => PromiseState::Fulfilled(v.clone()),
        Err(v) => PromiseState::Rejected(v.clone()),
    };
    let (Ok(v) | Err(v)) = &outcome;
    host.js.heap.share(v);
    for (on_ok, on_err) in reactions {
        queue_reaction(host, on_ok, on_err, &outcome);
    }
}

/// `promise.then(onFulfilled, onRejected)`.
fn then(host: &mut FetchHost<'_>, id: ObjectId, on_ok: Value, on_err: Value) {
    let ObjectKind::Promise(state) = &mut host.js.heap.get_mut(id).kind else {
        return;
    };
    let outcome = match state {
        PromiseState::Pending(reactions) => {
            reactions.push((on_ok, on_err));
            return;
        }
        PromiseState::Fulfilled(v) => Ok(v.clone()),
        PromiseState::Rejected(v) => Err(v.clone()),
    };
    queue_reaction(host, on_ok, on_err, &outcome);
}

fn queue_reaction(
    host: &mut FetchHost<'_>,
    on_ok: Value,
    on_err: Value,
    outcome: &Result<Value, Value>,
) {
    let (func, value) = match outcome {
        Ok(v) => (on_ok, v),
        Err(v) => (on_err, v),
    };
    if is_callable(&host.js.heap, &func) {
        host.js.jobs.push_back((func, vec![value.clone()]));
    }
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
            FetchOp::PromiseThen,
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
            "https://127.0.0.1/",
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

    #[test]
    fn then_runs_reactions_as_jobs_after_settling() {
        let mut host = host();
        let f = host
            .js
            .heap
            .get_property(
                &Value::Object(host.js.realm.global),
                Key::Name("setTimeout"),
            )
            .unwrap();
        let p = new_promise(&mut host.fetch_host()).unwrap();
        let Value::Object(id) = p else { unreachable!() };
        then(&mut host.fetch_host(), id, f.clone(), Value::Undefined);
        assert!(
            host.js.jobs.is_empty(),
            "nothing runs before the promise settles"
        );
        settle(&mut host.fetch_host(), &p, Ok(Value::Number(1.0)));
        settle(&mut host.fetch_host(), &p, Err(Value::Number(2.0)));
        assert_eq!(host.js.jobs.len(), 1, "a promise settles once");
        then(&mut host.fetch_host(), id, f, Value::Undefined);
        assert_eq!(
            host.js.jobs.len(),
            2,
            "then on a settled promise queues at once"
        );
        assert_eq!(host.js.jobs[0].1, vec![Value::Number(1.0)]);
    }
}

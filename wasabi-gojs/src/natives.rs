//! The host functions of the JS world (`console.log`, `fs.write`,
//! `new Uint8Array(n)`, ...), as one enum dispatched by `match`: no boxed
//! closures, no per-call allocation for the dispatch itself.
//!
//! A native returns a [`Completion`]: a value, a thrown value, or a tail call
//! to another function. Tail calls are how natives invoke callbacks
//! (`fs.write(..., cb)` ends by calling `cb(null, n)`) without holding any
//! borrow across the call into Go that the callback may be.

use std::io::Write;
use std::time::Duration;

use crate::guest_memory::GuestMemory;
use crate::heap::{Callable, Custody, HeapError, HostFn, Key, ObjectKind, to_number};
use crate::host::GoHost;
use crate::timers::TimerId;
use crate::value::{ObjectId, Value};
use wasabi_fs::guest_path::normalize;

/// Every host function of the JS world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Native {
    ObjectCtor,
    ObjectKeys,
    ObjectToString,
    ObjectHasOwnProperty,
    FunctionCtor,
    ArrayCtor,
    ArrayIsArray,
    ArrayPush,
    ArrayJoin,
    BytesCtor,
    BytesSet,
    ErrorCtor,
    TypeErrorCtor,
    RangeErrorCtor,
    ErrorToString,
    DateCtor,
    DateNow,
    DateGetTime,
    DateGetTimezoneOffset,
    DateToIsoString,
    ConsoleLog,
    ConsoleError,
    GetRandomValues,
    PerformanceNow,
    SetTimeout,
    ClearTimeout,
    ProcessUid,
    ProcessGid,
    ProcessGetgroups,
    ProcessUmask,
    ProcessCwd,
    ProcessChdir,
    PathResolve,
    Fs(crate::fs::FsOp),
    /// `Stats.prototype.isDirectory` and friends: the file type bits they test.
    StatsIs(u32),
    Net(crate::net::NetOp),
    Fetch(crate::fetch::FetchOp),
    MakeFuncWrapper,
}

/// How a call ended.
#[derive(Debug, Clone)]
pub enum Completion {
    /// Returned a value.
    Return(Value),
    /// Threw a value.
    Throw(Value),
    /// Continue by calling `func` with `this` and `args`; its completion is
    /// this call's completion.
    TailCall {
        /// The function to call.
        func: Value,
        /// Its receiver.
        this: Value,
        /// Its arguments.
        args: Vec<Value>,
    },
}

/// Argument `i`, or `undefined` past the end (as JS passes missing ones).
pub(crate) fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Undefined)
}

/// The largest `getRandomValues` request, as in browsers.
const MAX_RANDOM_BYTES: usize = 65536;

/// Calls the host function numbered `f` (a function object's
/// [`Callable::Host`]). `construct` is true for `new F(...)`. `mem` is the
/// guest's linear memory, for the natives that move bytes straight to or
/// from it.
pub fn call(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    f: HostFn,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> Completion {
    let Some(&native) = usize::try_from(f.0).ok().and_then(|i| host.natives.get(i)) else {
        // Only the realm numbers host functions; a number it did not hand
        // out cannot be in the heap, but would still only be a JS error.
        return Completion::Throw(host.type_error("not a function"));
    };
    call_native(host, mem, native, this, args, construct)
}

/// Calls `native` itself (what [`call`] does once it knows which).
pub(crate) fn call_native(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    native: Native,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> Completion {
    match call_inner(host, mem, native, this, args, construct) {
        Ok(c) => c,
        Err(thrown) => Completion::Throw(thrown),
    }
}

/// A native's completion, or the value it throws.
pub(crate) type NativeResult = Result<Completion, Value>;

/// A native's normal return.
pub(crate) fn ret(v: impl Into<Value>) -> NativeResult {
    Ok(Completion::Return(v.into()))
}

fn call_inner(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    native: Native,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> NativeResult {
    let realm = host.realm;
    let alloc_err = |host: &mut GoHost, e| host.heap_error(e);
    match native {
        Native::ObjectCtor => match arg(args, 0) {
            v @ Value::Object(_) => ret(v),
            _ => {
                let id = host.new_object().map_err(|e| alloc_err(host, e))?;
                ret(Value::Object(id))
            }
        },
        Native::ObjectKeys => {
            let Value::Object(id) = arg(args, 0) else {
                return Err(host.type_error("Cannot convert undefined or null to object"));
            };
            let object = host.heap.get(id);
            let mut keys: Vec<Value> = match &object.kind {
                ObjectKind::Array(items) => (0..items.len())
                    .map(|i| Value::string(i.to_string()))
                    .collect(),
                ObjectKind::Bytes(b) => {
                    (0..b.len()).map(|i| Value::string(i.to_string())).collect()
                }
                _ => Vec::new(),
            };
            keys.extend(object.keys().map(|k| Value::String(k.clone())));
            let arr = host.new_array(keys).map_err(|e| alloc_err(host, e))?;
            ret(Value::Object(arr))
        }
        Native::ObjectToString => {
            let tag = match this {
                Value::Undefined => "Undefined",
                Value::Null => "Null",
                Value::Object(id) => match host.heap.get(*id).kind {
                    ObjectKind::Array(_) => "Array",
                    ObjectKind::Bytes(_) => "Uint8Array",
                    ObjectKind::Function(_) => "Function",
                    ObjectKind::Error => "Error",
                    ObjectKind::Date(_) => "Date",
                    ObjectKind::Promise(_) => "Promise",
                    ObjectKind::Headers(_) => "Headers",
                    ObjectKind::Ordinary | ObjectKind::Iterator { .. } | ObjectKind::Body(_) => {
                        "Object"
                    }
                },
                Value::String(_) => "String",
                Value::Number(_) => "Number",
                Value::Bool(_) => "Boolean",
            };
            ret(Value::string(format!("[object {tag}]")))
        }
        Native::ObjectHasOwnProperty => {
            let key = to_js_string(host, &arg(args, 0));
            let has = match this {
                Value::Object(id) => {
                    let o = host.heap.get(*id);
                    o.own(&key).is_some()
                        || match &o.kind {
                            ObjectKind::Array(items) => {
                                key.parse::<usize>().is_ok_and(|i| i < items.len())
                            }
                            _ => false,
                        }
                }
                _ => false,
            };
            ret(has)
        }
        Native::FunctionCtor => {
            Err(host
                .type_error("Code generation from strings is not supported (Function constructor)"))
        }
        Native::ArrayCtor => {
            let items = match args {
                [Value::Number(n)] => {
                    if *n < 0.0 || n.fract() != 0.0 || *n > 1e7 {
                        return Err(host.range_error("Invalid array length"));
                    }
                    vec![Value::Undefined; *n as usize]
                }
                _ => args.to_vec(),
            };
            let arr = host.new_array(items).map_err(|e| alloc_err(host, e))?;
            ret(Value::Object(arr))
        }
        Native::ArrayIsArray => {
            let is = matches!(arg(args, 0), Value::Object(id) if matches!(host.heap.get(id).kind, ObjectKind::Array(_)));
            ret(is)
        }
        Native::ArrayPush => {
            let Value::Object(id) = this else {
                return Err(host.type_error("Array.prototype.push called on non-object"));
            };
            let len = match &host.heap.get(*id).kind {
                ObjectKind::Array(items) => items.len(),
                _ => return Err(host.type_error("Array.prototype.push called on a non-array")),
            };
            for (i, v) in args.iter().enumerate() {
                host.heap
                    .set_property(this, Key::Index((len + i) as i64), v.clone())
                    .map_err(|e| alloc_err(host, e))?;
            }
            ret(Value::Number((len + args.len()) as f64))
        }
        Native::ArrayJoin => {
            let sep = match arg(args, 0) {
                Value::Undefined => Ok(",".to_string()),
                v => js_string(host, &v),
            };
            let joined = sep.and_then(|sep| match this {
                Value::Object(id) => match &host.heap.get(*id).kind {
                    ObjectKind::Array(items) => js_join(host, Some(*id), items, &sep),
                    _ => Ok(String::new()),
                },
                _ => Ok(String::new()),
            });
            match joined {
                Ok(text) => ret(Value::string(text)),
                Err(e) => Err(alloc_err(host, e)),
            }
        }
        Native::BytesCtor => {
            if !construct {
                return Err(host.type_error("Constructor Uint8Array requires 'new'"));
            }
            let source = arg(args, 0);
            let bytes: Vec<u8> = match &source {
                Value::Undefined => Vec::new(),
                Value::Number(n) => {
                    if *n < 0.0 || n.fract() != 0.0 || !n.is_finite() {
                        return Err(host.range_error("Invalid typed array length"));
                    }
                    let id = host
                        .heap
                        .alloc_bytes(*n as usize, realm.bytes_proto)
                        .map_err(|e| alloc_err(host, e))?;
                    // Only Go holds it, until it is stored somewhere.
                    host.heap.get_mut(id).custody = Custody::GoOnly;
                    return ret(Value::Object(id));
                }
                Value::Object(id) => match &host.heap.get(*id).kind {
                    ObjectKind::Bytes(b) => b.clone(),
                    ObjectKind::Array(items) => {
                        items.iter().map(|v| to_number(v) as i64 as u8).collect()
                    }
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let id = host
                .heap
                .alloc_bytes(bytes.len(), realm.bytes_proto)
                .map_err(|e| alloc_err(host, e))?;
            if let ObjectKind::Bytes(dst) = &mut host.heap.get_mut(id).kind {
                dst.copy_from_slice(&bytes);
            }
            ret(Value::Object(id))
        }
        Native::BytesSet => {
            let offset = to_number(&arg(args, 1));
            let offset = if offset.is_nan() { 0.0 } else { offset };
            let source: Vec<u8> = match arg(args, 0) {
                Value::Object(id) => match &host.heap.get(id).kind {
                    ObjectKind::Bytes(b) => b.clone(),
                    ObjectKind::Array(items) => {
                        items.iter().map(|v| to_number(v) as i64 as u8).collect()
                    }
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let Value::Object(id) = this else {
                return Err(host.type_error("Uint8Array.prototype.set called on a non-typed-array"));
            };
            let ObjectKind::Bytes(dst) = &mut host.heap.get_mut(*id).kind else {
                return Err(host.type_error("Uint8Array.prototype.set called on a non-typed-array"));
            };
            let start = offset as usize;
            if offset < 0.0
                || start
                    .checked_add(source.len())
                    .is_none_or(|end| end > dst.len())
            {
                return Err(host.range_error("offset is out of bounds"));
            }
            dst[start..start + source.len()].copy_from_slice(&source);
            ret(Value::Undefined)
        }
        Native::ErrorCtor | Native::TypeErrorCtor | Native::RangeErrorCtor => {
            let proto = match native {
                Native::TypeErrorCtor => realm.type_error_proto,
                Native::RangeErrorCtor => realm.range_error_proto,
                _ => realm.error_proto,
            };
            let message = match arg(args, 0) {
                Value::Undefined => String::new(),
                v => to_js_string(host, &v),
            };
            ret(host.new_error(proto, &message))
        }
        Native::ErrorToString => match js_string(host, this) {
            Ok(text) => ret(Value::string(text)),
            Err(e) => Err(alloc_err(host, e)),
        },
        Native::DateCtor => {
            let ms = match args.first() {
                Some(v) => to_number(v),
                None => host.now_ms(),
            };
            if !construct {
                return ret(Value::string(iso_string(host.now_ms())));
            }
            let id = host
                .heap
                .alloc(crate::heap::Object::new(
                    ObjectKind::Date(ms),
                    Some(realm.date_proto),
                ))
                .map_err(|e| alloc_err(host, e))?;
            ret(Value::Object(id))
        }
        Native::DateNow => ret(host.now_ms()),
        Native::DateGetTime | Native::DateGetTimezoneOffset | Native::DateToIsoString => {
            let ms = match this {
                Value::Object(id) => match host.heap.get(*id).kind {
                    ObjectKind::Date(ms) => Some(ms),
                    _ => None,
                },
                _ => None,
            };
            let Some(ms) = ms else {
                return Err(host.type_error("this is not a Date object."));
            };
            match native {
                Native::DateGetTime => ret(ms),
                Native::DateGetTimezoneOffset => {
                    let east = host.timezone.offset_at((ms / 1000.0).floor() as i64);
                    ret(-f64::from(east / 60))
                }
                _ => {
                    if !ms.is_finite() {
                        return Err(host.range_error("Invalid time value"));
                    }
                    ret(Value::string(iso_string(ms)))
                }
            }
        }
        Native::ConsoleLog | Native::ConsoleError => {
            let mut line = args
                .iter()
                .map(|v| to_js_string(host, v))
                .collect::<Vec<_>>()
                .join(" ");
            line.push('\n');
            let sink = if native == Native::ConsoleLog {
                &mut host.stdout
            } else {
                &mut host.stderr
            };
            let _ = sink.write_all(line.as_bytes()).and_then(|_| sink.flush());
            ret(Value::Undefined)
        }
        Native::GetRandomValues => {
            let target = arg(args, 0);
            let Value::Object(id) = target else {
                return Err(
                    host.type_error("crypto.getRandomValues: argument is not a typed array")
                );
            };
            let ObjectKind::Bytes(bytes) = &mut host.heap.get_mut(id).kind else {
                return Err(host.type_error("crypto.getRandomValues: argument is not a Uint8Array"));
            };
            if bytes.len() > MAX_RANDOM_BYTES {
                let msg = format!(
                    "crypto.getRandomValues: the requested length ({}) exceeds the maximum of {MAX_RANDOM_BYTES} bytes",
                    bytes.len()
                );
                return Err(host.system_error("QuotaExceededError", &msg));
            }
            if getrandom::fill(bytes).is_err() {
                return Err(host.system_error("EIO", "the host's random source failed"));
            }
            ret(target)
        }
        Native::PerformanceNow => ret(host.clock_origin.elapsed().as_secs_f64() * 1000.0),
        Native::SetTimeout => {
            let func = arg(args, 0);
            if !is_callable(host, &func) {
                return Err(host.type_error("The \"callback\" argument must be of type function"));
            }
            let ms = to_number(&arg(args, 1));
            let ms = if ms.is_nan() || ms < 0.0 {
                0.0
            } else {
                ms.min(f64::from(i32::MAX))
            };
            let rest = args.get(2..).map(<[Value]>::to_vec).unwrap_or_default();
            match host
                .timers
                .schedule_js(Duration::from_secs_f64(ms / 1000.0), func, rest)
            {
                Ok(id) => ret(f64::from(id)),
                Err(e) => Err(host.range_error(&e.to_string())),
            }
        }
        Native::ClearTimeout => {
            let n = to_number(&arg(args, 0));
            if n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) {
                host.timers.clear(TimerId::Js(n as u32));
            }
            ret(Value::Undefined)
        }
        Native::ProcessUid => ret(f64::from(wasabi_fs::stat::guest_uid())),
        Native::ProcessGid => ret(f64::from(wasabi_fs::stat::guest_gid())),
        Native::ProcessGetgroups => Err(host.system_error("ENOSYS", "not implemented")),
        Native::ProcessUmask => {
            let old = host.umask;
            if let Value::Number(n) = arg(args, 0) {
                host.umask = (n as u32) & 0o777;
            }
            ret(f64::from(old))
        }
        Native::ProcessCwd => ret(Value::string(host.fs.cwd())),
        Native::ProcessChdir => {
            let Value::String(path) = arg(args, 0) else {
                return Err(host.type_error("The \"directory\" argument must be of type string"));
            };
            match host.fs.chdir(&path) {
                Ok(()) => ret(Value::Undefined),
                Err(e) => Err(crate::fs::fs_error(host, &e)),
            }
        }
        Native::PathResolve => {
            let parts: Vec<String> = args.iter().map(|v| to_js_string(host, v)).collect();
            ret(Value::string(resolve_path(host.fs.cwd(), &parts)))
        }
        Native::Fs(op) => crate::fs::call(host, op, args),
        Native::StatsIs(mask) => crate::fs::stats_is(host, this, mask),
        Native::Net(op) => crate::net::call(host, mem, op, args),
        Native::Fetch(op) => crate::fetch::call(host, op, this, args, construct),
        Native::MakeFuncWrapper => {
            let id = to_number(&arg(args, 0));
            if !(0.0..=f64::from(u32::MAX)).contains(&id) || id.fract() != 0.0 {
                return Err(host.type_error("_makeFuncWrapper: invalid function id"));
            }
            let f = host
                .heap
                .alloc(crate::heap::Object::new(
                    ObjectKind::Function(Callable::Go(id as u32)),
                    Some(realm.function_proto),
                ))
                .map_err(|e| alloc_err(host, e))?;
            ret(Value::Object(f))
        }
    }
}

/// `true` when `v` can be called.
pub fn is_callable(host: &GoHost, v: &Value) -> bool {
    matches!(v, Value::Object(id) if matches!(host.heap.get(*id).kind, ObjectKind::Function(_)))
}

/// The longest string the JS world makes: V8's limit on 64-bit hosts.
/// Past it, JS throws `RangeError: Invalid string length`.
pub const MAX_STRING_LEN: usize = (1 << 29) - 24;

/// How deeply arrays nested in arrays are turned into text.
const MAX_NESTING: usize = 64;

/// JS `String(v)`, for messages: never longer than [`MAX_STRING_LEN`] (the
/// text is cut there), and safe on arrays that contain themselves.
pub fn to_js_string(host: &GoHost, v: &Value) -> String {
    let mut out = String::new();
    let _ = write_js_string(host, v, &mut out, &mut Vec::new(), MAX_STRING_LEN);
    out
}

/// JS `String(v)` for a value the guest receives: the text is built only
/// while it fits in [`MAX_STRING_LEN`] and in the tenant's memory, and a
/// longer one is a `RangeError`, as in JS. An array inside itself reads as
/// empty, as `Array.prototype.join` does.
pub fn js_string(host: &GoHost, v: &Value) -> Result<String, HeapError> {
    let mut out = String::new();
    write_js_string(host, v, &mut out, &mut Vec::new(), string_room(host))?;
    Ok(out)
}

/// `items` joined by `sep` as `Array.prototype.join` does, under the same
/// bounds as [`js_string`]; `array` is the array itself, if any (so an
/// element that is the array reads as empty).
fn js_join(
    host: &GoHost,
    array: Option<ObjectId>,
    items: &[Value],
    sep: &str,
) -> Result<String, HeapError> {
    let mut out = String::new();
    let mut open: Vec<ObjectId> = array.into_iter().collect();
    write_items(host, items, sep, &mut out, &mut open, string_room(host))?;
    Ok(out)
}

/// Bytes a new string may take: the JS limit, or less if the tenant's
/// memory has less room.
fn string_room(host: &GoHost) -> usize {
    let meter = host.heap.meter();
    let room = meter
        .limit()
        .map_or(u64::MAX, |limit| limit.saturating_sub(meter.total()));
    MAX_STRING_LEN.min(usize::try_from(room).unwrap_or(usize::MAX))
}

fn push_bounded(out: &mut String, text: &str, cap: usize) -> Result<(), HeapError> {
    if out.len().saturating_add(text.len()) > cap {
        return Err(HeapError::StringLength);
    }
    out.push_str(text);
    Ok(())
}

fn write_items(
    host: &GoHost,
    items: &[Value],
    sep: &str,
    out: &mut String,
    open: &mut Vec<ObjectId>,
    cap: usize,
) -> Result<(), HeapError> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            push_bounded(out, sep, cap)?;
        }
        if !item.is_nullish() {
            write_js_string(host, item, out, open, cap)?;
        }
    }
    Ok(())
}

/// Appends `String(v)` to `out`, failing once `out` would pass `cap`.
/// `open` holds the arrays being written, outermost first.
fn write_js_string(
    host: &GoHost,
    v: &Value,
    out: &mut String,
    open: &mut Vec<ObjectId>,
    cap: usize,
) -> Result<(), HeapError> {
    let text: std::borrow::Cow<'_, str> = match v {
        Value::Undefined => "undefined".into(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string().into(),
        Value::Number(n) => number_to_string(*n).into(),
        Value::String(s) => (&**s).into(),
        Value::Object(id) => {
            let object = host.heap.get(*id);
            match &object.kind {
                ObjectKind::Array(items) => {
                    // A cycle, or nesting past any sane depth, reads as empty.
                    if open.contains(id) || open.len() >= MAX_NESTING {
                        return Ok(());
                    }
                    open.push(*id);
                    let written = write_items(host, items, ",", out, open, cap);
                    open.pop();
                    return written;
                }
                ObjectKind::Bytes(b) => {
                    for (i, byte) in b.iter().enumerate() {
                        if i > 0 {
                            push_bounded(out, ",", cap)?;
                        }
                        push_bounded(out, &byte.to_string(), cap)?;
                    }
                    return Ok(());
                }
                ObjectKind::Function(_) => "function () { [native code] }".into(),
                ObjectKind::Date(ms) => iso_string(*ms).into(),
                ObjectKind::Error => {
                    let get = |k| {
                        host.heap
                            .get_property(v, Key::Name(k))
                            .unwrap_or(Value::Undefined)
                    };
                    let name = match get("name") {
                        Value::String(s) => s.to_string(),
                        _ => "Error".into(),
                    };
                    let message = match get("message") {
                        Value::String(s) => s.to_string(),
                        _ => String::new(),
                    };
                    if message.is_empty() {
                        name.into()
                    } else {
                        format!("{name}: {message}").into()
                    }
                }
                ObjectKind::Promise(_) => "[object Promise]".into(),
                ObjectKind::Headers(_) => "[object Headers]".into(),
                ObjectKind::Ordinary | ObjectKind::Iterator { .. } | ObjectKind::Body(_) => {
                    "[object Object]".into()
                }
            }
        }
    };
    push_bounded(out, &text, cap)
}

/// JS `Number.prototype.toString()` for the shapes that matter: integers
/// without a fraction, exponents past 1e21, `NaN` and `Infinity`.
pub fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if n == 0.0 {
        return "0".into();
    }
    let abs = n.abs();
    if (1e-7..1e21).contains(&abs) {
        format!("{n}")
    } else {
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

/// `Date.prototype.toISOString`.
fn iso_string(ms: f64) -> String {
    let ms = ms as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// POSIX `path.resolve`: join the segments onto `cwd`, the last absolute
/// segment winning, with `.` and `..` folded (as the sandbox folds guest paths).
fn resolve_path(cwd: &str, segments: &[String]) -> String {
    segments
        .iter()
        .fold(cwd.to_string(), |at, segment| normalize(&at, segment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHostBuilder;
    use crate::fs::FsOp;
    use std::sync::{Arc, Mutex};

    /// An output sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn host_with_stdout() -> (GoHost, Captured) {
        let out = Captured::default();
        let host = GoHostBuilder::new()
            .stdout(Box::new(out.clone()))
            .env("TZ", "UTC+2")
            .limits(wasabi_limits::TenantLimits {
                max_object_bytes: 1 << 20,
                ..Default::default()
            })
            .build()
            .unwrap();
        (host, out)
    }

    fn bytes(host: &mut GoHost, data: &[u8]) -> Value {
        let proto = host.realm.bytes_proto;
        let id = host.heap.alloc_bytes(data.len(), proto).unwrap();
        if let ObjectKind::Bytes(b) = &mut host.heap.get_mut(id).kind {
            b.copy_from_slice(data);
        }
        Value::Object(id)
    }

    /// Some function value, to stand for a callback.
    fn callable(host: &GoHost) -> Value {
        host.heap
            .get_property(&Value::Object(host.realm.global), Key::Name("setTimeout"))
            .unwrap()
    }

    fn returned(c: Completion) -> Value {
        match c {
            Completion::Return(v) => v,
            other => panic!("expected a return, got {other:?}"),
        }
    }

    /// `a = []; a.push(a); String(a)` recursed until the host's stack
    /// overflowed. JS reads the cycle as empty.
    #[test]
    fn an_array_inside_itself_reads_as_empty() {
        let (mut host, _) = host_with_stdout();
        let id = host.new_array(Vec::new()).unwrap();
        let a = Value::Object(id);
        host.heap
            .set_property(&a, Key::Index(0), a.clone())
            .unwrap();
        host.heap
            .set_property(&a, Key::Index(1), 7.0.into())
            .unwrap();
        assert_eq!(to_js_string(&host, &a), ",7");
        assert_eq!(js_string(&host, &a).unwrap(), ",7");
        let joined = returned(call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::ArrayJoin,
            &a,
            &["-".into()],
            false,
        ));
        assert_eq!(joined, Value::from("-7"));
    }

    /// One large string repeated a million times in an array would have
    /// joined into terabytes of host memory.
    #[test]
    fn a_join_past_the_string_limit_throws_before_allocating() {
        let (mut host, _) = host_with_stdout();
        let big = Value::string("x".repeat(1 << 20));
        let id = host.new_array(vec![big; 1024]).unwrap();
        let thrown = match call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::ArrayJoin,
            &Value::Object(id),
            &[],
            false,
        ) {
            Completion::Throw(e) => to_js_string(&host, &e),
            c => panic!("a 1 GiB join succeeded: {c:?}"),
        };
        assert!(thrown.contains("Invalid string length"), "{thrown}");
    }

    /// Strings Go holds count against the tenant's memory, and are given
    /// back when Go lets them go.
    #[test]
    fn strings_go_holds_count_in_the_tenants_memory() {
        let mut host = GoHostBuilder::new()
            .limits(wasabi_limits::TenantLimits {
                max_memory: Some(64 << 20),
                ..Default::default()
            })
            .build()
            .unwrap();
        let meter = host.memory_meter();
        let before = meter.host();
        let mut kept = Vec::new();
        let mut refused = None;
        for i in 0..16 {
            let s = Value::string(format!("{i:08}").repeat(1 << 20));
            match host.table.store(&host.heap, &s) {
                Ok(r) => kept.push(r),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert_eq!(kept.len(), 7, "seven 8 MiB strings fit in 64 MiB");
        let err = refused.expect("the eighth is refused").to_string();
        assert!(err.contains("memory limit exceeded"), "{err}");
        assert!(meter.host() >= before + 7 * (8 << 20));
        for r in kept {
            assert!(host.table.finalize(r.0 as u32));
        }
        assert_eq!(meter.host(), before);
    }

    /// A `Uint8Array` only Go holds is released once written; one stored
    /// in an object is not (see `Custody`).
    #[test]
    fn a_buffer_only_go_holds_is_released_once_written() {
        let (mut host, out) = host_with_stdout();
        let new_bytes = |host: &mut GoHost| {
            returned(call_native(
                host,
                &mut GuestMemory::new(&mut []),
                Native::BytesCtor,
                &Value::Undefined,
                &[4096.0.into()],
                true,
            ))
        };
        let private = new_bytes(&mut host);
        let kept = new_bytes(&mut host);
        let holder = Value::Object(host.new_object().unwrap());
        host.heap
            .set_property(&holder, Key::Name("buf"), kept.clone())
            .unwrap();
        let before = host.heap.bytes_in_use();
        for buf in [&private, &kept] {
            call_native(
                &mut host,
                &mut GuestMemory::new(&mut []),
                Native::Fs(FsOp::WriteSync),
                &Value::Undefined,
                &[1.0.into(), buf.clone()],
                false,
            );
        }
        assert_eq!(out.0.lock().unwrap().len(), 8192, "both were written");
        let len =
            |host: &GoHost, v: &Value| host.heap.get_property(v, Key::Name("length")).unwrap();
        assert_eq!(len(&host, &private), Value::Number(0.0), "released");
        assert_eq!(len(&host, &kept), Value::Number(4096.0), "still readable");
        assert_eq!(host.heap.bytes_in_use(), before - 4096);
    }

    #[test]
    fn write_sync_writes_to_stdout_and_returns_the_length() {
        let (mut host, out) = host_with_stdout();
        let buf = bytes(&mut host, b"hi\n");
        let n = returned(call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::Fs(FsOp::WriteSync),
            &Value::Undefined,
            &[1.0.into(), buf],
            false,
        ));
        assert_eq!(n, Value::Number(3.0));
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hi\n");
    }

    #[test]
    fn fs_write_ends_by_calling_back_with_the_count() {
        let (mut host, _) = host_with_stdout();
        let buf = bytes(&mut host, b"abcdef");
        let cb = callable(&host);
        let args = [
            1.0.into(),
            buf,
            2.0.into(),
            3.0.into(),
            Value::Null,
            cb.clone(),
        ];
        match call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::Fs(FsOp::Write),
            &Value::Undefined,
            &args,
            false,
        ) {
            Completion::Return(Value::Undefined) => {
                // Called back in a later turn, as Node.js does.
                let (func, args) = host.completions.pop_front().expect("a queued callback");
                assert_eq!(func, cb);
                assert_eq!(args, vec![Value::Null, Value::Number(3.0)]);
            }
            other => panic!("expected a queued callback, got {other:?}"),
        }
    }

    /// A queued fs callback's arguments are roots: the error object must
    /// survive a collection before its turn comes (it did not, and Go
    /// panicked on an object with no `code`).
    #[test]
    fn a_queued_callback_keeps_its_arguments_alive() {
        let (mut host, _) = host_with_stdout();
        let args = [
            Value::from("/nope"),
            0.0.into(),
            0.0.into(),
            callable(&host),
        ];
        call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::Fs(FsOp::Open),
            &Value::Undefined,
            &args,
            false,
        );
        for _ in 0..5000 {
            host.new_object().unwrap();
        }
        host.maybe_collect();
        for _ in 0..100 {
            host.new_object().unwrap();
        }
        let (_, args) = host.completions.pop_front().expect("a queued callback");
        let code = host.heap.get_property(&args[0], Key::Name("code")).unwrap();
        assert_eq!(code, Value::from("ENOENT"));
    }

    #[test]
    fn without_mounts_no_file_exists() {
        let (mut host, _) = host_with_stdout();
        let args = [
            Value::from("/etc/passwd"),
            0.0.into(),
            0.0.into(),
            callable(&host),
        ];
        let Completion::Return(Value::Undefined) = call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::Fs(FsOp::Open),
            &Value::Undefined,
            &args,
            false,
        ) else {
            panic!("expected a queued callback");
        };
        let (_, args) = host.completions.pop_front().expect("a queued callback");
        let code = host.heap.get_property(&args[0], Key::Name("code")).unwrap();
        assert_eq!(code, Value::from("ENOENT"));
    }

    #[test]
    fn huge_typed_arrays_throw_instead_of_allocating() {
        let (mut host, _) = host_with_stdout();
        let c = call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::BytesCtor,
            &Value::Undefined,
            &[Value::Number(1e15)],
            true,
        );
        let Completion::Throw(err) = c else {
            panic!("expected a RangeError, got {c:?}");
        };
        assert!(to_js_string(&host, &err).starts_with("RangeError: out of memory for JS objects"));
        let c = call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::BytesCtor,
            &Value::Undefined,
            &[Value::Number(-1.0)],
            true,
        );
        assert!(matches!(c, Completion::Throw(_)));
    }

    #[test]
    fn dates_use_the_tenant_time_zone() {
        let (mut host, _) = host_with_stdout();
        let date = returned(call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::DateCtor,
            &Value::Undefined,
            &[0.0.into()],
            true,
        ));
        let offset = returned(call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::DateGetTimezoneOffset,
            &date,
            &[],
            false,
        ));
        assert_eq!(offset, Value::Number(-120.0));
        let c = call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::DateGetTime,
            &Value::from("not a date"),
            &[],
            false,
        );
        assert!(matches!(c, Completion::Throw(_)));
    }

    #[test]
    fn set_timeout_needs_a_function_and_clear_timeout_cancels() {
        let (mut host, _) = host_with_stdout();
        let c = call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::SetTimeout,
            &Value::Undefined,
            &[Value::Null, 5.0.into()],
            false,
        );
        assert!(matches!(c, Completion::Throw(_)));
        let log = host
            .heap
            .get_property(&Value::Object(host.realm.global), Key::Name("setTimeout"))
            .unwrap();
        let id = returned(call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::SetTimeout,
            &Value::Undefined,
            &[log, 5.0.into()],
            false,
        ));
        assert_eq!(host.timers.len(), 1);
        call_native(
            &mut host,
            &mut GuestMemory::new(&mut []),
            Native::ClearTimeout,
            &Value::Undefined,
            &[id],
            false,
        );
        assert!(host.timers.is_empty());
    }

    #[test]
    fn unreachable_objects_are_collected_and_referenced_ones_kept() {
        let (mut host, _) = host_with_stdout();
        let baseline = host.heap.len();
        let kept = host.new_object().unwrap();
        let r = host.table.store(&host.heap, &Value::Object(kept)).unwrap();
        for _ in 0..5000 {
            host.new_object().unwrap();
        }
        host.maybe_collect();
        assert_eq!(host.heap.len(), baseline + 1);
        assert_eq!(host.table.load(r).unwrap(), Value::Object(kept));
    }

    #[test]
    fn numbers_print_like_js() {
        assert_eq!(number_to_string(1.0), "1");
        assert_eq!(number_to_string(-2.5), "-2.5");
        assert_eq!(number_to_string(1e21), "1e+21");
        assert_eq!(number_to_string(f64::NAN), "NaN");
        assert_eq!(number_to_string(123456789.0), "123456789");
    }

    #[test]
    fn iso_dates_are_gregorian() {
        assert_eq!(iso_string(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_string(1_709_210_096_789.0), "2024-02-29T12:34:56.789Z");
        assert_eq!(iso_string(-1.0), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn paths_resolve_posix_style() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(resolve_path("/", &s(&["a/b", "../c"])), "/a/c");
        assert_eq!(resolve_path("/x", &s(&["/abs", "./d"])), "/abs/d");
        assert_eq!(resolve_path("/", &s(&["../../.."])), "/");
    }
}

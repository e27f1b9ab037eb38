//! The dispatch and the globals, called directly on a whole host.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;
use crate::GoHostBuilder;
use crate::globals::Completion;
use crate::globals::fs::FsOp;
use crate::globals::path::resolve_path;
use crate::heap::{Key, ObjectKind};
use crate::strings::{iso_string, js_string, number_to_string, to_js_string};

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
    let proto = host.js.realm.bytes_proto;
    let id = host.js.heap.alloc_bytes(data.len(), proto).unwrap();
    if let ObjectKind::Bytes(b) = &mut host.js.heap.get_mut(id).kind {
        b.copy_from_slice(data);
    }
    Value::Object(id)
}

/// Some function value, to stand for a callback.
fn callable(host: &GoHost) -> Value {
    host.js
        .heap
        .get_property(
            &Value::Object(host.js.realm.global),
            Key::Name("setTimeout"),
        )
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
    let id = host.js.new_array(Vec::new()).unwrap();
    let a = Value::Object(id);
    host.js
        .heap
        .set_property(&a, Key::Index(0), a.clone())
        .unwrap();
    host.js
        .heap
        .set_property(&a, Key::Index(1), 7.0.into())
        .unwrap();
    assert_eq!(to_js_string(&host.js.heap, &a), ",7");
    assert_eq!(js_string(&host.js.heap, &a).unwrap(), ",7");
    let joined = returned(call_native(
        &mut host,
        Native::Array(super::array::Op::Join),
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
    let id = host.js.new_array(vec![big; 1024]).unwrap();
    let thrown = match call_native(
        &mut host,
        Native::Array(super::array::Op::Join),
        &Value::Object(id),
        &[],
        false,
    ) {
        Completion::Throw(e) => to_js_string(&host.js.heap, &e),
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
        match host.table.store(&host.js.heap, &s) {
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
            Native::Bytes(super::bytes::Op::Ctor),
            &Value::Undefined,
            &[4096.0.into()],
            true,
        ))
    };
    let private = new_bytes(&mut host);
    let kept = new_bytes(&mut host);
    let holder = Value::Object(host.js.new_object().unwrap());
    host.js
        .heap
        .set_property(&holder, Key::Name("buf"), kept.clone())
        .unwrap();
    let before = host.js.heap.bytes_in_use();
    for buf in [&private, &kept] {
        call_native(
            &mut host,
            Native::Fs(FsOp::WriteSync),
            &Value::Undefined,
            &[1.0.into(), buf.clone()],
            false,
        );
    }
    assert_eq!(out.0.lock().unwrap().len(), 8192, "both were written");
    let len = |host: &GoHost, v: &Value| host.js.heap.get_property(v, Key::Name("length")).unwrap();
    assert_eq!(len(&host, &private), Value::Number(0.0), "released");
    assert_eq!(len(&host, &kept), Value::Number(4096.0), "still readable");
    assert_eq!(host.js.heap.bytes_in_use(), before - 4096);
}

#[test]
fn write_sync_writes_to_stdout_and_returns_the_length() {
    let (mut host, out) = host_with_stdout();
    let buf = bytes(&mut host, b"hi\n");
    let n = returned(call_native(
        &mut host,
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
        Native::Fs(FsOp::Write),
        &Value::Undefined,
        &args,
        false,
    ) {
        Completion::Return(Value::Undefined) => {
            // Called back in a later turn, as Node.js does.
            let (func, args) = host.js.completions.pop_front().expect("a queued callback");
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
        Native::Fs(FsOp::Open),
        &Value::Undefined,
        &args,
        false,
    );
    for _ in 0..5000 {
        host.js.new_object().unwrap();
    }
    host.maybe_collect();
    for _ in 0..100 {
        host.js.new_object().unwrap();
    }
    let (_, args) = host.js.completions.pop_front().expect("a queued callback");
    let code = host
        .js
        .heap
        .get_property(&args[0], Key::Name("code"))
        .unwrap();
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
        Native::Fs(FsOp::Open),
        &Value::Undefined,
        &args,
        false,
    ) else {
        panic!("expected a queued callback");
    };
    let (_, args) = host.js.completions.pop_front().expect("a queued callback");
    let code = host
        .js
        .heap
        .get_property(&args[0], Key::Name("code"))
        .unwrap();
    assert_eq!(code, Value::from("ENOENT"));
}

#[test]
fn huge_typed_arrays_throw_instead_of_allocating() {
    let (mut host, _) = host_with_stdout();
    let c = call_native(
        &mut host,
        Native::Bytes(super::bytes::Op::Ctor),
        &Value::Undefined,
        &[Value::Number(1e15)],
        true,
    );
    let Completion::Throw(err) = c else {
        panic!("expected a RangeError, got {c:?}");
    };
    assert!(
        to_js_string(&host.js.heap, &err).starts_with("RangeError: out of memory for JS objects")
    );
    let c = call_native(
        &mut host,
        Native::Bytes(super::bytes::Op::Ctor),
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
        Native::Date(super::date::Op::Ctor),
        &Value::Undefined,
        &[0.0.into()],
        true,
    ));
    let offset = returned(call_native(
        &mut host,
        Native::Date(super::date::Op::GetTimezoneOffset),
        &date,
        &[],
        false,
    ));
    assert_eq!(offset, Value::Number(-120.0));
    let c = call_native(
        &mut host,
        Native::Date(super::date::Op::GetTime),
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
        Native::Timers(super::timers::Op::SetTimeout),
        &Value::Undefined,
        &[Value::Null, 5.0.into()],
        false,
    );
    assert!(matches!(c, Completion::Throw(_)));
    let log = host
        .js
        .heap
        .get_property(
            &Value::Object(host.js.realm.global),
            Key::Name("setTimeout"),
        )
        .unwrap();
    let id = returned(call_native(
        &mut host,
        Native::Timers(super::timers::Op::SetTimeout),
        &Value::Undefined,
        &[log, 5.0.into()],
        false,
    ));
    assert_eq!(host.timers.len(), 1);
    call_native(
        &mut host,
        Native::Timers(super::timers::Op::ClearTimeout),
        &Value::Undefined,
        &[id],
        false,
    );
    assert!(host.timers.is_empty());
}

#[test]
fn unreachable_objects_are_collected_and_referenced_ones_kept() {
    let (mut host, _) = host_with_stdout();
    let baseline = host.js.heap.len();
    let kept = host.js.new_object().unwrap();
    let r = host
        .table
        .store(&host.js.heap, &Value::Object(kept))
        .unwrap();
    for _ in 0..5000 {
        host.js.new_object().unwrap();
    }
    host.maybe_collect();
    assert_eq!(host.js.heap.len(), baseline + 1);
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

/// A guest flooding `setTimeout` stops at its timer cap with a
/// `RangeError` that says how to raise it, and nothing past the cap is
/// queued.
#[test]
fn a_timer_flood_stops_at_the_cap_with_advice() {
    #[derive(Debug)]
    struct Flags;
    impl wasabi_limits::Advice for Flags {
        fn raise(&self, cap: wasabi_limits::Cap) -> Option<String> {
            Some(format!("raise {cap}"))
        }
    }
    let mut host = GoHostBuilder::new()
        .limits(wasabi_limits::TenantLimits {
            max_timers: 3,
            ..Default::default()
        })
        .advice(Arc::new(Flags))
        .build()
        .unwrap();
    let f = host
        .js
        .heap
        .get_property(
            &Value::Object(host.js.realm.global),
            Key::Name("setTimeout"),
        )
        .unwrap();
    let mut thrown = None;
    for _ in 0..1000 {
        let c = call_native(
            &mut host,
            Native::Timers(super::timers::Op::SetTimeout),
            &Value::Undefined,
            &[f.clone(), 1e9.into()],
            false,
        );
        if let Completion::Throw(e) = c {
            thrown = Some(to_js_string(&host.js.heap, &e));
            break;
        }
    }
    assert_eq!(host.timers.len(), 3);
    let thrown = thrown.expect("the fourth timer is refused");
    assert_eq!(
        thrown,
        "RangeError: too many pending timers (limit 3): raise timers"
    );
}

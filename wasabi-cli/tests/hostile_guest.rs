//! Hand-written modules that break the Go js/wasm ABI on purpose: bad
//! pointers, unknown reference ids, huge lengths, missing exports. Each ends
//! that guest with a clear trap or error; none crashes the host.

mod support;

use support::*;

/// Builds a module that imports a few `gojs` functions and runs `body` as
/// its `run` export. Go's stack pointer is 1024 by convention here.
fn guest(name: &str, body: &str) -> std::path::PathBuf {
    let wat = format!(
        r#"(module
          (import "gojs" "syscall/js.valueGet" (func $valueGet (param i32)))
          (import "gojs" "syscall/js.valueCall" (func $valueCall (param i32)))
          (import "gojs" "syscall/js.finalizeRef" (func $finalizeRef (param i32)))
          (import "gojs" "syscall/js.copyBytesToGo" (func $copyBytesToGo (param i32)))
          (import "gojs" "runtime.wasmExit" (func $exit (param i32)))
          (memory (export "mem") 1)
          (func $run (export "run") (param i32 i32) {body})
          (func (export "resume"))
          (func (export "getsp") (result i32) (i32.const 1024)))"#
    );
    let path = scratch(name).join("guest.wasm");
    std::fs::write(&path, wat::parse_str(&wat).expect("valid wat")).unwrap();
    path
}

/// `i64` reference word for table id `id` with the object type flag.
fn object_ref(id: u32) -> i64 {
    (0x7FF8_0001_i64 << 32) | i64::from(id)
}

fn assert_trap(out: &std::process::Output, reason: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(134), "{err}");
    assert!(err.starts_with("wasabi: trap: "), "{err}");
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}

#[test]
fn a_stack_pointer_outside_memory_traps() {
    let path = guest("bad-sp", "(call $valueGet (i32.const -16))");
    assert_trap(
        &run_no_cache(&path),
        "syscall/js.valueGet: out-of-bounds guest memory access",
    );
}

#[test]
fn an_unknown_reference_id_traps() {
    let body = format!(
        "(i64.store (i32.const 1032) (i64.const {})) (call $valueGet (i32.const 1024))",
        object_ref(999_999)
    );
    assert_trap(
        &run_no_cache(&guest("unknown-id", &body)),
        "unknown JS value reference id 999999",
    );
}

#[test]
fn reading_a_property_of_undefined_is_a_type_error() {
    let body = "(i64.store (i32.const 1032) (i64.const 0)) (call $valueGet (i32.const 1024))";
    assert_trap(
        &run_no_cache(&guest("undefined-get", body)),
        "TypeError: Cannot read properties of undefined",
    );
}

#[test]
fn a_huge_string_length_traps() {
    let body = format!(
        "(i64.store (i32.const 1032) (i64.const {})) \
         (i64.store (i32.const 1040) (i64.const 16)) \
         (i64.store (i32.const 1048) (i64.const 0x7fffffffffff)) \
         (call $valueGet (i32.const 1024))",
        object_ref(5)
    );
    assert_trap(
        &run_no_cache(&guest("huge-len", &body)),
        "out-of-bounds guest memory access",
    );
}

#[test]
fn a_huge_argument_count_traps() {
    // valueCall(global, "x", args[0x10000000000]): the args slice runs past memory.
    let body = format!(
        "(i64.store (i32.const 1032) (i64.const {})) \
         (i64.store (i32.const 1056) (i64.const 0)) \
         (i64.store (i32.const 1064) (i64.const 0x10000000000)) \
         (call $valueCall (i32.const 1024))",
        object_ref(5)
    );
    assert_trap(
        &run_no_cache(&guest("huge-args", &body)),
        "out-of-bounds guest memory access",
    );
}

#[test]
fn copying_into_a_slice_past_memory_traps() {
    let body = "(i64.store (i32.const 1032) (i64.const 0xfff0)) \
                (i64.store (i32.const 1040) (i64.const 0x100000)) \
                (call $copyBytesToGo (i32.const 1024))";
    assert_trap(
        &run_no_cache(&guest("copy-oob", body)),
        "out-of-bounds guest memory access",
    );
}

#[test]
fn finalizing_unknown_ids_is_harmless_and_exit_codes_are_read() {
    let body = "(i32.store (i32.const 1032) (i32.const 77777)) \
                (call $finalizeRef (i32.const 1024)) \
                (i32.store (i32.const 1032) (i32.const 5)) \
                (call $finalizeRef (i32.const 1024)) \
                (i32.store (i32.const 1032) (i32.const 42)) \
                (call $exit (i32.const 1024))";
    let out = run_no_cache(&guest("finalize", body));
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
}

#[test]
fn a_wasm_trap_reports_a_backtrace() {
    let out = run_no_cache(&guest("unreachable", "unreachable"));
    assert_trap(&out, "unreachable");
    assert!(
        stderr(&out).contains("run"),
        "backtrace names the function: {}",
        stderr(&out)
    );
}

#[test]
fn wrong_import_signatures_and_unknown_imports_are_refused() {
    let dir = scratch("bad-imports");
    let cases = [
        (
            "signature.wasm",
            r#"(module (import "gojs" "runtime.wasmExit" (func (param i64))) (memory (export "mem") 1))"#,
            "runtime.wasmExit",
        ),
        (
            "unknown.wasm",
            r#"(module (import "gojs" "runtime.launchMissiles" (func (param i32))) (memory (export "mem") 1))"#,
            "runtime.launchMissiles",
        ),
    ];
    for (file, wat, needle) in cases {
        let path = dir.join(file);
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        let out = run_no_cache(&path);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    }
}

#[test]
fn missing_go_exports_are_named() {
    let dir = scratch("missing-export");
    let path = dir.join("noexports.wasm");
    let wat = r#"(module (import "gojs" "debug" (func (param i32))) (memory (export "mem") 1) (func (export "run") (param i32 i32)))"#;
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    let out = run_no_cache(&path);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("missing export `resume`"),
        "{}",
        stderr(&out)
    );
}

/// The probe kept 24 strings of 64 MiB under `--max-memory 256MiB` and
/// reached 1.7 GiB of host memory. Host memory a guest causes counts with
/// its linear memory against one limit; breaking it ends the guest as
/// growing linear memory past it does.
#[test]
fn host_memory_counts_against_the_memory_limit() {
    for (what, expect_host) in [("strings", 128u64 << 20), ("arrays", 240 << 20)] {
        let out = run_guest(
            &program("host-hog.wasm"),
            &["--max-memory", "256MiB"],
            &[what],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(134), "{what}: {err}");
        assert!(err.contains("memory limit exceeded"), "{what}: {err}");
        assert!(err.contains("of host objects and strings"), "{what}: {err}");
        assert!(err.contains("its limit is 256 MiB"), "{what}: {err}");
        assert!(!stdout(&out).contains("kept"), "{what} kept everything");
        // It was stopped near the limit, not far past it.
        let held: u64 = stdout(&out)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .max()
            .unwrap_or(0);
        let each: u64 = if what == "strings" {
            64 << 20
        } else {
            16 << 20
        };
        assert!(held * each <= 256 << 20, "{what}: held {held}");
        assert!(
            held * each >= expect_host - each,
            "{what}: held only {held}"
        );
    }
}

/// `a = []; a.push(a); a.join()` recursed until the host's stack
/// overflowed. JS reads the cycle as empty.
#[test]
fn an_array_inside_itself_does_not_crash_the_host() {
    let out = run_guest(&program("host-hog.wasm"), &[], &["cycle"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "join: \"-7\"\n");
}

/// A module whose wasm `start` function loops ran before metering began:
/// it used a whole core under `--max-cpu 0.2`. Instantiation is guest code
/// too, metered and throttled.
#[test]
fn a_looping_start_function_is_held_to_its_cpu_share() {
    let wat = r#"(module
      (import "gojs" "runtime.wasmExit" (func $exit (param i32)))
      (memory (export "mem") 1)
      (func $spin (local i64)
        (loop $again
          (local.set 0 (i64.add (local.get 0) (i64.const 1)))
          (br_if $again (i64.ne (local.get 0) (i64.const 0x7fffffffffff)))))
      (start $spin)
      (func (export "run") (param i32 i32))
      (func (export "resume"))
      (func (export "getsp") (result i32) (i32.const 1024)))"#;
    let path = scratch("start-spin").join("guest.wasm");
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    let wall = std::time::Duration::from_secs(2);
    let used = support::cpu_used_under_share(&path, "0.2", wall);
    // A fifth of the wall time, the initial burst credit, and startup.
    assert!(
        used < std::time::Duration::from_millis(900),
        "the start function used {used:?} of CPU in {wall:?} under --max-cpu 0.2"
    );
}

/// A module that calls the companion's own imports (module `wasabi`) with
/// `body` as its `run`, exiting with the i32 `body` leaves.
fn companion_guest(name: &str, body: &str) -> std::path::PathBuf {
    let wat = format!(
        r#"(module
          (import "gojs" "runtime.wasmExit" (func $exit (param i32)))
          (import "wasabi" "http_serve" (func $serve (param i32) (result i32)))
          (import "wasabi" "http_next" (func $next (param i32 i32) (result i64)))
          (import "wasabi" "http_head" (func $head (param i32 i32 i32) (result i32)))
          (import "wasabi" "http_read" (func $read (param i32 i32 i32) (result i32)))
          (import "wasabi" "http_respond" (func $respond (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
          (import "wasabi" "http_write" (func $write (param i32 i32 i32) (result i32)))
          (import "wasabi" "http_finish" (func $finish (param i32 i32 i32) (result i32)))
          (import "wasabi" "http_abort" (func $abort (param i32) (result i32)))
          (import "wasabi" "poll" (func $poll (param i32 i32) (result i32)))
          (import "wasabi" "last_error" (func $last_error (param i32 i32) (result i32)))
          (import "wasabi" "sock_listen" (func $listen (param i32 i32 i32 i32) (result i32)))
          (import "wasabi" "sock_dial" (func $dial (param i32 i32 i32 i32) (result i32)))
          (import "wasabi" "sock_connected" (func $connected (param i32) (result i32)))
          (import "wasabi" "sock_accept" (func $accept (param i32) (result i32)))
          (import "wasabi" "sock_read" (func $sock_read (param i32 i32 i32) (result i32)))
          (import "wasabi" "sock_write" (func $sock_write (param i32 i32 i32) (result i32)))
          (import "wasabi" "sock_close_write" (func $close_write (param i32) (result i32)))
          (import "wasabi" "sock_close" (func $close (param i32) (result i32)))
          (import "wasabi" "sock_addr" (func $sock_addr (param i32 i32 i32 i32) (result i32)))
          (memory (export "mem") 1)
          (data (i32.const 2048) "udp")
          (data (i32.const 2056) "tcp")
          (data (i32.const 2064) "10.0.0.1:80")
          (data (i32.const 2080) "127.0.0.1:0")
          (data (i32.const 2096) "tcp\ff")
          (func $run (export "run") (param i32 i32)
            (i32.store (i32.const 1032) {body})
            (call $exit (i32.const 1024)))
          (func (export "resume"))
          (func (export "getsp") (result i32) (i32.const 1024)))"#
    );
    let path = scratch(name).join("guest.wasm");
    std::fs::write(&path, wat::parse_str(&wat).expect("valid wat")).unwrap();
    path
}

#[test]
fn companion_calls_on_requests_that_do_not_exist_fail_without_harm() {
    // Every call names a request, a listener or a head that is not there:
    // each returns FAILED (-4), nothing traps, and the sum is checked.
    let body = "(i32.add (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add
        (call $read (i32.const 777) (i32.const 0) (i32.const 10))
        (call $respond (i32.const 1) (i32.const 200) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)))
        (call $respond (i32.const 1) (i32.const 99) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)))
        (call $write (i32.const 9) (i32.const 0) (i32.const 4)))
        (call $finish (i32.const 9) (i32.const 0) (i32.const 0)))
        (call $abort (i32.const 5)))
        (call $serve (i32.const 42)))
        (call $head (i32.const 3) (i32.const 0) (i32.const 10)))";
    // 8 calls at -4 each, plus nothing queued (0) and no tokens (0).
    let body = format!(
        "(i32.add (i32.add (i32.const 32) {body})
            (i32.add (i32.wrap_i64 (call $next (i32.const 0) (i32.const 64)))
                     (call $poll (i32.const 0) (i32.const -1))))"
    );
    let out = run_no_cache(&companion_guest("companion-unknown", &body));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A check for a companion guest's body: 1 when `call` does not return
/// `expected`, else 0.
fn mismatch(call: &str, expected: i32) -> String {
    format!("(i32.ne {call} (i32.const {expected}))")
}

#[test]
fn companion_socket_calls_on_what_is_not_theirs_fail_with_their_errno() {
    // A failure is -(256 + errno): EBADF 9, EAFNOSUPPORT 97, EACCES 13,
    // EINVAL 22. The guest exits with the number of calls that did not
    // fail as expected.
    let checks = [
        (
            "(call $sock_read (i32.const 777) (i32.const 0) (i32.const 10))",
            -265,
        ),
        (
            "(call $sock_write (i32.const -1) (i32.const 0) (i32.const 4))",
            -265,
        ),
        ("(call $accept (i32.const 5))", -265),
        ("(call $connected (i32.const 3))", -265),
        ("(call $close (i32.const 9))", -265),
        ("(call $close_write (i32.const 9))", -265),
        (
            "(call $sock_addr (i32.const 9) (i32.const 1) (i32.const 0) (i32.const 64))",
            -265,
        ),
        // UDP; a connection the policy does not grant; a 100 kB address;
        // a network name that is not UTF-8.
        (
            "(call $listen (i32.const 2048) (i32.const 3) (i32.const 2080) (i32.const 11))",
            -353,
        ),
        (
            "(call $dial (i32.const 2056) (i32.const 3) (i32.const 2064) (i32.const 11))",
            -269,
        ),
        (
            "(call $listen (i32.const 2056) (i32.const 3) (i32.const 0) (i32.const 100000))",
            -278,
        ),
        (
            "(call $dial (i32.const 2096) (i32.const 4) (i32.const 2064) (i32.const 11))",
            -278,
        ),
        // The denial's message says how to grant it.
        (
            "(i32.gt_u (call $last_error (i32.const 4096) (i32.const 1024)) (i32.const 0))",
            1,
        ),
    ];
    let body = checks
        .iter()
        .map(|(call, expected)| mismatch(call, *expected))
        .reduce(|sum, one| format!("(i32.add {sum} {one})"))
        .unwrap();
    let out = run_no_cache(&companion_guest("companion-sockets-unknown", &body));
    assert_eq!(
        out.status.code(),
        Some(0),
        "calls that did not fail as expected: {}",
        stderr(&out)
    );
}

#[test]
fn companion_calls_with_addresses_outside_memory_trap() {
    for (name, call, import) in [
        (
            "companion-read-oob",
            "(call $read (i32.const 1) (i32.const 65530) (i32.const 100))",
            "wasabi.http_read",
        ),
        (
            "companion-respond-oob",
            "(call $respond (i32.const 1) (i32.const 200) (i32.const -8) (i32.const 64) (i32.const 0) (i32.const 0) (i32.const 1))",
            "wasabi.http_respond",
        ),
        (
            "companion-sock-read-oob",
            "(call $sock_read (i32.const 1) (i32.const 65530) (i32.const 100))",
            "wasabi.sock_read",
        ),
        (
            "companion-sock-listen-oob",
            "(call $listen (i32.const 65534) (i32.const 3) (i32.const 2080) (i32.const 11))",
            "wasabi.sock_listen",
        ),
        (
            "companion-error-oob",
            // Make a message first, then ask for it past the end.
            "(drop (call $abort (i32.const 5))) (call $last_error (i32.const 65535) (i32.const 4096))",
            "wasabi.last_error",
        ),
    ] {
        let body = format!("(block (result i32) {call})");
        let out = run_no_cache(&companion_guest(name, &body));
        assert_trap(
            &out,
            &format!("{import}: out-of-bounds guest memory access"),
        );
    }
}

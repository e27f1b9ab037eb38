//! Every example program under Wasabi behaves as it does natively: same
//! standard output, same exit code, and Go's own failure reports.

mod support;

use support::*;

/// Runs `name` under Wasabi and natively with the same arguments and
/// environment, and checks stdout, stderr and exit codes agree.
fn same_as_native(name: &str, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    same_build_as_native(&format!("{name}.wasm"), name, env, args)
}

/// [`same_as_native`] for the build `wasm` of program `name` (its js/wasm
/// build, or `wasip1/NAME.wasm`).
fn same_build_as_native(
    wasm: &str,
    name: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut flags = Vec::new();
    let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &pairs {
        flags.push("--env");
        flags.push(pair.as_str());
    }
    let guest = run_guest(&program(wasm), &flags, args);
    let native = run_native(name, env, args);
    assert_eq!(stdout(&guest), stdout(&native), "stdout of {name} {args:?}");
    assert_eq!(stderr(&guest), stderr(&native), "stderr of {name} {args:?}");
    assert_eq!(
        guest.status.code(),
        native.status.code(),
        "exit code of {name} {args:?}"
    );
    guest
}

#[test]
fn hello_matches_native() {
    let out = same_as_native("hello", &[], &[]);
    assert_eq!(stdout(&out), "Hello from Go, running inside Wasabi!\n");
}

#[test]
fn args_and_env_pass_through_and_nothing_else() {
    let out = same_as_native("args-env", &[], &["one", "two words", "", "ünïcödé"]);
    assert!(
        stdout(&out).contains("env: 0\n"),
        "no environment leaks by default"
    );
    let out = same_as_native("args-env", &[("GREETING", "hi"), ("TZ", "UTC")], &["fail"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("GREETING set=true value=\"hi\""));
}

#[test]
fn env_flag_without_value_inherits_that_one_variable() {
    warm(&program("args-env.wasm"));
    let mut cmd = wasabi();
    cmd.env("WASABI_TEST_INHERITED", "from the host")
        .env("WASABI_TEST_NOT_PASSED", "secret")
        .args(["run", "--cache-dir"])
        .arg(cache_dir())
        .args(["--env", "WASABI_TEST_INHERITED"])
        .arg(program("args-env.wasm"));
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("WASABI_TEST_INHERITED=from the host"));
    assert!(!stdout(&out).contains("secret"));

    let mut cmd = wasabi();
    cmd.args(["run", "--env", "WASABI_TEST_SURELY_UNSET"])
        .arg(program("args-env.wasm"));
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the host has no variable `WASABI_TEST_SURELY_UNSET`"));
}

#[test]
fn timers_goroutines_select_and_context_match_native() {
    // One P natively, like the single-threaded guest: ready goroutines then
    // run in the order their timers fired, whatever the machine's load.
    let out = same_as_native("timers", &[("GOMAXPROCS", "1")], &[]);
    assert!(stdout(&out).ends_with("done\n"));
}

#[test]
fn go_wasip1_builds_match_native() {
    // The same programs built with GOOS=wasip1 run as WASI commands.
    // (program, environment, arguments, exit code)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], i32);
    let cases: &[Case] = &[
        ("hello", &[], &[], 0),
        ("args-env", &[], &["one", "two words", "", "ünïcödé"], 0),
        (
            "args-env",
            &[("GREETING", "hi"), ("TZ", "UTC")],
            &["fail"],
            3,
        ),
        ("timers", &[("GOMAXPROCS", "1")], &[], 0),
        ("cpu-bound", &[], &[], 0),
        ("panic-exit", &[], &["exit", "7"], 7),
    ];
    for (name, env, args, code) in cases {
        let out = same_build_as_native(&format!("wasip1/{name}.wasm"), name, env, args);
        assert_eq!(out.status.code(), Some(*code), "{name} {args:?}");
    }
}

#[test]
fn cpu_bound_results_match_native() {
    same_as_native("cpu-bound", &[], &[]);
}

#[test]
fn os_exit_codes_come_through() {
    for code in ["0", "1", "7", "125"] {
        let out = same_as_native("panic-exit", &[], &["exit", code]);
        assert_eq!(out.status.code(), Some(code.parse().unwrap()));
    }
}

/// The first lines of Go's failure report; what follows (goroutine traces)
/// names wasm or native frames and differs by platform.
fn report_head(err: &str, lines: usize) -> String {
    err.lines().take(lines).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_go_panic_exits_2_with_go_s_own_report() {
    let guest = run_guest(&program("panic-exit.wasm"), &[], &["panic"]);
    let native = run_native("panic-exit", &[], &["panic"]);
    assert_eq!(guest.status.code(), Some(2));
    assert_eq!(native.status.code(), Some(2));
    assert_eq!(stdout(&guest), stdout(&native));
    assert_eq!(
        report_head(&stderr(&guest), 3),
        report_head(&stderr(&native), 3)
    );
    assert!(
        stderr(&guest)
            .contains("panic: something went badly wrong\n\ngoroutine 1 [running]:\nmain.main()")
    );
}

#[test]
fn a_nil_dereference_is_a_go_panic_not_a_trap() {
    let guest = run_guest(&program("panic-exit.wasm"), &[], &["nil"]);
    assert_eq!(guest.status.code(), Some(2));
    let native = run_native("panic-exit", &[], &["nil"]);
    assert_eq!(
        report_head(&stderr(&guest), 1),
        report_head(&stderr(&native), 1)
    );
}

#[test]
fn a_deadlocked_program_exits_2_and_says_so() {
    let guest = run_guest(&program("panic-exit.wasm"), &[], &["deadlock"]);
    let native = run_native("panic-exit", &[], &["deadlock"]);
    assert_eq!(guest.status.code(), Some(2));
    assert_eq!(native.status.code(), Some(2));
    assert_eq!(
        report_head(&stderr(&guest), 1),
        "fatal error: all goroutines are asleep - deadlock!"
    );
    assert_eq!(
        report_head(&stderr(&guest), 1),
        report_head(&stderr(&native), 1)
    );
}

#[test]
fn js_interop_matches_its_expected_output() {
    let out = run_guest(&program("js-interop.wasm"), &[], &[]);
    let expected = std::fs::read_to_string(root().join("programs/js-interop/expected.txt"))
        .expect("programs/js-interop/expected.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), expected);
    assert_eq!(stderr(&out), "console.error goes to stderr\n");
}

#[test]
fn the_tz_variable_sets_the_local_zone() {
    // Go derives time.Local from Date's offset; a fixed-offset TZ shows in it.
    let out = run_guest(&program("js-interop.wasm"), &["--env", "TZ=UTC+2"], &[]);
    assert!(stdout(&out).contains("offset: -120\n"), "{}", stdout(&out));
}

#[test]
fn a_go_1_19_module_uses_the_legacy_abi() {
    let out = run_guest(&program("legacy/hello.wasm"), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello from Go, running inside Wasabi!\n");
}

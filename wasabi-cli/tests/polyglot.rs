//! WASI guests in other languages, built here from source by
//! `cargo xtask build-examples` (see xtask/src/polyglot.rs): a C program
//! (clang, wasi-libc), a Rust program (rustc's wasm32-wasi standard
//! library) and an AssemblyScript one. Each is compared with its native
//! build (C, Rust) or with the output it must print (AssemblyScript), and
//! the C and Rust ones serve HTTP on the listener Wasabi opens for a
//! preview-1 program before it starts, to a real client (curl).

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{free_port, program, run_guest, scratch, stderr, stdout};

/// The native build, with only `env` for an environment (as a guest gets).
fn native(name: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(program(&format!("native/{name}")))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run the native build")
}

fn same(wasi: &Output, native: &Output) {
    assert_eq!(stdout(wasi), stdout(native), "stderr: {}", stderr(wasi));
    assert_eq!(wasi.status.code(), native.status.code());
}

#[test]
fn c_and_rust_guests_match_their_native_builds() {
    for name in ["c-probe", "rust-probe"] {
        let wasm = program(&format!("wasi/{name}.wasm"));
        let args = ["hello", "a", "b c", "dé"];
        let wasi = run_guest(&wasm, &["--env=GREETING=hi there"], &args);
        same(&wasi, &native(name, &[("GREETING", "hi there")], &args));
        assert!(stdout(&wasi).contains("GREETING=hi there"));

        let guest_dir = scratch(&format!("polyglot-{name}-wasi"));
        let native_dir = scratch(&format!("polyglot-{name}-native"));
        let wasi = run_guest(
            &wasm,
            &[&format!("--dir={}:/data", guest_dir.display())],
            &["files", "/data"],
        );
        let native = native(name, &[], &["files", native_dir.to_str().unwrap()]);
        same(&wasi, &native);
        assert!(stdout(&wasi).contains("removed: "), "{}", stdout(&wasi));
    }
    let wasm = program("wasi/rust-probe.wasm");
    same(
        &run_guest(&wasm, &[], &["primes", "50000"]),
        &native("rust-probe", &[], &["primes", "50000"]),
    );
}

#[test]
fn an_assemblyscript_guest_prints_what_it_must() {
    let out = run_guest(
        &program("wasi/as-probe.wasm"),
        &["--env=GREETING=hey"],
        &["one", "two words"],
    );
    assert_eq!(
        stdout(&out),
        "hello from AssemblyScript with 2 arguments\n\
         arg 1: one\n\
         arg 2: two words\n\
         GREETING=hey\n\
         primes below 100000: 9592\n\
         clock after 2020: yes\n",
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(5));
}

/// `curl -s http://ADDR/PATH`, retried while the server starts.
fn curl(addr: &str, path: &str) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "20", &format!("http://{addr}{path}")])
            .output()
            .expect("curl");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn c_and_rust_guests_serve_on_the_listener_wasabi_opened_for_them() {
    for name in ["c-probe", "rust-probe"] {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = support::wasabi();
        cmd.args(["run", "--cache-dir"])
            .arg(support::cache_dir())
            .arg(format!("--allow-listen={addr}"))
            .arg(program(&format!("wasi/{name}.wasm")))
            .args(["--", "serve", "2"]);
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start wasabi");
        let first = curl(&addr, "/first");
        let second = curl(&addr, "/second?x=1");
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let lang = if name == "c-probe" { "C" } else { "Rust" };
        assert_eq!(
            first,
            format!("hello from {lang}, request 1: GET /first HTTP/1.1\n")
        );
        assert_eq!(
            second,
            format!("hello from {lang}, request 2: GET /second?x=1 HTTP/1.1\n")
        );
    }
    // The C server answers the same natively (on the address it listens on itself).
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(program("native/c-probe"))
        .args(["serve", "1", &addr])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(
        curl(&addr, "/first"),
        "hello from C, request 1: GET /first HTTP/1.1\n"
    );
    assert!(child.wait().unwrap().success());
}

//! Sockets for WASI preview-1 guests: Go wasip1 programs that listen and
//! dial through the companion module (on the WasmEdge socket extension),
//! checked against their native builds with real clients; a preview-1
//! program served through a listener Wasabi opened before it started; and
//! what a hostile guest gets for wrong descriptors, denied addresses, a
//! full socket cap and pointers outside its memory — an errno or a trap of
//! its own, never a host failure.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{
    Background, connect, echo_once, free_port, program, run_guest, scratch, stderr, stdout, wasabi,
};

/// WASI errno values (preview 1 numbering).
const EACCES: i32 = 2;
const EAGAIN: i32 = 6;
const EBADF: i32 = 8;
const EINPROGRESS: i32 = 26;
const EINVAL: i32 = 28;
const EMFILE: i32 = 33;
const ENOTDIR: i32 = 54;
const ENOTSOCK: i32 = 57;

#[test]
fn a_wasip1_echo_server_echoes_like_its_native_build() {
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut guest = Background::start(
        &program("wasip1/tcp-echo.wasm"),
        &["--allow-listen=127.0.0.1"],
        &["-addr", "127.0.0.1:0"],
    );
    let line = guest.line();
    let addr = line
        .strip_prefix("listening on ")
        .expect("address line")
        .to_string();
    assert_ne!(addr, "127.0.0.1:0", "the listener reports its real port");
    let port = free_port();
    let mut native = std::process::Command::new(program("native/tcp-echo"))
        .args(["-addr", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("native echo");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(native.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    let native_addr = format!("127.0.0.1:{port}");

    assert_eq!(
        echo_once(&addr, &payload),
        echo_once(&native_addr, &payload)
    );
    // Many clients at once, each answered on its own connection.
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || echo_once(&addr, format!("client {i}").as_bytes()))
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap(), format!("client {i}").as_bytes());
    }
    let _ = native.kill();
    let _ = native.wait();
}

#[test]
fn the_wasip1_go_net_example_serves_and_requests_itself() {
    let addr = format!("127.0.0.1:{}", free_port());
    let out = run_guest(
        &program("wasip1/go-net-example.wasm"),
        &[
            &format!("--allow-listen={addr}"),
            &format!("--allow-connect={addr}"),
        ],
        &["-addr", &addr, "-n", "200"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("GET /hello/200 -> hello #200"), "{text}");
    assert!(text.contains("200 requests served and answered"), "{text}");
}

#[test]
fn a_wasip1_dial_to_a_denied_address_fails_like_a_refusal_and_says_which_grant() {
    let addr = format!("127.0.0.1:{}", free_port());
    // Listening is granted, connecting is not: the program's requests to
    // itself fail with a permission error, and the host says what to grant.
    let out = run_guest(
        &program("wasip1/go-net-example.wasm"),
        &[&format!("--allow-listen={addr}")],
        &["-addr", &addr, "-n", "1"],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    let hint = format!("--allow-connect={addr}");
    assert_eq!(err.matches(&hint).count(), 1, "said once: {err}");
}

/// A preview-1 command from WAT, with the socket and file imports a test
/// needs; `_start` exits with what `body` leaves. 0..1024 is scratch; the
/// data at 1024 is `data`.
fn command(name: &str, extension: bool, data: &str, body: &str) -> std::path::PathBuf {
    let ext = if extension {
        r#"(import "wasi_snapshot_preview1" "sock_open" (func $sock_open (param i32 i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_bind" (func $sock_bind (param i32 i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_listen" (func $sock_listen (param i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_connect" (func $sock_connect (param i32 i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_getsockopt" (func $getsockopt (param i32 i32 i32 i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_send_to" (func $send_to (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_recv_from" (func $recv_from (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "sock_getaddrinfo" (func $getaddrinfo (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#
    } else {
        ""
    };
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $set_flags (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $prestat_name (param i32 i32 i32) (result i32)))
          {ext}
          (memory (export "memory") 64)
          (data (i32.const 1024) "{data}")
          (func (export "_start") (local i32 i32) (call $exit {body})))"#
    );
    let path = scratch(name).join("guest.wasm");
    std::fs::write(&path, wat::parse_str(&wat).expect("valid wat")).unwrap();
    path
}

/// `wasabi run --no-cache [flags] guest`: exit code and stderr.
fn run(guest: &std::path::Path, flags: &[&str]) -> (Option<i32>, String) {
    let mut cmd = wasabi();
    cmd.args(["run", "--no-cache"]).args(flags).arg(guest);
    let out = support::finish(cmd);
    (out.status.code(), stderr(&out))
}

/// Runs a guest that serves one connection in the background, connects
/// to `addr` (retrying while the guest starts), and returns what the guest
/// sent before closing, and its exit code.
fn serve_one(
    guest: &std::path::Path,
    flags: &[&str],
    addr: &str,
    send: &[u8],
) -> (Vec<u8>, Option<i32>) {
    let mut cmd = wasabi();
    cmd.args(["run", "--no-cache"]).args(flags).arg(guest);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wasabi");
    let start = std::time::Instant::now();
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("the guest never listened on {addr}: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(send).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).expect("read");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (back, out.status.code())
}

/// Accepts on `fd` (blocking), reads up to 64 bytes into 512, sends them
/// back, closes; exits with the accepted descriptor's number.
fn echo_one_body(fd: u32) -> String {
    format!(
        "(block (result i32)
           (drop (call $accept (i32.const {fd}) (i32.const 0) (i32.const 0)))
           (local.set 0 (i32.load (i32.const 0)))
           (i32.store (i32.const 8) (i32.const 512))
           (i32.store (i32.const 12) (i32.const 64))
           (drop (call $recv (local.get 0) (i32.const 8) (i32.const 1) (i32.const 0) (i32.const 16) (i32.const 20)))
           (i32.store (i32.const 12) (i32.load (i32.const 16)))
           (drop (call $send (local.get 0) (i32.const 8) (i32.const 1) (i32.const 0) (i32.const 16)))
           (drop (call $fd_close (local.get 0)))
           (local.get 0))"
    )
}

#[test]
fn a_preview1_program_serves_on_the_listener_wasabi_opened_after_its_preopens() {
    // No --dir: the listener is fd 3.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let guest = command("wasi-preopened-listener", false, "", &echo_one_body(3));
    let (back, code) = serve_one(&guest, &[&format!("--allow-listen={addr}")], &addr, b"ping");
    assert_eq!(back, b"ping");
    assert_eq!(code, Some(4), "the connection is the next descriptor");

    // With one mount (fd 3), the listener is fd 4, and fd 3 is still the
    // directory.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = scratch("wasi-preopened-listener-dir");
    let guest = command("wasi-preopened-listener-2", false, "", &echo_one_body(4));
    let (back, code) = serve_one(
        &guest,
        &[
            &format!("--allow-listen={addr}"),
            &format!("--dir={}:/data", dir.display()),
        ],
        &addr,
        b"pong",
    );
    assert_eq!(back, b"pong");
    assert_eq!(code, Some(5));
}

#[test]
fn sockets_report_their_type_and_refuse_file_operations() {
    let addr = format!("127.0.0.1:{}", free_port());
    let listen = format!("--allow-listen={addr}");
    // fd_fdstat_get of the listener: filetype 6 (socket stream).
    let guest = command(
        "wasi-socket-fdstat",
        false,
        "x",
        "(block (result i32) (drop (call $fdstat (i32.const 3) (i32.const 0))) (i32.load8_u (i32.const 0)))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(6));
    // A path under a socket: ENOTDIR.
    let guest = command(
        "wasi-socket-path",
        false,
        "x",
        "(call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(ENOTDIR));
    // Socket calls on a file (stdout) or on nothing.
    let guest = command(
        "wasi-accept-stdout",
        false,
        "",
        "(call $accept (i32.const 1) (i32.const 0) (i32.const 0))",
    );
    assert_eq!(run(&guest, &[]).0, Some(ENOTSOCK));
    let guest = command(
        "wasi-accept-nothing",
        false,
        "",
        "(call $accept (i32.const 99) (i32.const 0) (i32.const 0))",
    );
    assert_eq!(run(&guest, &[]).0, Some(EBADF));
    let guest = command(
        "wasi-accept-negative",
        false,
        "",
        "(call $accept (i32.const -1) (i32.const 0) (i32.const 0))",
    );
    assert_eq!(run(&guest, &[]).0, Some(EBADF));
    // A non-blocking accept with nobody connecting: EAGAIN.
    let guest = command(
        "wasi-accept-nonblocking",
        false,
        "",
        "(block (result i32) (drop (call $set_flags (i32.const 3) (i32.const 4))) (call $accept (i32.const 3) (i32.const 0) (i32.const 0)))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(EAGAIN));
    // Renumbering the listener over stdout, then closing it: stdout's
    // number now answers as a socket, and closing works once.
    let guest = command(
        "wasi-renumber-socket",
        false,
        "",
        "(block (result i32)
           (drop (call $renumber (i32.const 3) (i32.const 1)))
           (drop (call $fdstat (i32.const 1) (i32.const 0)))
           (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 6)) (then (call $exit (i32.const 100))))
           (if (i32.ne (call $fd_close (i32.const 3)) (i32.const 8)) (then (call $exit (i32.const 101))))
           (if (i32.ne (call $fd_close (i32.const 1)) (i32.const 0)) (then (call $exit (i32.const 102))))
           (call $fd_close (i32.const 1)))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(EBADF));
}

/// A WasmEdge address buffer at 64 → 4 bytes at 80 (127.0.0.1).
const LOOPBACK_AT_64: &str = "(i32.store (i32.const 64) (i32.const 80)) (i32.store (i32.const 68) (i32.const 4)) (i32.store (i32.const 80) (i32.const 0x0100007f))";

#[test]
fn the_socket_extension_keeps_the_policy_and_the_cap() {
    let port = free_port();
    // A denied connect: EACCES, and the host says which grant is missing.
    let guest = command(
        "wasi-denied-connect",
        true,
        "",
        &format!(
            "(block (result i32)
               (drop (call $sock_open (i32.const 1) (i32.const 2) (i32.const 0)))
               {LOOPBACK_AT_64}
               (call $sock_connect (i32.load (i32.const 0)) (i32.const 64) (i32.const {port})))"
        ),
    );
    let (code, err) = run(&guest, &[]);
    assert_eq!(code, Some(EACCES));
    assert!(
        err.contains(&format!("--allow-connect=127.0.0.1:{port}")),
        "{err}"
    );
    // A denied listen fails at sock_listen.
    let guest = command(
        "wasi-denied-listen",
        true,
        "",
        &format!(
            "(block (result i32)
               (drop (call $sock_open (i32.const 1) (i32.const 2) (i32.const 0)))
               {LOOPBACK_AT_64}
               (drop (call $sock_bind (i32.load (i32.const 0)) (i32.const 64) (i32.const {port})))
               (call $sock_listen (i32.load (i32.const 0)) (i32.const 8)))"
        ),
    );
    assert_eq!(run(&guest, &[]).0, Some(EACCES));
    // Opening sockets past the cap: EMFILE, not host memory.
    let guest = command(
        "wasi-socket-cap",
        true,
        "",
        "(block (result i32)
           (loop $more
             (local.set 1 (call $sock_open (i32.const 1) (i32.const 2) (i32.const 0)))
             (local.set 0 (i32.add (local.get 0) (i32.const 1)))
             (br_if $more (i32.and (i32.eqz (local.get 1)) (i32.lt_u (local.get 0) (i32.const 100000)))))
           (if (i32.ne (local.get 0) (i32.const 6)) (then (call $exit (i32.const 100))))
           (local.get 1))",
    );
    assert_eq!(run(&guest, &["--max-connections=5"]).0, Some(EMFILE));
    // A non-blocking connect to a granted port nobody listens on:
    // EINPROGRESS, then SO_ERROR says refused (14).
    let guest = command(
        "wasi-connect-refused",
        true,
        "",
        &format!(
            "(block (result i32)
               (drop (call $sock_open (i32.const 1) (i32.const 2) (i32.const 0)))
               (drop (call $set_flags (i32.load (i32.const 0)) (i32.const 4)))
               {LOOPBACK_AT_64}
               (if (i32.ne (call $sock_connect (i32.load (i32.const 0)) (i32.const 64) (i32.const {port})) (i32.const {EINPROGRESS}))
                 (then (call $exit (i32.const 100))))
               (loop $wait
                 (drop (call $getsockopt (i32.load (i32.const 0)) (i32.const 0) (i32.const 2) (i32.const 32) (i32.const 4)))
                 (br_if $wait (i32.eq (i32.load (i32.const 32)) (i32.const {EINPROGRESS}))))
               (i32.load (i32.const 32)))"
        ),
    );
    assert_eq!(
        run(&guest, &[&format!("--allow-connect=127.0.0.1:{port}")]).0,
        Some(14)
    );
}

#[test]
fn hostile_arguments_get_an_errno_or_a_trap_of_their_own() {
    let addr = format!("127.0.0.1:{}", free_port());
    let listen = format!("--allow-listen={addr}");
    // A receive buffer outside memory traps, naming the import.
    let guest = command(
        "wasi-recv-oob",
        false,
        "",
        "(block (result i32)
           (i32.store (i32.const 8) (i32.const 0x3ff000))
           (i32.store (i32.const 12) (i32.const 0x10000))
           (call $recv (i32.const 3) (i32.const 8) (i32.const 1) (i32.const 0) (i32.const 16) (i32.const 20)))",
    );
    let (code, err) = run(&guest, &[&listen]);
    assert_eq!(code, Some(134), "{err}");
    assert!(err.contains("sock_recv"), "{err}");
    // An iovec count past IOV_MAX: EINVAL.
    let guest = command(
        "wasi-recv-many",
        false,
        "",
        "(call $recv (i32.const 3) (i32.const 8) (i32.const 5000) (i32.const 0) (i32.const 16) (i32.const 20))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(EINVAL));
    // poll_oneoff with a huge count: EINVAL, not a huge host buffer.
    let guest = command(
        "wasi-poll-huge",
        false,
        "",
        "(call $poll (i32.const 0) (i32.const 0) (i32.const 0x10000000) (i32.const 0))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(EINVAL));
    // poll on the listener with a 50 ms timeout and nobody connecting:
    // one event, the clock's (userdata 7).
    let guest = command(
        "wasi-poll-socket-timeout",
        false,
        "",
        "(block (result i32)
           (i64.store (i32.const 0) (i64.const 1))
           (i32.store8 (i32.const 8) (i32.const 1))
           (i32.store (i32.const 16) (i32.const 3))
           (i64.store (i32.const 48) (i64.const 7))
           (i32.store8 (i32.const 56) (i32.const 0))
           (i32.store (i32.const 64) (i32.const 1))
           (i64.store (i32.const 72) (i64.const 50000000))
           (drop (call $poll (i32.const 0) (i32.const 200) (i32.const 2) (i32.const 300)))
           (if (i32.ne (i32.load (i32.const 300)) (i32.const 1)) (then (call $exit (i32.const 100))))
           (i32.wrap_i64 (i64.load (i32.const 200))))",
    );
    assert_eq!(run(&guest, &[&listen]).0, Some(7));
}

#[test]
fn a_guest_that_opens_its_own_listeners_gets_none_opened_for_it() {
    // It imports sock_listen, so the grant is left for it to bind: fd 3
    // is nothing.
    let addr = format!("127.0.0.1:{}", free_port());
    let guest = command(
        "wasi-own-listeners",
        true,
        "",
        "(call $fdstat (i32.const 3) (i32.const 0))",
    );
    assert_eq!(
        run(&guest, &[&format!("--allow-listen={addr}")]).0,
        Some(EBADF)
    );
}

/// `curl -s -i http://ADDR/PATH`: the status line and body (headers that
/// differ between runs, such as Date, left out).
fn curl(addr: &str, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "--max-time",
            "20",
            &format!("http://{addr}{path}"),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter(|l| !l.starts_with("Date:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_standard_library_server_serves_on_descriptor_3_as_it_does_natively() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut guest = Background::start(
        &program("wasip1/preopened-server.wasm"),
        &[&format!("--allow-listen={addr}")],
        &[],
    );
    assert_eq!(guest.line(), "serving");
    let native_addr = format!("127.0.0.1:{}", free_port());
    let mut native = std::process::Command::new(program("native/preopened-server"))
        .args(["-addr", &native_addr])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("native server");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(native.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    for path in ["/", "/a/b?c=d"] {
        assert_eq!(curl(&addr, path), curl(&native_addr, path));
    }
    // Hostile clients: one resets its connection mid-request, one sends
    // half a request and holds it open. Neither stops the others.
    {
        let reset = socket2::Socket::from(connect(&addr));
        reset.set_linger(Some(Duration::ZERO)).unwrap();
        let mut reset = TcpStream::from(reset);
        reset.write_all(b"GET / HTTP/1.1\r\nHost: x").unwrap();
        drop(reset);
    }
    let mut slow = connect(&addr);
    slow.write_all(b"GET /slow HTTP/1.1\r\n").unwrap();
    assert_eq!(curl(&addr, "/after"), curl(&native_addr, "/after"));
    // Concurrent clients, each answered: Go's poller waits, not the program.
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || curl(&addr, &format!("/c{i}")))
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let text = c.join().unwrap();
        assert!(
            text.contains(&format!("GET /c{i}\n")) || text.ends_with(&format!("GET /c{i}")),
            "{text}"
        );
    }
    let _ = native.kill();
    let _ = native.wait();
}

/// Opens a UDP socket (its descriptor at 0), then runs `rest`. Address
/// buffers: 64 → 4 bytes at 80 (127.0.0.1); 96 → 128 bytes at 128 (for
/// what recv_from reports). The iovec at 8 names 64 bytes at 512.
fn udp_guest(name: &str, rest: &str) -> std::path::PathBuf {
    command(
        name,
        true,
        "",
        &format!(
            "(block (result i32)
               (if (i32.ne (call $sock_open (i32.const 1) (i32.const 1) (i32.const 0)) (i32.const 0))
                 (then (call $exit (i32.const 100))))
               {LOOPBACK_AT_64}
               (i32.store (i32.const 96) (i32.const 128))
               (i32.store (i32.const 100) (i32.const 128))
               (i32.store (i32.const 8) (i32.const 512))
               (i32.store (i32.const 12) (i32.const 64))
               {rest})"
        ),
    )
}

#[test]
fn a_udp_guest_echoes_a_datagram_to_its_sender() {
    let port = free_port();
    // Bind the granted port, receive one datagram, send it back to its
    // source (as recv_from reported it), exit with its size.
    let guest = udp_guest(
        "wasi-udp-echo",
        &format!(
            "(if (i32.ne (call $sock_bind (i32.load (i32.const 0)) (i32.const 64) (i32.const {port})) (i32.const 0))
               (then (call $exit (i32.const 101))))
             (drop (call $recv_from (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 96) (i32.const 0) (i32.const 16) (i32.const 20) (i32.const 24)))
             (i32.store (i32.const 12) (i32.load (i32.const 20)))
             (drop (call $send_to (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 96) (i32.load (i32.const 16)) (i32.const 0) (i32.const 28)))
             (i32.load (i32.const 28))"
        ),
    );
    let mut cmd = wasabi();
    cmd.args(["run", "--no-cache"])
        .arg(format!("--allow-listen=127.0.0.1:{port}"))
        .arg("--allow-connect=127.0.0.1")
        .arg(&guest);
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    let start = std::time::Instant::now();
    // Datagrams sent before the guest binds are lost: send until answered.
    let got = loop {
        client.send_to(b"datagram!", ("127.0.0.1", port)).unwrap();
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            assert_eq!(from.port(), port);
            break n;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no echo");
    };
    assert_eq!(&buf[..got], b"datagram!");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unbound_udp_socket_hears_only_addresses_it_may_send_to() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let intruder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = server.local_addr().unwrap().port();
    // Send "hello" to the granted server, then receive: exit with the
    // first byte of what arrives.
    let guest = udp_guest(
        "wasi-udp-hear",
        &format!(
            "(i32.store (i32.const 512) (i32.const 0x6c6c6568))
             (i32.store8 (i32.const 516) (i32.const 0x6f))
             (i32.store (i32.const 12) (i32.const 5))
             (if (i32.ne (call $send_to (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 64) (i32.const {port}) (i32.const 0) (i32.const 28)) (i32.const 0))
               (then (call $exit (i32.const 101))))
             (i32.store (i32.const 12) (i32.const 64))
             (drop (call $recv_from (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 96) (i32.const 0) (i32.const 16) (i32.const 20) (i32.const 24)))
             (i32.load8_u (i32.const 512))"
        ),
    );
    let mut cmd = wasabi();
    cmd.args(["run", "--no-cache"])
        .arg(format!("--allow-connect=127.0.0.1:{port}"))
        .arg(&guest);
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut buf = [0u8; 64];
    let (n, guest_addr) = server.recv_from(&mut buf).expect("the guest's datagram");
    assert_eq!(&buf[..n], b"hello");
    intruder.send_to(b"intruder", guest_addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    server.send_to(b"reply", guest_addr).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(b'r')),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn udp_keeps_the_policy() {
    let port = free_port();
    // Sending to an address no grant names: EACCES.
    let guest = udp_guest(
        "wasi-udp-denied-send",
        &format!(
            "(call $send_to (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 64) (i32.const {port}) (i32.const 0) (i32.const 28))"
        ),
    );
    assert_eq!(run(&guest, &[]).0, Some(EACCES));
    // Binding without a listen grant: EACCES.
    let guest = udp_guest(
        "wasi-udp-denied-bind",
        &format!("(call $sock_bind (i32.load (i32.const 0)) (i32.const 64) (i32.const {port}))"),
    );
    assert_eq!(run(&guest, &[]).0, Some(EACCES));
    // A datagram socket reports its type (5), and cannot listen.
    let guest = udp_guest(
        "wasi-udp-type",
        "(drop (call $fdstat (i32.load (i32.const 0)) (i32.const 200)))
         (if (i32.ne (call $sock_listen (i32.load (i32.const 0)) (i32.const 1)) (i32.const 58))
           (then (call $exit (i32.const 102))))
         (i32.load8_u (i32.const 200))",
    );
    assert_eq!(run(&guest, &[]).0, Some(5));
}

#[test]
fn a_wasip1_echo_server_listens_and_answers_on_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let mut guest = Background::start(
        &program("wasip1/tcp-echo.wasm"),
        &["--allow-listen=[::1]"],
        &["-addr", "[::1]:0"],
    );
    let line = guest.line();
    let addr = line
        .strip_prefix("listening on ")
        .expect("address line")
        .to_string();
    assert!(addr.starts_with("[::1]:"), "{addr}");
    assert_eq!(echo_once(&addr, b"over IPv6"), b"over IPv6");
}

/// `sock_getaddrinfo` of the `node_len` bytes at 1024 with service "8080"
/// (right after them), IPv4, into one record at 400 (its address at 440,
/// 26 data bytes at 460): the errno, else 0 when one record came back
/// with port 8080 and `first` for the address's first byte (else 100+).
fn getaddrinfo_body(node_len: usize, first: u8) -> String {
    format!(
        "(block (result i32)
           (i32.store8 (i32.const 302) (i32.const 1))
           (i32.store (i32.const 340) (i32.const 400))
           (i32.store (i32.const 412) (i32.const 440))
           (i32.store (i32.const 444) (i32.const 26))
           (i32.store (i32.const 448) (i32.const 460))
           (local.set 0 (call $getaddrinfo (i32.const 1024) (i32.const {node_len}) (i32.const {service}) (i32.const 4)
             (i32.const 300) (i32.const 340) (i32.const 1) (i32.const 350)))
           (if (i32.ne (local.get 0) (i32.const 0)) (then (call $exit (local.get 0))))
           (if (i32.ne (i32.load (i32.const 350)) (i32.const 1)) (then (call $exit (i32.const 100))))
           (if (i32.ne (i32.load16_u (i32.const 460)) (i32.const 0x901f)) (then (call $exit (i32.const 101))))
           (if (i32.ne (i32.load8_u (i32.const 462)) (i32.const {first})) (then (call $exit (i32.const 102))))
           (i32.const 0))",
        service = 1024 + node_len
    )
}

#[test]
fn getaddrinfo_answers_addresses_and_resolves_only_granted_names() {
    let guest = command(
        "wasi-gai-localhost",
        true,
        "localhost8080",
        &getaddrinfo_body(9, 127),
    );
    assert_eq!(run(&guest, &[]).0, Some(0));
    let guest = command(
        "wasi-gai-ip",
        true,
        "10.1.2.38080",
        &getaddrinfo_body(8, 10),
    );
    assert_eq!(run(&guest, &[]).0, Some(0));
    // A record chain that links to itself cannot make the host loop: it
    // fills at most as many records as it found (here 2: IPv4 and IPv6).
    let looped = getaddrinfo_body(9, 127).replace(
        "(i32.store8 (i32.const 302) (i32.const 1))",
        "(i32.store (i32.const 424) (i32.const 400))",
    ).replace(
        "(i32.const 340) (i32.const 1) (i32.const 350)",
        "(i32.const 340) (i32.const 1000000) (i32.const 350)",
    ).replace(
        "(if (i32.ne (i32.load (i32.const 350)) (i32.const 1)) (then (call $exit (i32.const 100))))",
        "(if (i32.gt_u (i32.load (i32.const 350)) (i32.const 2)) (then (call $exit (i32.const 100))))",
    );
    let guest = command("wasi-gai-loop", true, "localhost8080", &looped);
    let code = run(&guest, &[]).0;
    assert!(matches!(code, Some(0 | 102)), "{code:?}");
    // A name no connect grant names is not looked up: EACCES, and the host
    // says which grant would allow it.
    let guest = command(
        "wasi-gai-denied",
        true,
        "example.com8080",
        &getaddrinfo_body(11, 0),
    );
    let (code, err) = run(&guest, &[]);
    assert_eq!(code, Some(EACCES));
    assert!(err.contains("--allow-connect=example.com:8080"), "{err}");
}

#[test]
fn a_huge_read_is_a_short_read_not_a_huge_host_buffer() {
    // wasmtime-wasi reads a file into a host buffer as large as the guest
    // asks for; Wasabi asks it for at most 1 MiB at once.
    let dir = scratch("wasi-huge-read-data");
    std::fs::write(dir.join("big"), vec![7u8; 3 << 20]).unwrap();
    let guest = command(
        "wasi-huge-read",
        false,
        "big",
        "(block (result i32)
           (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 0)
             (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0)))
           (i32.store (i32.const 8) (i32.const 0x10000))
           (i32.store (i32.const 12) (i32.const 0x300000))
           (if (i32.ne (call $fd_read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 16)) (i32.const 0))
             (then (call $exit (i32.const 100))))
           (if (i32.ne (i32.load (i32.const 12)) (i32.const 0x300000)) (then (call $exit (i32.const 101))))
           (if (i32.ne (i32.load8_u (i32.const 0x10000)) (i32.const 7)) (then (call $exit (i32.const 102))))
           (i32.shr_u (i32.load (i32.const 16)) (i32.const 16)))",
    );
    let (code, err) = run(&guest, &[&format!("--dir={}:/d", dir.display())]);
    assert_eq!(code, Some(16), "1 MiB read: {err}");
}

/// Finds the preopen named by the 4 bytes at 1040 among fds 3..32 (into
/// local 0; 100 when none is), then runs `rest`.
fn with_preopen(rest: &str) -> String {
    format!(
        "(block (result i32)
           (local.set 0 (i32.const 3))
           (block $found
             (loop $next
               (if (i32.eqz (call $prestat_name (local.get 0) (i32.const 700) (i32.const 4)))
                 (then (br_if $found (i32.eq (i32.load (i32.const 700)) (i32.load (i32.const 1040))))))
               (local.set 0 (i32.add (local.get 0) (i32.const 1)))
               (br_if $next (i32.lt_u (local.get 0) (i32.const 32))))
             (call $exit (i32.const 100)))
           {rest})"
    )
}

/// `wasabi go-exec [flags] guest` in a scratch directory: the exit code.
fn go_exec(guest: &std::path::Path, flags: &[&str]) -> (Option<i32>, String) {
    let mut cmd = wasabi();
    cmd.arg("go-exec")
        .args(flags)
        .arg(guest)
        .current_dir(guest.parent().unwrap());
    let out = support::finish(cmd);
    (out.status.code(), stderr(&out))
}

#[test]
fn go_exec_gives_a_wasi_guest_dev_null_and_etc_hosts_unless_a_mount_covers_them() {
    // data: "null" at 1024, "hosts" at 1028, "sda" at 1033, "x" at 1036,
    // "/dev" at 1040.
    let dev_null = with_preopen(
        "(if (i32.ne (call $path_open (local.get 0) (i32.const 0) (i32.const 1024) (i32.const 4) (i32.const 0)
               (i64.const 0x1fffffff) (i64.const 0) (i32.const 0) (i32.const 0)) (i32.const 0))
           (then (call $exit (i32.const 101))))
         (local.set 1 (i32.load (i32.const 0)))
         (i32.store (i32.const 8) (i32.const 1024))
         (i32.store (i32.const 12) (i32.const 6))
         (drop (call $fd_write (local.get 1) (i32.const 8) (i32.const 1) (i32.const 16)))
         (if (i32.ne (i32.load (i32.const 16)) (i32.const 6)) (then (call $exit (i32.const 102))))
         (i32.store (i32.const 8) (i32.const 800))
         (i32.store (i32.const 12) (i32.const 64))
         (drop (call $fd_read (local.get 1) (i32.const 8) (i32.const 1) (i32.const 16)))
         (if (i32.ne (i32.load (i32.const 16)) (i32.const 0)) (then (call $exit (i32.const 103))))
         (drop (call $fdstat (local.get 1) (i32.const 900)))
         (if (i32.ne (i32.load8_u (i32.const 900)) (i32.const 2)) (then (call $exit (i32.const 104))))
         (if (i32.ne (call $path_open (local.get 0) (i32.const 0) (i32.const 1033) (i32.const 3) (i32.const 0)
               (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)) (i32.const 44))
           (then (call $exit (i32.const 105))))
         (call $path_open (local.get 0) (i32.const 0) (i32.const 1036) (i32.const 1) (i32.const 1)
           (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))",
    );
    let guest = command(
        "wasi-builtins-dev",
        false,
        "nullhostssdaxzzz/dev",
        &dev_null,
    );
    let (code, err) = go_exec(&guest, &[]);
    assert_eq!(
        code,
        Some(EACCES),
        "null swallows, reads empty; nothing else, nothing made: {err}"
    );
    let etc_hosts = with_preopen(
        "(if (i32.ne (call $path_open (local.get 0) (i32.const 0) (i32.const 1028) (i32.const 5) (i32.const 0)
               (i64.const 0x1fffffff) (i64.const 0) (i32.const 0) (i32.const 0)) (i32.const 0))
           (then (call $exit (i32.const 101))))
         (local.set 1 (i32.load (i32.const 0)))
         (i32.store (i32.const 8) (i32.const 800))
         (i32.store (i32.const 12) (i32.const 64))
         (drop (call $fd_read (local.get 1) (i32.const 8) (i32.const 1) (i32.const 16)))
         (if (i32.ne (i32.load (i32.const 800)) (i32.const 0x2e373231)) (then (call $exit (i32.const 102))))
         (call $fd_write (local.get 1) (i32.const 8) (i32.const 1) (i32.const 16))",
    );
    let guest = command(
        "wasi-builtins-etc",
        false,
        "nullhostssdaxzzz/etc",
        &etc_hosts,
    );
    assert_eq!(
        go_exec(&guest, &[]).0,
        Some(EBADF),
        "hosts reads localhost, is read-only"
    );
    // A mount at / covers both; and `wasabi run` gives exactly the mounts.
    let root = scratch("wasi-builtins-root");
    let guest = command(
        "wasi-builtins-covered",
        false,
        "nullhostssdaxzzz/dev",
        &with_preopen("(i32.const 0)"),
    );
    assert_eq!(
        go_exec(&guest, &[&format!("--dir={}:/", root.display())]).0,
        Some(100)
    );
    assert_eq!(run(&guest, &[]).0, Some(100));
}

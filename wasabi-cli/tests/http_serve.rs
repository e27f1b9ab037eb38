//! The host's HTTP server (`wasabi.Serve`): Go handlers under Wasabi
//! against the same program built natively, with real clients — Go's own
//! `net/http` client (HTTP/1.1 and HTTP/2), curl — and hostile ones written
//! here: slow heads, huge heads, oversized bodies, resets mid-body, more
//! requests than the tenant may have in progress, clients that leave.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Background, free_port, native, program};

/// `http-handlers` under Wasabi with `flags`, and its address.
fn wasabi_server(flags: &[&str]) -> (Background, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let grant = format!("--allow-listen={addr}");
    let mut all = vec![grant.as_str()];
    all.extend_from_slice(flags);
    let mut server = Background::start(&program("http-handlers.wasm"), &all, &["-addr", &addr]);
    assert_eq!(server.line(), format!("listening on {addr}"));
    (server, addr)
}

/// The same program built natively, killed when dropped.
struct Native {
    child: Child,
    addr: String,
}

impl Native {
    fn start() -> Native {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(native("http-handlers"))
            .args(["-addr", &addr])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the native server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), format!("listening on {addr}"));
        Native { child, addr }
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http-check` (Go's net/http client, native) against `addr`.
fn go_client(addr: &str, h2: bool) -> String {
    let mut cmd = Command::new(native("http-check"));
    if h2 {
        cmd.arg("-h2");
    }
    let out = cmd
        .arg(format!("http://{addr}"))
        .output()
        .expect("run http-check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn go_clients_get_the_same_answers_as_from_the_native_server() {
    let native = Native::start();
    let (_server, addr) = wasabi_server(&[]);
    for h2 in [false, true] {
        let expected = go_client(&native.addr, h2);
        let got = go_client(&addr, h2);
        assert!(
            expected.contains(if h2 { "HTTP/2.0" } else { "HTTP/1.1" }),
            "{expected}"
        );
        assert_eq!(got, expected, "h2 = {h2}");
    }
}

/// curl's answer with the `Date` header left out and names lowercased,
/// headers sorted (HTTP/1 names are case-insensitive; the order of
/// different names carries no meaning).
fn curl(args: &[&str]) -> String {
    normalized(&curl_raw(args))
}

/// curl's answer as it printed it (without carriage returns).
fn curl_raw(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-S", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl (cargo xtask ci installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// An answer with the `Date` header left out, names lowercased and
/// headers sorted.
fn normalized(text: &str) -> String {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").trim().to_string();
    let mut headers: Vec<String> = lines
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or((l, ""));
            format!("{}:{}", n.to_ascii_lowercase(), v)
        })
        .collect();
    headers.sort();
    format!("{status}\n{}\n\n{body}", headers.join("\n"))
}

#[test]
fn curl_gets_the_same_answers_over_http1_and_http2() {
    let native = Native::start();
    let (_server, addr) = wasabi_server(&[]);
    let upload = support::scratch("http-serve-curl").join("upload.bin");
    std::fs::write(&upload, vec![b'u'; 3 << 20]).expect("write the upload");
    let upload_arg = format!("@{}", upload.display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["/headers"],
        vec!["/status?code=404"],
        vec!["--http2-prior-knowledge", "/headers"],
        vec!["--http2-prior-knowledge", "/status?code=201"],
        // A POST with a body asks to upgrade to h2c too, but is answered
        // over HTTP/1.1 by both (a body is not upgraded).
        vec!["--http2", "-d", "hello", "/echo"],
        // Expect: 100-continue, then 3 MiB streamed through the handler.
        vec![
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &upload_arg,
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            "/echo",
        ],
    ];
    for case in cases {
        let (path, flags) = case.split_last().expect("a path");
        let run = |at: &str| {
            let url = format!("http://{at}{path}");
            let mut args: Vec<&str> = flags.to_vec();
            args.push(&url);
            curl(&args)
        };
        assert_eq!(run(&addr), run(&native.addr), "curl {case:?}");
    }
}

/// curl's answer after an h2c upgrade, without the 101 that precedes it.
fn after_switching(answer: String) -> String {
    let Some(rest) = answer.strip_prefix("HTTP/1.1 101 Switching Protocols\n") else {
        panic!("no 101 Switching Protocols first: {answer}");
    };
    // The 101's own headers, up to its blank line, then the real answer.
    let (switch_head, real) = rest.split_once("\n\n").expect("a blank line after the 101");
    assert!(
        switch_head.to_ascii_lowercase().contains("upgrade: h2c"),
        "{switch_head}"
    );
    real.to_string()
}

#[test]
fn an_h2c_upgrade_is_answered_in_http2_as_by_prior_knowledge() {
    // Go's own server ignores the upgrade (it answers over HTTP/1.1); the
    // host takes it, so the answers are compared with the native server's
    // over HTTP/2 by prior knowledge.
    let native = Native::start();
    let (_server, addr) = wasabi_server(&[]);
    for path in ["/headers", "/status?code=201", "/dump?x=1"] {
        let upgraded = curl_raw(&["--http2", &format!("http://{addr}{path}")]);
        let upgraded = normalized(&after_switching(upgraded)).replace(&addr, "ADDR");
        let expected = curl(&[
            "--http2-prior-knowledge",
            &format!("http://{}{path}", native.addr),
        ])
        .replace(&native.addr, "ADDR");
        assert_eq!(upgraded, expected, "{path}");
    }
    // Several requests: the first upgrades, the others reuse the HTTP/2
    // connection.
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "%{http_version} %{num_connects}\n", "--http2"]);
    for path in ["/headers", "/dump", "/status?code=204"] {
        cmd.args(["-o", "/dev/null", &format!("http://{addr}{path}")]);
    }
    let out = cmd.output().expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 1\n2 0\n2 0\n");
}

#[test]
fn a_client_that_asks_for_h2c_and_then_misbehaves_loses_only_its_connection() {
    let (_server, addr) = wasabi_server(&["--http-header-timeout", "300ms"]);
    let upgrade = "GET /headers HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                   Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    // After the 101: HTTP/1.1 again instead of the HTTP/2 preface; a
    // preface followed by a frame that is not SETTINGS; and nothing at all
    // (closed once the head timeout passes).
    let mut ping = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    ping.extend_from_slice(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for after in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &ping, b""] {
        let started = Instant::now();
        let mut request = upgrade.as_bytes().to_vec();
        request.extend_from_slice(after);
        let out = exchange(&addr, &request, Duration::from_secs(10));
        assert!(
            out.starts_with("HTTP/1.1 101 Switching Protocols"),
            "{out:?}"
        );
        assert!(!out.contains("HTTP/1.1 200"), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "closed in time");
    }
    // The server still serves, upgrades included.
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_version}", "-o", "/dev/null", "--http2"])
        .arg(format!("http://{addr}/headers"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2");
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it or `within` passes: what came back.
fn exchange(addr: &str, request: &[u8], within: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(within)).expect("timeout");
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_server, addr) = wasabi_server(&[]);
    // Three requests in one write; the last asks to close.
    let requests = "GET /status?code=201 HTTP/1.1\r\nHost: x\r\n\r\n\
                    POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
                    GET /status?code=202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let out = exchange(&addr, requests.as_bytes(), Duration::from_secs(10));
    // Status lines, wherever they start (the echoed body has no newline).
    let statuses: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| out[at..].split("\r\n").next())
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 201 Created",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 202 Accepted"
        ],
        "{out:?}"
    );
    let first = out.find("status 201").expect("first body");
    let echo = out.find("hello").expect("echoed body");
    let last = out.find("status 202").expect("last body");
    assert!(first < echo && echo < last, "{out:?}");
}

/// The server answers a plain request: nothing a test did broke it.
fn assert_still_answers(addr: &str) {
    let out = exchange(
        addr,
        b"GET /status?code=200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out:?}");
}

#[test]
fn a_request_head_that_comes_too_slowly_gets_408() {
    let (_server, addr) = wasabi_server(&["--http-header-timeout", "300ms"]);
    let started = Instant::now();
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // A slowloris client: part of a head, then nothing.
    s.write_all(b"GET /headers HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout"), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_request_head_over_the_limit_gets_431() {
    let (server, addr) = wasabi_server(&["--http-max-header", "16KiB"]);
    let big = "x".repeat(32 << 10);
    let request = format!("GET /dump HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let out = exchange(&addr, request.as_bytes(), Duration::from_secs(10));
    assert!(
        out.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{out:?}"
    );
    // The handler never saw it; the server still answers.
    assert_still_answers(&addr);
    drop(server);
}

#[test]
fn a_body_over_the_limit_gets_413_declared_or_chunked() {
    let (_server, addr) = wasabi_server(&["--http-max-body", "1000"]);
    let declared = format!(
        "POST /dump HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{}",
        "d".repeat(5000)
    );
    let out = exchange(&addr, declared.as_bytes(), Duration::from_secs(10));
    assert!(out.starts_with("HTTP/1.1 413 Payload Too Large"), "{out:?}");
    let chunk = "c".repeat(800);
    let chunked = format!(
        "POST /dump HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    let out = exchange(&addr, chunked.as_bytes(), Duration::from_secs(10));
    assert!(out.starts_with("HTTP/1.1 413 Payload Too Large"), "{out:?}");
    // Within the limit, the same body goes through.
    let small =
        "POST /dump HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let out = exchange(&addr, small.as_bytes(), Duration::from_secs(10));
    assert!(out.contains("\"body_len\":5"), "{out:?}");
}

#[test]
fn a_client_reset_mid_body_reaches_the_handler_as_an_error_and_nothing_else() {
    let (mut server, addr) = wasabi_server(&[]);
    {
        let s = TcpStream::connect(&addr).expect("connect");
        let mut w = &s;
        w.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
            .expect("head");
        w.write_all(&[b'r'; 64 << 10]).expect("part of the body");
        std::thread::sleep(Duration::from_millis(200));
        // Close with a reset, not a FIN.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
    }
    let line = server.line();
    assert!(line.starts_with("echo failed after "), "{line}");
    assert_still_answers(&addr);
}

#[test]
fn past_the_request_cap_clients_get_503_with_retry_after() {
    let (mut server, addr) = wasabi_server(&["--http-max-requests", "2"]);
    let hold = |addr: &str| {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        s
    };
    let first = hold(&addr);
    let second = hold(&addr);
    std::thread::sleep(Duration::from_millis(300));
    let out = exchange(
        &addr,
        b"GET /status?code=200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(
        out.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{out:?}"
    );
    assert!(
        out.to_ascii_lowercase().contains("retry-after: 1"),
        "{out:?}"
    );
    // The two held requests are cancelled when their clients leave, and
    // the cap frees up.
    drop(first);
    drop(second);
    assert_eq!(server.line(), "cancelled /slow");
    assert_eq!(server.line(), "cancelled /slow");
    assert_still_answers(&addr);
}

#[test]
fn hijack_says_why_it_cannot_and_a_panic_closes_only_its_request() {
    let (_server, addr) = wasabi_server(&[]);
    let out = exchange(
        &addr,
        b"GET /hijack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(out.starts_with("HTTP/1.1 501 Not Implemented"), "{out:?}");
    assert!(
        out.contains("Hijack is not supported when the host serves HTTP"),
        "{out:?}"
    );
    // As natively: a panicking handler's connection closes without an
    // answer, and the server carries on.
    let out = exchange(
        &addr,
        b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(out, "");
    assert_still_answers(&addr);
}

#[test]
fn the_socket_level_server_still_serves_with_http_serve() {
    let addr = format!("127.0.0.1:{}", free_port());
    let grant = format!("--allow-listen={addr}");
    let mut server = Background::start(
        &program("http-handlers.wasm"),
        &[grant.as_str()],
        &["-addr", &addr, "-socket"],
    );
    assert_eq!(server.line(), format!("listening on {addr}"));
    // Go's own server runs in the guest: Hijack works there.
    let out = exchange(
        &addr,
        b"GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(out.ends_with("hijacked"), "{out:?}");
}

/// A self-signed certificate for `localhost`, made here: (cert, key) files.
fn certificate(dir: &std::path::Path) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("make a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn https_with_a_certificate_made_here_serves_http2_and_http1_by_alpn() {
    let dir = support::scratch("http-serve-tls");
    let (cert, key) = certificate(&dir);
    let (_server, addr) = wasabi_server(&["--tls-cert", &cert, "--tls-key", &key]);
    let port = addr.rsplit(':').next().expect("a port");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/dump");
    for (flag, proto, alpn) in [
        ("--http2", "HTTP/2.0", "h2"),
        ("--http1.1", "HTTP/1.1", "http/1.1"),
    ] {
        let body = curl(&["--cacert", &cert, "--resolve", &resolve, flag, &url]);
        for want in [
            "\"tls\":true".to_string(),
            format!("\"tls_alpn\":\"{alpn}\""),
            "\"tls_server_name\":\"localhost\"".to_string(),
            format!("\"proto\":\"{proto}\""),
        ] {
            assert!(body.contains(&want), "{want} in {body}");
        }
    }
    // A client that does not trust the certificate stops at the handshake
    // (curl's code 60), and the server carries on.
    let untrusted = Command::new("curl")
        .args(["-s", "--resolve", &resolve, &url])
        .status()
        .expect("curl");
    assert_eq!(untrusted.code(), Some(60));
    let again = curl(&["--cacert", &cert, "--resolve", &resolve, &url]);
    assert!(again.contains("\"tls\":true"), "{again}");
}

#[test]
fn a_certificate_or_key_that_cannot_serve_is_refused_before_anything_runs() {
    let dir = support::scratch("http-serve-bad-tls");
    let (cert, key) = certificate(&dir);
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let other = support::scratch("http-serve-bad-tls-other");
    let (_, other_key) = certificate(&other);
    let garbage = garbage.display().to_string();
    for (flags, says) in [
        (
            vec!["--tls-cert", garbage.as_str(), "--tls-key", key.as_str()],
            "no CERTIFICATE block",
        ),
        (
            vec!["--tls-cert", cert.as_str(), "--tls-key", garbage.as_str()],
            "private key",
        ),
        (
            vec!["--tls-cert", cert.as_str(), "--tls-key", other_key.as_str()],
            "cannot be used together",
        ),
        (vec!["--tls-cert", cert.as_str()], "--tls-key"),
    ] {
        let out = support::run_guest(&program("http-handlers.wasm"), &flags, &[]);
        let err = support::stderr(&out);
        assert!(!out.status.success());
        assert!(err.contains(says), "{says:?} in {err}");
        assert!(!err.contains("listening"), "{err}");
    }
}

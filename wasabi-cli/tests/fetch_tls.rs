//! `http.Get("https://...")` unchanged: a Go guest that never imports
//! Wasabi's module calls a real HTTPS server (rustls, HTTP/2 and HTTP/1.1,
//! a CA made for the test) through the host's `fetch`, and gets what the
//! same program gets natively; every certificate failure reaches Go with
//! its reason, and the policy is checked before any connection.

mod support;

use std::path::PathBuf;

use support::*;
use wasabi_net::testbed::{Pki, TestServer, Validity};

/// A CA, its certificate in a file, and a server with a certificate it
/// issued for `localhost`.
struct Bed {
    pki: Pki,
    ca_file: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bed(name: &str) -> Bed {
    let dir = std::env::temp_dir().join(format!("wasabi-fetch-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new("Wasabi test CA");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, pki.ca_pem()).unwrap();
    Bed {
        pki,
        ca_file,
        _dir: TempDir(dir),
    }
}

impl Bed {
    fn server(&self, validity: Validity, h2: bool) -> TestServer {
        TestServer::start(Some(self.pki.issue(&["localhost"], validity)), h2)
    }

    /// Runs http-get under Wasabi, trusting the bed's CA, allowed to
    /// connect to localhost.
    fn guest(&self, args: &[&str]) -> std::process::Output {
        let ca = format!("--ca-cert={}", self.ca_file.display());
        run_guest(
            &program("http-get.wasm"),
            &["--allow-connect=localhost", &ca],
            args,
        )
    }

    /// Runs http-get natively, trusting the bed's CA (Go reads
    /// `SSL_CERT_FILE` on Linux).
    fn native(&self, args: &[&str]) -> std::process::Output {
        let ca = self.ca_file.display().to_string();
        run_native("http-get", &[("SSL_CERT_FILE", &ca)], args)
    }
}

#[test]
fn https_answers_are_the_same_as_natively_over_http2_and_http1() {
    let bed = bed("same");
    for h2 in [true, false] {
        let server = bed.server(Validity::Current, h2);
        let hello = server.url("localhost", "/hello");
        let to_hello = server.url("localhost", &format!("/redirect/302?{hello}"));
        let echo = server.url("localhost", "/echo");
        let base = server.url("localhost", "/status");
        for args in [
            ["get", hello.as_str()],
            ["post", echo.as_str()],
            ["redirect", to_hello.as_str()],
            ["status", base.as_str()],
        ] {
            let guest = bed.guest(&args);
            let native = bed.native(&args);
            assert!(
                guest.status.success(),
                "{args:?}: {}{}",
                stdout(&guest),
                stderr(&guest)
            );
            assert_eq!(
                stdout(&guest),
                stdout(&native),
                "{args:?} (h2 offered: {h2})"
            );
        }
        let guest = stdout(&bed.guest(&["get", &hello]));
        let protocol = if h2 { "HTTP/2.0" } else { "HTTP/1.1" };
        assert!(guest.contains(&format!("hello over {protocol}")), "{guest}");
        assert!(guest.contains("x-test: one|two"), "{guest}");
    }
}

#[test]
fn each_certificate_failure_reaches_go_with_its_reason() {
    let bed = bed("fail");
    let good = bed.server(Validity::Current, true);
    let expired = bed.server(Validity::Expired, true);
    let hello = good.url("localhost", "/hello");
    // Untrusted: without --ca-cert, only the system's CAs are trusted.
    let out = run_guest(
        &program("http-get.wasm"),
        &["--allow-connect=localhost"],
        &["get", &hello],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("fetch failed: Error: TLS handshake with localhost:")
            && text.contains("certificate is signed by an unknown authority"),
        "{text}"
    );
    let out = bed.guest(&["get", &expired.url("localhost", "/hello")]);
    let text = stdout(&out);
    assert!(
        text.contains("certificate has expired (valid until 2020-01-01"),
        "{text}"
    );
    // The certificate names localhost; the URL names 127.0.0.1.
    let ca = format!("--ca-cert={}", bed.ca_file.display());
    let out = run_guest(
        &program("http-get.wasm"),
        &["--allow-connect=127.0.0.1", &ca],
        &["get", &good.url("127.0.0.1", "/hello")],
    );
    let text = stdout(&out);
    assert!(
        text.contains("certificate is valid for localhost, not for this host name"),
        "{text}"
    );
    // A CA file that holds no certificate is refused before the program runs.
    let out = run_guest(
        &program("http-get.wasm"),
        &["--ca-cert=/etc/hostname"],
        &["get", &hello],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--ca-cert: CA certificate /etc/hostname"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_denied_https_host_fails_before_any_connection() {
    let bed = bed("deny");
    let server = bed.server(Validity::Current, true);
    let ca = format!("--ca-cert={}", bed.ca_file.display());
    let out = run_guest(
        &program("http-get.wasm"),
        &[&ca],
        &["get", &server.url("localhost", "/hello")],
    );
    let port = server.port();
    assert!(
        stdout(&out).contains(&format!(
            "connecting to localhost:{port} is not allowed: grant it with --allow-connect=localhost:{port}"
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.accepts(), 0);
}

#[test]
fn a_hundred_gets_share_one_pooled_connection() {
    let bed = bed("pool");
    for h2 in [true, false] {
        let server = bed.server(Validity::Current, h2);
        let out = bed.guest(&["loop", &server.url("localhost", "/hello"), "100"]);
        assert!(
            stdout(&out).starts_with("requests: 100,"),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(server.accepts(), 1, "h2 offered: {h2}");
    }
    // Connection: close is honoured: one connection each.
    let server = bed.server(Validity::Current, false);
    let out = bed.guest(&["loop-close", &server.url("localhost", "/hello"), "20"]);
    assert!(
        stdout(&out).starts_with("requests: 20,"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.accepts(), 20);
}

/// Runs a js/wasm program under Node.js with Go's own `wasm_exec_node.js`.
fn run_under_node(wasm: &std::path::Path, args: &[&str]) -> std::process::Output {
    let goroot = std::process::Command::new("go")
        .args(["env", "GOROOT"])
        .output()
        .expect("go env GOROOT");
    let goroot = String::from_utf8_lossy(&goroot.stdout).trim().to_string();
    let mut cmd = std::process::Command::new("node");
    cmd.arg(format!("{goroot}/lib/wasm/wasm_exec_node.js"))
        .arg(wasm)
        .args(args);
    finish(cmd)
}

/// `fetch`, `Response` and `Promise` used through `syscall/js` directly
/// behave as under Node.js: chains, a Go executor, catch and finally,
/// text/json/arrayBuffer, bodyUsed, the redirect modes.
#[test]
fn fetch_and_promises_through_syscall_js_behave_as_under_node() {
    let server = TestServer::start(None, false);
    let base = server.url("127.0.0.1", "");
    let wasm = program("fetch-js.wasm");
    let guest = run_guest(&wasm, &["--allow-connect=127.0.0.1"], &[&base]);
    let node = run_under_node(&wasm, &[&base]);
    assert!(
        node.status.success(),
        "node: {}{}",
        stdout(&node),
        stderr(&node)
    );
    assert_eq!(stdout(&guest), stdout(&node), "{}", stderr(&guest));
    assert!(
        stdout(&guest).contains("chain: the answer is 42"),
        "{}",
        stdout(&guest)
    );
}

/// The system's CA bundle is read at a tenant's first TLS connection, not
/// at every start: with `SSL_CERT_FILE` naming a FIFO nobody writes (where
/// a read would block for ever), a program that makes no HTTPS request
/// still runs and ends.
#[test]
fn a_program_that_makes_no_https_request_reads_no_ca_bundle() {
    let dir = std::env::temp_dir().join(format!("wasabi-no-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("never-written");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let hello = program("hello.wasm");
    warm(&hello);
    let mut cmd = wasabi();
    cmd.env("SSL_CERT_FILE", &fifo)
        .arg("run")
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg(&hello);
    let out = finish(cmd);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", stderr(&out));
}

//! `http.Get` unchanged: a guest that never imports Wasabi's module reaches
//! a real HTTP server (written here, on std sockets) through the host's
//! `fetch`, under the connect policy.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::*;

/// A request as the server saw it.
#[derive(Debug)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Serves each connection on a thread with `answer`, reporting every
/// request it reads; the address to use is returned.
fn server(answer: fn(&Seen, &mut TcpStream)) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                while let Some(seen) = read_request(&mut stream) {
                    answer(&seen, &mut stream);
                    let _ = tx.send(seen);
                }
            });
        }
    });
    (addr, rx)
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen { head, body })
}

fn path_of(seen: &Seen) -> &str {
    seen.head.split(' ').nth(1).unwrap_or("/")
}

fn fetch_guest(flags: &[&str], mode: &str, url: &str) -> std::process::Output {
    run_guest(&program("http-get.wasm"), flags, &[mode, url])
}

#[test]
fn headers_status_and_body_arrive() {
    let (addr, seen) = server(|_, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nX-Test: one\r\nX-Test: two\r\nContent-Type: text/plain\r\n\
              Content-Length: 5\r\n\r\nhello",
        );
    });
    let out = fetch_guest(
        &["--allow-connect=127.0.0.1"],
        "get",
        &format!("http://{addr}/a?b=c"),
    );
    assert_eq!(
        stdout(&out),
        "status: 200 OK\nx-test: one|two\ncontent-type: text/plain\nbody: \"hello\"\n",
        "{}",
        stderr(&out)
    );
    let request = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        request.head.starts_with("GET /a?b=c HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains(&format!("host: {addr}"))
    );
}

#[test]
fn a_post_carries_its_headers_and_body() {
    let (addr, seen) = server(|seen, s| {
        let echo = format!(
            "x-request={} body={}",
            seen.head.to_ascii_lowercase().contains("x-request: yes"),
            String::from_utf8_lossy(&seen.body)
        );
        let _ = write!(
            s,
            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n{echo}",
            echo.len()
        );
    });
    let out = fetch_guest(
        &["--allow-connect=127.0.0.1"],
        "post",
        &format!("http://{addr}/p"),
    );
    assert_eq!(
        stdout(&out),
        "status: 201\necho: x-request=true body=ping from the guest\n",
        "{}",
        stderr(&out)
    );
    assert!(
        seen.recv_timeout(Duration::from_secs(5))
            .unwrap()
            .head
            .starts_with("POST /p ")
    );
}

#[test]
fn status_codes_reach_the_program() {
    let (addr, _seen) = server(|seen, s| {
        let code = path_of(seen).trim_start_matches('/').to_string();
        let extra = if code == "301" {
            "Location: /elsewhere\r\n"
        } else {
            ""
        };
        let body = if code == "204" { "" } else { "x" };
        let _ = write!(
            s,
            "HTTP/1.1 {code} Whatever\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let out = fetch_guest(
        &["--allow-connect=127.0.0.1"],
        "status",
        &format!("http://{addr}"),
    );
    assert_eq!(
        stdout(&out),
        "204 -> 204 \n301 -> 301 /elsewhere\n404 -> 404 \n500 -> 500 \n",
        "{}",
        stderr(&out)
    );
}

/// 32 MiB, deterministic, not compressible into a pattern a bug could fake.
fn large_body() -> Vec<u8> {
    let mut out = Vec::with_capacity(32 << 20);
    let mut block = Sha256::digest(b"wasabi").to_vec();
    while out.len() < 32 << 20 {
        block = Sha256::digest(&block).to_vec();
        out.extend_from_slice(&block);
    }
    out
}

#[test]
fn a_large_body_streams_through_in_chunks() {
    let (addr, _seen) = server(|_, s| {
        // Chunked, in pieces of 64 KiB: the body has no length up front.
        let body = large_body();
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for piece in body.chunks(64 << 10) {
            let _ = write!(s, "{:x}\r\n", piece.len());
            let _ = s.write_all(piece);
            let _ = s.write_all(b"\r\n");
        }
        let _ = s.write_all(b"0\r\n\r\n");
    });
    let expected = format!(
        "streamed {} bytes, sha256 {:x}\n",
        32 << 20,
        Sha256::digest(large_body())
    );
    // 64 MiB of guest memory: the body cannot be buffered whole on the way.
    let out = fetch_guest(
        &["--allow-connect=127.0.0.1", "--max-memory=64MiB"],
        "stream",
        &format!("http://{addr}/big"),
    );
    assert_eq!(stdout(&out), expected, "{}", stderr(&out));
}

#[test]
fn a_cancelled_request_closes_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // Read the request, never answer, and report when the client hangs up.
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let n = s.read(&mut buf);
        let _ = closed_tx.send(matches!(n, Ok(0)));
    });
    let out = fetch_guest(
        &["--allow-connect=127.0.0.1"],
        "cancel",
        &format!("http://{addr}/stall"),
    );
    assert_eq!(stdout(&out), "cancelled: true true\n", "{}", stderr(&out));
    assert_eq!(closed.recv_timeout(Duration::from_secs(20)), Ok(true));
}

#[test]
fn a_denied_address_fails_with_the_grant_to_ask_for() {
    let (addr, seen) = server(|_, _| {});
    let out = fetch_guest(&[], "get", &format!("http://{addr}/"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "error: Get \"http://{addr}/\": net/http: fetch() failed: TypeError: fetch failed: \
             Error: connecting to {addr} is not allowed: grant it with --allow-connect={addr}\n"
        )
    );
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing reached the server"
    );
    // A grant for another port is not a grant for this one.
    let out = fetch_guest(
        &["--allow-connect=127.0.0.1:1"],
        "get",
        &format!("http://{addr}/"),
    );
    assert!(stdout(&out).contains("is not allowed"), "{}", stdout(&out));
}

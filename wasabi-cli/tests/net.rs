//! Networking, end to end: real Go guests on real loopback sockets, talking
//! to Rust clients and servers in the test, under the network policy.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::*;

/// Generous bound for any single network step; a hang is a failure.
const STEP: Duration = Duration::from_secs(30);

/// The byte stream both sides of a transfer send (same as net-probe's).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(i / 251)) as u8
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tcp-echo guest on a free port, and its address.
fn echo_server(flags: &[&str]) -> (Background, String) {
    let mut guest = Background::start(&program("tcp-echo.wasm"), flags, &["-addr", "127.0.0.1:0"]);
    let line = guest.line();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (guest, addr)
}

#[test]
fn go_net_example_makes_1000_requests_to_itself() {
    let addr = format!("127.0.0.1:{}", free_port());
    let out = run_guest(
        &program("go-net-example.wasm"),
        &[
            &format!("--allow-listen={addr}"),
            &format!("--allow-connect={addr}"),
        ],
        &["-addr", &addr],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let answered = err
        .lines()
        .filter(|l| l.starts_with("GET /hello/") && l.contains(&format!("from {addr}")))
        .count();
    assert_eq!(answered, 1000, "{err}");
    assert!(err.contains("1000 requests served and answered"), "{err}");
}

#[test]
fn a_rust_client_talks_to_a_guest_echo_server() {
    let (_guest, addr) = echo_server(&["--allow-listen=127.0.0.1"]);
    // Raw TCP echo, ended by a half close from each side.
    assert_eq!(echo_once(&addr, b"hello, guest"), b"hello, guest");

    // 100 concurrent connections, all open at once before any finishes.
    let streams: Vec<TcpStream> = (0..100).map(|_| connect(&addr)).collect();
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            thread::spawn(move || {
                let msg = format!("connection {i} says hello");
                s.write_all(msg.as_bytes()).expect("write");
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back).expect("echo");
                assert_eq!(back, msg.as_bytes());
                s.shutdown(Shutdown::Write).expect("half close");
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).expect("end");
                assert!(rest.is_empty());
            })
        })
        .collect();
    for h in handles {
        h.join().expect("connection thread");
    }

    // 16 MiB through the guest and back, written and read concurrently.
    const SIZE: usize = 16 << 20;
    let mut s = connect(&addr);
    let mut writer = s.try_clone().expect("clone");
    let sent = thread::spawn(move || {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut at = 0;
        while at < SIZE {
            let n = buf.len().min(SIZE - at);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(at + i);
            }
            writer.write_all(&buf[..n]).expect("write");
            h.update(&buf[..n]);
            at += n;
        }
        writer.shutdown(Shutdown::Write).expect("half close");
        hex(&h.finalize())
    });
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0;
    loop {
        let n = s.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        received += n;
    }
    assert_eq!(received, SIZE);
    assert_eq!(hex(&h.finalize()), sent.join().expect("writer"));
}

/// Sends one HTTP/1.1 request on `s` and reads one response: (status line,
/// headers, body).
fn http_exchange(
    s: &mut BufReader<TcpStream>,
    request: &str,
) -> (String, Vec<(String, String)>, String) {
    s.get_mut()
        .write_all(request.as_bytes())
        .expect("send request");
    let mut status = String::new();
    s.read_line(&mut status).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        s.read_line(&mut line).expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("a header");
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().expect("length"))
        .expect("a Content-Length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("body");
    (
        status.trim_end().to_string(),
        headers,
        String::from_utf8(body).expect("utf-8"),
    )
}

#[test]
fn a_rust_client_talks_http_to_a_guest_server() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut guest = Background::start(
        &program("net-probe.wasm"),
        &[&format!("--allow-listen={addr}")],
        &["serve-http", &addr],
    );
    assert_eq!(guest.line(), format!("serving on {addr}"));
    let mut s = BufReader::new(connect(&addr));
    // Two requests on one keep-alive connection.
    let (status, headers, body) = http_exchange(
        &mut s,
        &format!("GET /first HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains(&("x-served-by".into(), "net-probe".into())));
    assert_eq!(body, "GET /first with 0 bytes\n");
    let (status, _, body) = http_exchange(
        &mut s,
        &format!("POST /second HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 11\r\n\r\nhello there"),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "POST /second with 11 bytes\n");
}

#[test]
fn a_guest_client_talks_http_to_a_rust_server() {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().expect("addr").to_string();
    let served = thread::spawn(move || {
        let (s, _) = server.accept().expect("accept");
        let mut s = BufReader::new(s);
        let mut request = Vec::new();
        loop {
            let mut line = String::new();
            s.read_line(&mut line).expect("request line");
            if line.trim_end().is_empty() {
                break;
            }
            request.push(line.trim_end().to_string());
        }
        // A chunked body, so the guest's client decodes it.
        s.get_mut()
            .write_all(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n\
                  6\r\nhello \r\n6\r\nfrom r\r\n4\r\nust\n\r\n0\r\n\r\n",
            )
            .expect("respond");
        request
    });
    let out = run_guest(
        &program("http-client.wasm"),
        &[&format!("--allow-connect={addr}")],
        &[&format!("http://{addr}/path?q=1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "HTTP/1.1 201 Created\nhello from rust\n");
    let request = served.join().expect("server");
    assert_eq!(request[0], "GET /path?q=1 HTTP/1.1");
    assert!(request.contains(&format!("Host: {addr}")), "{request:?}");
}

#[test]
fn a_guest_client_transfers_16_mib_each_way() {
    const SIZE: usize = 16 << 20;
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().expect("addr").to_string();
    let served = thread::spawn(move || {
        let (mut s, _) = server.accept().expect("accept");
        let mut writer = s.try_clone().expect("clone");
        let sent = thread::spawn(move || {
            let mut h = Sha256::new();
            let data: Vec<u8> = (0..SIZE).map(|i| pattern(i).wrapping_add(1)).collect();
            h.update(&data);
            writer.write_all(&data).expect("send");
            writer.shutdown(Shutdown::Write).expect("half close");
            hex(&h.finalize())
        });
        let mut got = Vec::with_capacity(SIZE);
        s.read_to_end(&mut got).expect("receive");
        let expected: Vec<u8> = (0..SIZE).map(pattern).collect();
        assert!(got == expected, "the guest's bytes arrived changed");
        (hex(&Sha256::digest(&got)), sent.join().expect("sender"))
    });
    let out = run_guest(
        &program("net-probe.wasm"),
        &[&format!("--allow-connect={addr}")],
        &["transfer", &addr, &SIZE.to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (received_here, sent_here) = served.join().expect("server");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("sent {SIZE} sha256 {received_here}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("received {SIZE} sha256 {sent_here}")),
        "{text}"
    );
}

/// A server that stays silent until it receives 4 bytes, echoes them, and
/// holds the connection open until the client leaves.
fn silent_then_echo_server() -> String {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for s in server.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() {
                    let _ = s.write_all(&buf);
                    let _ = s.read_to_end(&mut Vec::new());
                }
            });
        }
    });
    addr
}

#[test]
fn a_read_deadline_ends_a_blocked_read_as_natively() {
    let addr = silent_then_echo_server();
    let flag = format!("--allow-connect={addr}");
    let out = run_guest(&program("net-probe.wasm"), &[&flag], &["deadline", &addr]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = "read ended after the deadline: true; timeout: true; deadline exceeded: true\n\
                    blocked read woken by a past deadline: true\n\
                    after clearing the deadline: ping\n";
    assert_eq!(stdout(&out), expected);
    let native = run_native("net-probe", &[], &["deadline", &addr]);
    assert_eq!(stdout(&native), expected, "{}", stderr(&native));
}

#[test]
fn refused_and_reset_connections_reach_the_guest_as_go_errors() {
    // Refused: nothing listens on the port.
    let closed = format!("127.0.0.1:{}", free_port());
    let out = run_guest(
        &program("net-probe.wasm"),
        &[&format!("--allow-connect={closed}")],
        &["read", &closed],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("net-probe: dial tcp {closed}: connection refused\n")
    );

    // Reset: the server accepts, then aborts the connection.
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        let (s, _) = server.accept().expect("accept");
        let mut s = s;
        s.write_all(b"partial").expect("write");
        thread::sleep(Duration::from_millis(100));
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(s);
    });
    let out = run_guest(
        &program("net-probe.wasm"),
        &[&format!("--allow-connect={addr}")],
        &["read", &addr],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("read 7 bytes, then: read tcp ")
            && text.ends_with(": connection reset by peer\n"),
        "{text}"
    );
}

#[test]
fn every_policy_denial_names_the_flag_that_grants_it() {
    let probe = program("net-probe.wasm");
    let denied = |flags: &[&str], args: &[&str], expected: &str| {
        let out = run_guest(&probe, flags, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?} {args:?}: {err}");
        assert!(err.contains(expected), "{flags:?} {args:?}: {err}");
    };
    let allowed = |flags: &[&str], args: &[&str]| {
        let out = run_guest(&probe, flags, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?} {args:?}: {}",
            stderr(&out)
        );
    };
    // Listening: nothing by default, exactly the granted address otherwise.
    denied(
        &[],
        &["listen", "127.0.0.1:0"],
        "listen tcp 127.0.0.1:0: listening on 127.0.0.1:0 is not allowed: \
         grant it with --allow-listen=127.0.0.1:0",
    );
    denied(
        &["--allow-listen=127.0.0.1:8080"],
        &["listen", "127.0.0.1:0"],
        "--allow-listen=127.0.0.1:0",
    );
    denied(
        &["--allow-listen=127.0.0.1"],
        &["listen", ":0"],
        "--allow-listen=0.0.0.0:0",
    );
    denied(
        &["--allow-connect=127.0.0.1"],
        &["listen", "127.0.0.1:0"],
        "--allow-listen=127.0.0.1:0",
    );
    allowed(&["--allow-listen=127.0.0.1"], &["listen", "127.0.0.1:0"]);
    allowed(&["--allow-listen=127.0.0.0/8"], &["listen", "127.0.0.1:0"]);
    allowed(&["--allow-net"], &["listen", "127.0.0.1:0"]);
    allowed(&["--allow-net=127.0.0.1"], &["listen", "127.0.0.1:0"]);

    // Connecting: the same, checked before any packet leaves.
    let addr = silent_then_echo_server();
    let port = addr.rsplit_once(':').expect("port").1;
    let other_port = format!("127.0.0.1:{}", free_port());
    let msg = format!(
        "dial tcp {addr}: connecting to {addr} is not allowed: grant it with --allow-connect={addr}"
    );
    denied(&[], &["read", &addr], &msg);
    denied(&["--allow-listen=127.0.0.1"], &["read", &addr], &msg);
    denied(
        &[&format!("--allow-connect={other_port}")],
        &["read", &addr],
        &msg,
    );
    denied(
        &["--allow-connect=10.0.0.0/8"],
        &["read", &addr],
        &format!("--allow-connect={addr}"),
    );
    denied(
        &["--allow-connect=127.0.0.1"],
        &["read", &format!("localhost:{port}")],
        &format!("--allow-connect=localhost:{port}"),
    );
    // Granted, the server's silence ends when the server sees the guest go;
    // `many` only opens connections and exits.
    allowed(&[&format!("--allow-connect={addr}")], &["many", &addr, "1"]);
    allowed(&["--allow-connect=127.0.0.0/8"], &["many", &addr, "1"]);
    allowed(
        &[&format!("--allow-connect=localhost:{port}")],
        &["many", &format!("localhost:{port}"), "1"],
    );
    allowed(&["--allow-net"], &["many", &addr, "1"]);

    // A malformed grant is the user's error, reported before anything runs.
    let out = run_guest(
        &probe,
        &["--allow-connect=127.0.0.1:http"],
        &["many", &addr, "1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid address rule `127.0.0.1:http`"));
}

#[test]
fn the_socket_cap_is_enforced_with_a_clear_error() {
    let addr = silent_then_echo_server();
    let flags = [
        &format!("--allow-connect={addr}") as &str,
        "--max-connections=3",
    ];
    let out = run_guest(&program("net-probe.wasm"), &flags, &["many", &addr, "3"]);
    assert_eq!(stdout(&out), "3 connections open\n", "{}", stderr(&out));
    let out = run_guest(&program("net-probe.wasm"), &flags, &["many", &addr, "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "net-probe: connection 4: dial tcp {addr}: too many open sockets: this program may \
             hold 3 at once: raise it with --max-connections\n"
        )
    );
}

#[test]
fn closing_a_listener_ends_a_pending_accept_with_err_closed() {
    let out = run_guest(
        &program("net-probe.wasm"),
        &["--allow-listen=127.0.0.1"],
        &["accept-close"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "accept after close: net.ErrClosed: true\n");
}

#[test]
fn however_a_guest_ends_its_connections_close() {
    // (how it ends, its flags, the exit status, what it says)
    let endings: [(&str, &[&str], i32, &str); 3] = [
        ("exit", &[], 3, ""),
        ("panic", &[], 2, "giving up with a connection open"),
        (
            "grow",
            &["--max-memory=64MiB"],
            134,
            "memory limit exceeded",
        ),
    ];
    for (how, flags, code, says) in endings {
        let server = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = server.local_addr().expect("addr").to_string();
        let peer = thread::spawn(move || {
            let (mut s, _) = server.accept().expect("accept");
            s.set_read_timeout(Some(STEP)).expect("timeout");
            let mut got = Vec::new();
            // Ends (rather than timing out) only if the guest's socket closes.
            let end = s.read_to_end(&mut got);
            (got, end.is_ok())
        });
        let allow = format!("--allow-connect={addr}");
        let mut all = vec![allow.as_str()];
        all.extend_from_slice(flags);
        let out = run_guest(&program("net-probe.wasm"), &all, &["hold", &addr, how]);
        assert_eq!(out.status.code(), Some(code), "{how}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{how}: {}", stderr(&out));
        let (got, ended) = peer.join().expect("peer");
        assert_eq!(got, b"hello", "{how}");
        assert!(ended, "{how}: the peer saw the connection end");
    }
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

#[test]
fn a_thousand_connections_leave_no_descriptor_behind() {
    let (guest, addr) = echo_server(&["--allow-listen=127.0.0.1"]);
    // One exchange first, so everything lazily opened is open.
    assert_eq!(echo_once(&addr, b"warm"), b"warm");
    let before = open_fds(guest.pid());
    for i in 0..1000u32 {
        let msg = i.to_string();
        assert_eq!(echo_once(&addr, msg.as_bytes()), msg.as_bytes());
    }
    // The guest closes each connection after its half close; give the last
    // ones a moment.
    let started = Instant::now();
    let mut after = open_fds(guest.pid());
    while after > before && started.elapsed() < STEP {
        thread::sleep(Duration::from_millis(20));
        after = open_fds(guest.pid());
    }
    assert!(
        after <= before,
        "{before} descriptors before, {after} after"
    );
}

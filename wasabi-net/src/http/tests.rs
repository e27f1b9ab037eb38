//! The client against real servers on loopback: plain HTTP on std sockets,
//! and HTTP/1.1 and HTTP/2 over TLS with a CA made for the test
//! ([`crate::testbed`]).

use super::*;
use crate::testbed::{Pki, TestServer, Validity, pattern};
use crate::{AddressRule, SocketQuota};
use std::io::{Read, Write};

fn policy(rules: &[&str]) -> NetPolicy {
    let mut p = NetPolicy::deny_all();
    for rule in rules {
        p.allow_connect(rule.parse::<AddressRule>().unwrap());
    }
    p
}

fn loopback() -> NetPolicy {
    policy(&["127.0.0.1", "localhost"])
}

fn client_with(policy: NetPolicy, quota: Arc<SocketQuota>, pki: Option<&Pki>) -> HttpClient {
    let tls = match pki {
        Some(pki) => {
            let der =
                rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).unwrap();
            ClientTls::with_extra_certificates(vec![der]).unwrap()
        }
        None => ClientTls::system(),
    };
    HttpClient::new(policy, quota, Arc::new(wasabi_limits::Uncounted), &tls)
}

use rustls::pki_types::pem::PemObject;

/// What a request came to.
#[derive(Debug)]
struct Fetched {
    status: u16,
    headers: Vec<(String, String)>,
    url: String,
    redirected: bool,
    body: Vec<u8>,
    /// The largest body chunk the client asked for.
    largest_ask: u64,
}

fn get(url: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: url.into(),
        ..HttpRequest::default()
    }
}

/// Runs `request` to its end, supplying `body` as the client asks for it.
async fn fetch(
    client: &mut HttpClient,
    mut request: HttpRequest,
    body: &[u8],
) -> Result<Fetched, NetError> {
    request.body_length = body.len() as u64;
    let id = client.start(request)?;
    let mut fetched = Fetched {
        status: 0,
        headers: Vec::new(),
        url: String::new(),
        redirected: false,
        body: Vec::new(),
        largest_ask: 0,
    };
    loop {
        match client.next_event().await {
            FetchEvent::BodyWanted { offset, len, .. } => {
                fetched.largest_ask = fetched.largest_ask.max(len);
                let range = offset as usize..(offset + len) as usize;
                client.supply_body(id, offset, Bytes::copy_from_slice(&body[range]));
            }
            FetchEvent::Head {
                status,
                headers,
                url,
                redirected,
                ..
            } => {
                (fetched.status, fetched.headers) = (status, headers);
                (fetched.url, fetched.redirected) = (url, redirected);
                client.pull(id).unwrap();
            }
            FetchEvent::Chunk { bytes, .. } => {
                fetched.body.extend_from_slice(&bytes);
                client.pull(id).unwrap();
            }
            FetchEvent::End { .. } => return Ok(fetched),
            FetchEvent::Failed { error, .. } => return Err(error),
        }
    }
}

fn header<'a>(f: &'a Fetched, name: &str) -> Vec<&'a str> {
    f.headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn a_request_reports_its_head_then_chunks_on_demand() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let serving = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 1024];
        let mut n = 0;
        while !String::from_utf8_lossy(&buf[..n]).contains("\r\n\r\nbody") {
            n += s.read(&mut buf[n..]).unwrap();
        }
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        s.write_all(b"HTTP/1.1 201 Created\r\nX-Answer: 42\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        head
    });
    let mut client = client_with(loopback(), SocketQuota::new(4), None);
    let id = client
        .start(HttpRequest {
            method: "POST".into(),
            url: format!("http://{addr}/path?q=1#fragment"),
            headers: vec![("x-mine".into(), "yes".into())],
            body_length: 4,
            ..HttpRequest::default()
        })
        .unwrap();
    assert!(client.has_pending());
    let FetchEvent::BodyWanted {
        offset: 0, len: 4, ..
    } = client.next_event().await
    else {
        panic!("expected the body to be asked for");
    };
    client.supply_body(id, 0, Bytes::from_static(b"body"));
    let FetchEvent::Head {
        status,
        headers,
        url,
        redirected,
        ..
    } = client.next_event().await
    else {
        panic!("expected the head");
    };
    assert_eq!(status, 201);
    assert!(headers.contains(&("x-answer".into(), "42".into())));
    assert_eq!(url, format!("http://{addr}/path?q=1"));
    assert!(!redirected);
    assert!(!client.has_pending());
    client.pull(id).unwrap();
    let FetchEvent::Chunk { bytes, .. } = client.next_event().await else {
        panic!("expected a chunk");
    };
    assert_eq!(&bytes[..], b"hello");
    client.pull(id).unwrap();
    assert!(matches!(client.next_event().await, FetchEvent::End { .. }));
    assert_eq!(client.in_flight(), 0);
    let head = serving.join().unwrap();
    assert!(head.starts_with("POST /path?q=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-mine: yes"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 4"),
        "{head}"
    );
}

#[tokio::test]
async fn bad_urls_and_denied_addresses_fail_at_once() {
    let mut client = client_with(loopback(), SocketQuota::new(1), None);
    let err = client.start(get("http://10.1.2.3/")).unwrap_err();
    assert_eq!(err.code(), "EACCES");
    assert_eq!(err.to_string(), "connecting to 10.1.2.3:80 is not allowed");
    let err = client.start(get("https://10.1.2.3/")).unwrap_err();
    assert_eq!(err.to_string(), "connecting to 10.1.2.3:443 is not allowed");
    for url in [
        "ftp://127.0.0.1/",
        "/relative",
        "http://127.0.0.1:99999/",
        "file:///etc/passwd",
    ] {
        assert!(client.start(get(url)).is_err(), "{url}");
    }
    let mut bad_header = get("http://127.0.0.1:1/");
    bad_header.headers = vec![("bad name".into(), "x".into())];
    assert!(client.start(bad_header).is_err());
    let mut bad_method = get("http://127.0.0.1:1/");
    bad_method.method = "GE T".into();
    assert!(client.start(bad_method).is_err());
    assert!(client.start(get("http://127.0.0.1:1/")).is_ok());
    let err = client.start(get("http://127.0.0.1:1/")).unwrap_err();
    assert_eq!(err.code(), "EMFILE");
    // The first one is refused by the kernel, as an event.
    let FetchEvent::Failed { error, .. } = client.next_event().await else {
        panic!("expected a failure");
    };
    assert_eq!(error.code(), "ECONNREFUSED");
}

#[tokio::test]
async fn https_works_with_a_trusted_ca_and_each_certificate_failure_says_why() {
    let pki = Pki::new("Wasabi test CA");
    let good = TestServer::start(Some(pki.issue(&["localhost"], Validity::Current)), false);
    let expired = TestServer::start(Some(pki.issue(&["localhost"], Validity::Expired)), false);
    let mut trusting = client_with(loopback(), SocketQuota::new(8), Some(&pki));
    let ok = fetch(&mut trusting, get(&good.url("localhost", "/hello")), b"")
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, b"hello over HTTP/1.1\n");
    assert_eq!(header(&ok, "x-test"), ["one", "two"]);

    // Not trusted: the system's CAs do not include the test's.
    let mut system_only = client_with(loopback(), SocketQuota::new(8), None);
    let err = fetch(&mut system_only, get(&good.url("localhost", "/hello")), b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "{err}");
    assert!(err.to_string().contains("unknown authority"), "{err}");

    let err = fetch(&mut trusting, get(&expired.url("localhost", "/hello")), b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CERT_HAS_EXPIRED", "{err}");
    assert!(err.to_string().contains("expired"), "{err}");

    // The certificate names localhost; the URL names 127.0.0.1.
    let err = fetch(&mut trusting, get(&good.url("127.0.0.1", "/hello")), b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_TLS_CERT_ALTNAME_INVALID", "{err}");
    assert!(
        err.to_string().contains("valid for localhost, not"),
        "{err}"
    );
    let by_ip = TestServer::start(Some(pki.issue(&["127.0.0.1"], Validity::Current)), false);
    let err = fetch(&mut trusting, get(&by_ip.url("localhost", "/hello")), b"")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("valid for 127.0.0.1, not"),
        "{err}"
    );

    // A self-signed CA certificate used as the server's own (what `openssl
    // req -x509` makes by default), trusted with --ca-cert: refused, saying
    // what to do instead.
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let identity = crate::testbed::Identity {
        chain: vec![cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    };
    let ca_as_server = TestServer::start(Some(identity), false);
    let tls = ClientTls::with_extra_certificates(vec![cert.der().clone()]).unwrap();
    let mut client = HttpClient::new(
        loopback(),
        SocketQuota::new(4),
        Arc::new(wasabi_limits::Uncounted),
        &tls,
    );
    let err = fetch(
        &mut client,
        get(&ca_as_server.url("localhost", "/hello")),
        b"",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("is a CA certificate"), "{err}");

    // A server that speaks no TLS.
    let plain = TestServer::start(None, false);
    let url = format!("https://127.0.0.1:{}/hello", plain.port());
    let err = fetch(&mut trusting, get(&url), b"").await.unwrap_err();
    assert!(
        err.to_string().starts_with("TLS handshake with 127.0.0.1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_denied_host_is_refused_before_any_connection() {
    let pki = Pki::new("Wasabi test CA");
    let server = TestServer::start(Some(pki.issue(&["localhost"], Validity::Current)), true);
    let mut client = client_with(policy(&["10.0.0.1"]), SocketQuota::new(8), Some(&pki));
    for host in ["localhost", "127.0.0.1"] {
        let err = client.start(get(&server.url(host, "/hello"))).unwrap_err();
        assert_eq!(err.code(), "EACCES");
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(server.accepts(), 0);
    assert_eq!(client.connections_opened(), 0);
}

#[tokio::test]
async fn a_hundred_requests_share_one_connection_over_http1_and_http2() {
    let pki = Pki::new("Wasabi test CA");
    for (h2, protocol) in [(false, "HTTP/1.1"), (true, "HTTP/2.0")] {
        let server = TestServer::start(Some(pki.issue(&["localhost"], Validity::Current)), h2);
        let mut client = client_with(loopback(), SocketQuota::new(8), Some(&pki));
        for _ in 0..100 {
            let f = fetch(&mut client, get(&server.url("localhost", "/hello")), b"")
                .await
                .unwrap();
            assert_eq!(f.body, format!("hello over {protocol}\n").as_bytes());
        }
        assert_eq!(server.accepts(), 1, "{protocol}");
        assert_eq!(client.connections_opened(), 1, "{protocol}");
    }
}

#[tokio::test]
async fn connection_close_opts_out_of_the_pool() {
    let server = TestServer::start(None, false);
    let mut client = client_with(loopback(), SocketQuota::new(8), None);
    for _ in 0..5 {
        let mut request = get(&server.url("127.0.0.1", "/hello"));
        request.headers = vec![("connection".into(), "close".into())];
        fetch(&mut client, request, b"").await.unwrap();
    }
    assert_eq!(server.accepts(), 5);
}

#[tokio::test]
async fn redirects_follow_each_hop_under_the_policy_or_as_the_mode_says() {
    let pki = Pki::new("Wasabi test CA");
    let server = TestServer::start(
        Some(pki.issue(&["localhost", "127.0.0.1"], Validity::Current)),
        true,
    );
    let mut client = client_with(loopback(), SocketQuota::new(8), Some(&pki));
    let hello = server.url("localhost", "/hello");
    let to_hello = server.url("localhost", &format!("/redirect/302?{hello}"));

    let f = fetch(&mut client, get(&to_hello), b"").await.unwrap();
    assert_eq!(
        (f.status, f.redirected, f.url.as_str()),
        (200, true, hello.as_str())
    );

    let mut manual = get(&to_hello);
    manual.redirect = RedirectMode::Manual;
    let f = fetch(&mut client, manual, b"").await.unwrap();
    assert_eq!((f.status, f.redirected), (302, false));
    assert_eq!(header(&f, "location"), [hello.as_str()]);

    let mut error = get(&to_hello);
    error.redirect = RedirectMode::Error;
    let err = fetch(&mut client, error, b"").await.unwrap_err();
    assert!(
        err.to_string().contains("redirect mode is `error`"),
        "{err}"
    );

    // A hop to a host the policy denies fails, naming it.
    let elsewhere = server.url("localhost", "/redirect/301?https://10.9.9.9/");
    let err = fetch(&mut client, get(&elsewhere), b"").await.unwrap_err();
    assert_eq!(err.to_string(), "connecting to 10.9.9.9:443 is not allowed");

    // 307 sends the body again; 303 turns a POST into a GET without it.
    let echo = server.url("localhost", "/echo");
    let body: Vec<u8> = (0..200_000).map(pattern).collect();
    let post = |path: &str| HttpRequest {
        method: "POST".into(),
        url: server.url("localhost", path),
        headers: vec![("authorization".into(), "Bearer secret".into())],
        ..HttpRequest::default()
    };
    let f = fetch(&mut client, post(&format!("/redirect/307?{echo}")), &body)
        .await
        .unwrap();
    assert_eq!(header(&f, "x-method"), ["POST"]);
    assert_eq!(header(&f, "x-auth"), ["Bearer secret"]);
    assert!(f.body == body, "the body arrives whole after a 307");
    assert!(f.largest_ask <= BODY_CHUNK);
    let f = fetch(&mut client, post(&format!("/redirect/303?{echo}")), &body)
        .await
        .unwrap();
    assert_eq!(header(&f, "x-method"), ["GET"]);
    assert!(f.body.is_empty());
    // Another origin does not get the credentials.
    let other = server.url("127.0.0.1", "/echo");
    let f = fetch(&mut client, post(&format!("/redirect/308?{other}")), b"x")
        .await
        .unwrap();
    assert_eq!(header(&f, "x-auth"), ["-"]);

    // A loop ends.
    let looping = server.url("localhost", "/redirect/302?/redirect/302");
    let err = fetch(&mut client, get(&looping), b"").await.unwrap_err();
    assert!(err.to_string().contains("too many redirects"), "{err}");
}

/// Pooled connections, HTTP/1.1 and HTTP/2 alike, hold places under the
/// cap, give them up when the tenant needs one, and close when the client
/// goes.
#[tokio::test]
async fn pooled_connections_count_under_the_cap_and_give_way() {
    let pki = Pki::new("Wasabi test CA");
    for (h2, protocol) in [(false, "HTTP/1.1"), (true, "HTTP/2.0")] {
        let server = TestServer::start(Some(pki.issue(&["localhost"], Validity::Current)), h2);
        let url = server.url("localhost", "/hello");
        let quota = SocketQuota::new(2);
        let mut client = client_with(loopback(), Arc::clone(&quota), Some(&pki));
        let f = fetch(&mut client, get(&url), b"").await.unwrap();
        assert_eq!(f.body, format!("hello over {protocol}\n").as_bytes());
        assert_eq!(
            quota.held(),
            1,
            "{protocol}: the unused connection holds its place"
        );
        let a = quota.take().unwrap();
        let b = quota
            .take()
            .unwrap_or_else(|e| panic!("{protocol}: the unused connection gives way: {e}"));
        assert!(quota.take().is_err());
        drop((a, b));
        fetch(&mut client, get(&url), b"").await.unwrap();
        assert_eq!(server.accepts(), 2, "{protocol}");
        assert_eq!(quota.held(), 1, "{protocol}");
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while quota.held() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            quota.held(),
            0,
            "{protocol}: dropping the client closes its connections"
        );
    }
}

/// An HTTP/2 connection with a response still being read is in use: it
/// does not give way, and the tenant's next socket is refused instead.
/// Once the response has been read, it does.
#[tokio::test]
async fn an_http2_connection_gives_way_only_when_no_stream_is_open() {
    let pki = Pki::new("Wasabi test CA");
    let server = TestServer::start(Some(pki.issue(&["localhost"], Validity::Current)), true);
    let quota = SocketQuota::new(1);
    let mut client = client_with(loopback(), Arc::clone(&quota), Some(&pki));
    let id = client
        .start(get(&server.url("localhost", "/bytes/1000000")))
        .unwrap();
    loop {
        match client.next_event().await {
            FetchEvent::Head { id: got, .. } if got == id => break,
            FetchEvent::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    assert!(quota.take().is_err(), "a stream is open on it");
    let mut read = 0;
    client.pull(id).unwrap();
    loop {
        match client.next_event().await {
            FetchEvent::Chunk { bytes, .. } => {
                read += bytes.len();
                client.pull(id).unwrap();
            }
            FetchEvent::End { .. } => break,
            FetchEvent::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    assert_eq!(read, 1_000_000);
    let slot = quota.take().expect("no stream is open: it gives way");
    drop(slot);
}

/// A guest that answers a body request with the wrong bytes fails its own
/// request, nothing else.
#[tokio::test]
async fn a_body_supplied_wrong_fails_the_request() {
    let server = TestServer::start(None, false);
    let mut client = client_with(loopback(), SocketQuota::new(4), None);
    let id = client
        .start(HttpRequest {
            method: "PUT".into(),
            url: server.url("127.0.0.1", "/echo"),
            body_length: 10,
            ..HttpRequest::default()
        })
        .unwrap();
    let FetchEvent::BodyWanted { offset, .. } = client.next_event().await else {
        panic!("expected a body request");
    };
    client.supply_body(id, offset, Bytes::from(vec![0; 11]));
    let FetchEvent::Failed { error, .. } = client.next_event().await else {
        panic!("expected a failure");
    };
    assert!(error.to_string().contains("changed size"), "{error}");
    let ok = fetch(&mut client, get(&server.url("127.0.0.1", "/hello")), b"").await;
    assert!(ok.is_ok());
}

/// A plain HTTP server on std sockets that answers its first request with
/// `answer`, then resets the connection (`reset`) or holds it open.
fn raw_server(answer: Vec<u8>, reset: bool) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&answer);
        if reset {
            // SO_LINGER 0: the close is a reset.
            let _ = socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO));
        } else {
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    });
    addr
}

/// Hostile servers: a body cut off by a reset, and a response head larger
/// than the host buffers. Each fails its request with an error; neither
/// leaves a connection in the pool or its place taken.
#[tokio::test]
async fn a_reset_mid_body_and_a_huge_head_fail_their_request_and_nothing_else() {
    let quota = SocketQuota::new(4);
    let mut client = client_with(loopback(), Arc::clone(&quota), None);
    let cut = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly this much".to_vec(),
        true,
    );
    let err = fetch(&mut client, get(&format!("http://{cut}/")), b"")
        .await
        .unwrap_err();
    assert!(!err.to_string().is_empty());
    let mut head = b"HTTP/1.1 200 OK\r\nX-Huge: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 1 << 20));
    head.extend(b"\r\nContent-Length: 0\r\n\r\n");
    let huge = raw_server(head, false);
    let err = fetch(&mut client, get(&format!("http://{huge}/")), b"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP exchange failed"), "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while quota.held() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(quota.held(), 0, "no connection is left holding a place");
}

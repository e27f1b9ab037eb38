//! Real servers for the tests and benchmarks of the HTTP client (feature
//! `testbed`): a certificate authority made on the spot ([`Pki`]), and an
//! HTTP or HTTPS server ([`TestServer`]) on loopback that answers a few
//! fixed routes and counts the connections it accepts.
//!
//! Routes: `/hello` (two `x-test` values, a text body naming the protocol),
//! `/echo` (the request body back, with `x-method` and `x-auth`),
//! `/status/NNN`, `/redirect/NNN?URL` (a redirect to `URL`), and
//! `/bytes/N` (N bytes of a fixed pattern, see [`pattern`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority of its own.
pub struct Pki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

/// A certificate chain and its key.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

/// How a certificate's dates relate to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from a year ago to a year from now.
    Current,
    /// Expired at the start of 2020.
    Expired,
}

impl Pki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Pki {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("no names is valid");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("key generation works");
        let cert = params.self_signed(&key).expect("self-signing works");
        Pki {
            issuer: rcgen::Issuer::new(params, key),
            ca_pem: cert.pem(),
        }
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn issue(&self, names: &[&str], validity: Validity) -> Identity {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("valid names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wasabi test server");
        match validity {
            Validity::Current => {
                let now = rcgen::date_time_ymd(1970, 1, 1)
                    + std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                params.not_before = now - std::time::Duration::from_secs(365 * 86_400);
                params.not_after = now + std::time::Duration::from_secs(365 * 86_400);
            }
            Validity::Expired => {
                params.not_before = rcgen::date_time_ymd(2019, 1, 1);
                params.not_after = rcgen::date_time_ymd(2020, 1, 1);
            }
        }
        let key = rcgen::KeyPair::generate().expect("key generation works");
        let cert = params.signed_by(&key, &self.issuer).expect("signing works");
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// Byte `i` of a `/bytes/N` body.
pub fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

/// A server on `127.0.0.1`, on a thread of its own, until dropped.
pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    accepts: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves plain HTTP/1.1 (`identity` `None`) or HTTPS with `identity`,
    /// offering HTTP/2 by ALPN if `offer_h2`.
    pub fn start(identity: Option<Identity>, offer_h2: bool) -> TestServer {
        let config = identity.map(|id| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the defaults")
                .with_no_client_auth()
                .with_single_cert(id.chain, id.key)
                .expect("a matching key");
            config.alpn_protocols = if offer_h2 {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            } else {
                vec![b"http/1.1".to_vec()]
            };
            Arc::new(config)
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback binds");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("bound");
        let accepts = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let counted = Arc::clone(&accepts);
        let tls = config.is_some();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio");
                let serving = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        counted.fetch_add(1, Ordering::SeqCst);
                        let config = config.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(answer);
                            let builder =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                            match config {
                                Some(config) => {
                                    let Ok(tls) =
                                        tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
                                    else {
                                        return;
                                    };
                                    let _ =
                                        builder.serve_connection(TokioIo::new(tls), service).await;
                                }
                                None => {
                                    let _ =
                                        builder.serve_connection(TokioIo::new(tcp), service).await;
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serving => {}
                    _ = stopped => {}
                }
            });
        });
        TestServer {
            addr,
            tls,
            accepts,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http(s)://HOST:PORT/PATH`.
    pub fn url(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.addr.port())
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let version = format!("{:?}", request.version());
    let method = request.method().to_string();
    let auth = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let response = hyper::Response::builder();
    let response = if path == "/hello" {
        response
            .header("x-test", "one")
            .header("x-test", "two")
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(format!("hello over {version}\n"))))
    } else if path == "/echo" {
        response
            .header("x-method", method)
            .header("x-auth", auth)
            .body(Full::new(body))
    } else if let Some(code) = path.strip_prefix("/status/") {
        let code = code.parse().unwrap_or(500);
        response
            .status(code)
            .body(Full::new(Bytes::from(format!("status {code}\n"))))
    } else if let Some(code) = path.strip_prefix("/redirect/") {
        response
            .status(code.parse::<u16>().unwrap_or(302))
            .header("location", query)
            .body(Full::new(Bytes::from_static(b"see elsewhere\n")))
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        response.body(Full::new((0..n).map(pattern).collect::<Vec<u8>>().into()))
    } else {
        response
            .status(404)
            .body(Full::new(Bytes::from_static(b"not found\n")))
    };
    Ok(response.unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
}

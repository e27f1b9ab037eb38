//! [`Pool`]: one tenant's connections to the servers it calls, kept open
//! between requests (HTTP/1.1 keep-alive, HTTP/2 multiplexing) so a program
//! calling one API many times pays one TCP and TLS handshake, not one each
//! time.
//!
//! Every connection holds a place under the tenant's socket cap
//! ([`SocketQuota`]) and a charge on its memory ([`HostMemory`]) for as long
//! as it is open, idle or not. An idle connection is the first thing to go
//! when the tenant needs a place for something else: the pool is the
//! quota's [`Reclaim`] hook, so a `listen` or a new request never fails for
//! a connection nobody is using (an HTTP/1.1 one between exchanges, an
//! HTTP/2 one with no stream open). One unused for [`IDLE_TIMEOUT`] is
//! closed rather than reused; connections also close beyond
//! [`MAX_IDLE_PER_ORIGIN`] idle per server, when the server closes them,
//! and all of them when the tenant's client is dropped (the connection
//! tasks live in the pool's [`JoinSet`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::task::JoinSet;
use wasabi_limits::HostMemory;

use super::body::OutgoingBody;
use super::tls::{ClientTls, TlsFailure};
use crate::NetError;
use crate::address::{Endpoint, Family, Host};
use crate::quota::{QuotaSlot, Reclaim, SocketQuota};
use crate::sockets::connect;

/// How long a connection may go unused and still be reused; an older one
/// is closed when next looked at.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a pooled HTTP/1.1 connection may take to be ready for the
/// next request before another is used instead.
const READY_WAIT: Duration = Duration::from_secs(1);

/// How many unused HTTP/1.1 connections to one server stay open.
pub const MAX_IDLE_PER_ORIGIN: usize = 4;

/// The host memory a connection is charged for: the TLS record buffers,
/// hyper's read buffer (capped at 128 KiB) and, for HTTP/2, the receive
/// window (256 KiB) and the send buffer (128 KiB).
pub const CONNECTION_MEMORY: u64 = 384 * 1024;

/// The most an HTTP/1.1 connection buffers of a response (its head must
/// fit).
const H1_MAX_BUFFER: usize = 128 * 1024;
/// What an HTTP/2 server may send on one stream before the guest reads.
const H2_STREAM_WINDOW: u32 = 64 * 1024;
/// ... and on the whole connection.
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// What an HTTP/2 stream buffers of a request body (two chunks).
const H2_SEND_BUFFER: usize = 2 * super::BODY_CHUNK as usize;

/// A server a connection goes to: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// `https`.
    pub(crate) tls: bool,
    /// The host and port, as the policy sees them.
    pub(crate) endpoint: Endpoint,
}

impl Origin {
    /// The origin of an `http:` or `https:` URL (port 80 or 443 unless it
    /// names one).
    pub(crate) fn of(url: &url::Url) -> Result<Origin, NetError> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(NetError::Http(format!(
                    "{other}: URLs are not supported by Wasabi's fetch (only http: and https:)"
                )));
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(name)) => Host::Name(name.to_ascii_lowercase()),
            Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => Host::Ip(ip.into()),
            None => return Err(NetError::Http(format!("invalid URL `{url}`: no host"))),
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Origin {
            tls,
            endpoint: Endpoint { host, port },
        })
    }
}

/// A connection's hold on the tenant's resources, given back when the
/// connection ends or is evicted, whichever comes first.
struct Hold {
    _slot: QuotaSlot,
    memory: Arc<dyn HostMemory>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.memory.release(CONNECTION_MEMORY);
    }
}

type SharedHold = Arc<Mutex<Option<Hold>>>;

fn let_go(hold: &SharedHold) {
    if let Ok(mut hold) = hold.lock() {
        hold.take();
    }
}

/// An unused HTTP/1.1 connection.
struct Idle {
    sender: http1::SendRequest<OutgoingBody>,
    hold: SharedHold,
    since: Instant,
}

/// A shared HTTP/2 connection.
struct Shared {
    sender: http2::SendRequest<OutgoingBody>,
    hold: SharedHold,
    /// One clone in each lease of it: alone here, the connection is
    /// unused and may give way. Counted under the pool's lock, where
    /// leases are made, so a reclaim cannot race a new exchange.
    exchanges: Arc<()>,
    /// When an exchange last began or ended on it.
    since: Instant,
}

impl Shared {
    fn unused(&self) -> bool {
        Arc::strong_count(&self.exchanges) == 1
    }
}

#[derive(Default)]
struct PoolState {
    idle: HashMap<Origin, Vec<Idle>>,
    shared: HashMap<Origin, Shared>,
    /// The tasks that drive the connections.
    drivers: JoinSet<()>,
}

/// One tenant's open connections.
pub(crate) struct Pool {
    state: Mutex<PoolState>,
    quota: Arc<SocketQuota>,
    memory: Arc<dyn HostMemory>,
    tls: ClientTls,
    /// The tenant's TLS configuration, made at its first `https:` connection.
    tls_config: OnceLock<Arc<ClientConfig>>,
    /// Connections opened (a test and a figure: how often the pool helped).
    opened: std::sync::atomic::AtomicU64,
}

/// A connection lent to one exchange.
pub(crate) struct Lease {
    origin: Origin,
    sender: Sender,
    hold: SharedHold,
    /// It was open before this exchange (a failure to send on it may be
    /// the server having closed it meanwhile).
    pub(crate) reused: bool,
}

enum Sender {
    H1(http1::SendRequest<OutgoingBody>),
    /// A stream on a shared connection; `exchange` marks it in use.
    H2 {
        sender: http2::SendRequest<OutgoingBody>,
        exchange: Arc<()>,
    },
}

impl Lease {
    /// `true` on an HTTP/2 connection.
    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2 { .. })
    }

    /// Sends a request whose URI is absolute; an HTTP/1.1 connection sends
    /// its path with a `Host` header, HTTP/2 its `:authority`.
    pub(crate) async fn send(
        &mut self,
        mut request: hyper::Request<OutgoingBody>,
    ) -> Result<hyper::Response<Incoming>, hyper::Error> {
        match &mut self.sender {
            Sender::H1(sender) => {
                let uri = request.uri().clone();
                if let Some(authority) = uri.authority()
                    && let Ok(host) = hyper::header::HeaderValue::from_str(authority.as_str())
                {
                    request.headers_mut().insert(hyper::header::HOST, host);
                }
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                if let Ok(path) = path.parse() {
                    *request.uri_mut() = path;
                }
                sender.send_request(request).await
            }
            Sender::H2 { sender, .. } => {
                *request.version_mut() = hyper::Version::HTTP_2;
                sender.send_request(request).await
            }
        }
    }
}

impl Pool {
    /// A pool whose connections count under `quota` and `memory`, with TLS
    /// trusting `tls`.
    pub(crate) fn new(
        quota: Arc<SocketQuota>,
        memory: Arc<dyn HostMemory>,
        tls: ClientTls,
    ) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            state: Mutex::default(),
            quota: Arc::clone(&quota),
            memory,
            tls,
            tls_config: OnceLock::new(),
            opened: Default::default(),
        });
        let reclaim: Arc<dyn Reclaim> = Arc::clone(&pool) as Arc<dyn Reclaim>;
        quota.set_reclaim(Arc::downgrade(&reclaim));
        pool
    }

    /// Connections opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Unused connections open now.
    pub(crate) fn idle(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.idle.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// A connection to `origin`: an open one if there is one, else a new
    /// one (whose host and port the caller has checked against the policy).
    pub(crate) async fn lease(&self, origin: &Origin) -> Result<Lease, NetError> {
        loop {
            let candidate = {
                let mut state = self.state.lock().map_err(|_| poisoned())?;
                if let Some(shared) = state.shared.get_mut(origin) {
                    let stale = shared.unused() && shared.since.elapsed() > IDLE_TIMEOUT;
                    if !shared.sender.is_closed() && !stale {
                        shared.since = Instant::now();
                        return Ok(Lease {
                            origin: origin.clone(),
                            sender: Sender::H2 {
                                sender: shared.sender.clone(),
                                exchange: Arc::clone(&shared.exchanges),
                            },
                            hold: Arc::clone(&shared.hold),
                            reused: true,
                        });
                    }
                    if let Some(gone) = state.shared.remove(origin) {
                        let_go(&gone.hold);
                    }
                }
                let idle = state.idle.get_mut(origin);
                idle.and_then(|list| list.pop())
            };
            let Some(mut idle) = candidate else { break };
            if idle.since.elapsed() > IDLE_TIMEOUT || idle.sender.is_closed() {
                let_go(&idle.hold);
                continue;
            }
            // The previous exchange may still be finishing on it; one that
            // does not finish promptly (a request body the server stopped
            // reading) is not worth waiting for.
            let ready = tokio::time::timeout(READY_WAIT, idle.sender.ready()).await;
            if matches!(ready, Ok(Ok(()))) {
                return Ok(Lease {
                    origin: origin.clone(),
                    sender: Sender::H1(idle.sender),
                    hold: idle.hold,
                    reused: true,
                });
            }
            let_go(&idle.hold);
        }
        self.connect(origin).await
    }

    /// Takes back a connection whose exchange finished (its response read
    /// to the end); it stays open for the next request to its server
    /// unless `close`.
    pub(crate) fn give_back(&self, lease: Lease, close: bool) {
        let Lease {
            origin,
            sender,
            hold,
            ..
        } = lease;
        let sender = match sender {
            Sender::H1(sender) => sender,
            Sender::H2 { exchange, .. } => {
                // The connection stays shared; it was last used now.
                drop(exchange);
                if let Ok(mut state) = self.state.lock()
                    && let Some(shared) = state.shared.get_mut(&origin)
                {
                    shared.since = Instant::now();
                }
                return;
            }
        };
        if close || sender.is_closed() {
            let_go(&hold);
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let list = state.idle.entry(origin).or_default();
        if list.len() >= MAX_IDLE_PER_ORIGIN {
            let_go(&hold);
            return;
        }
        list.push(Idle {
            sender,
            hold,
            since: Instant::now(),
        });
    }

    /// Opens a connection: a place under the cap, TCP, TLS for `https`,
    /// then HTTP/2 if the server chose it by ALPN, else HTTP/1.1.
    async fn connect(&self, origin: &Origin) -> Result<Lease, NetError> {
        let slot = self.quota.take()?;
        if !self.memory.charge(CONNECTION_MEMORY) {
            return Err(NetError::NoMemory("another connection"));
        }
        let hold: SharedHold = Arc::new(Mutex::new(Some(Hold {
            _slot: slot,
            memory: Arc::clone(&self.memory),
        })));
        let tcp = connect(&origin.endpoint, Family::Any).await?;
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sender = if origin.tls {
            let name = ServerName::try_from(origin.endpoint.host_name())
                .map_err(|_| NetError::Http(format!("invalid host name `{}`", origin.endpoint)))?;
            let config = self.tls_config.get_or_init(|| self.tls.client_config());
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|e| handshake_error(&origin.endpoint, e))?;
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            self.handshake(origin, TokioIo::new(tls), h2, &hold).await?
        } else {
            self.handshake(origin, TokioIo::new(tcp), false, &hold)
                .await?
        };
        Ok(Lease {
            origin: origin.clone(),
            sender,
            hold,
            reused: false,
        })
    }

    async fn handshake<T>(
        &self,
        origin: &Origin,
        io: T,
        h2: bool,
        hold: &SharedHold,
    ) -> Result<Sender, NetError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        if h2 {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(H2_STREAM_WINDOW)
                .initial_connection_window_size(H2_CONNECTION_WINDOW)
                .adaptive_window(false)
                .max_send_buf_size(H2_SEND_BUFFER)
                .handshake(io)
                .await
                .map_err(super::http_error)?;
            let mut state = self.drive(connection, hold)?;
            let exchanges = Arc::new(());
            let exchange = Arc::clone(&exchanges);
            let shared = Shared {
                sender: sender.clone(),
                hold: Arc::clone(hold),
                exchanges,
                since: Instant::now(),
            };
            // A connection made concurrently for the same server stays
            // with its own leases and closes when they end.
            state.shared.insert(origin.clone(), shared);
            Ok(Sender::H2 { sender, exchange })
        } else {
            let (sender, connection) = http1::Builder::new()
                .max_buf_size(H1_MAX_BUFFER)
                .handshake(io)
                .await
                .map_err(super::http_error)?;
            drop(self.drive(connection, hold)?);
            Ok(Sender::H1(sender))
        }
    }

    /// Runs a connection's task in the pool's [`JoinSet`]; when it ends
    /// (the server closed it, or the last sender went), its hold goes.
    fn drive(
        &self,
        connection: impl Future<Output = Result<(), hyper::Error>> + Send + 'static,
        hold: &SharedHold,
    ) -> Result<std::sync::MutexGuard<'_, PoolState>, NetError> {
        let hold = Arc::clone(hold);
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        state.drivers.spawn(async move {
            let _ = connection.await;
            let_go(&hold);
        });
        reap(&mut state.drivers);
        Ok(state)
    }
}

/// An unused connection the quota may take back.
enum Unused {
    /// The `i`th idle HTTP/1.1 connection to a server.
    H1(Origin, usize),
    /// The shared HTTP/2 connection to a server, with no exchange on it.
    H2(Origin),
}

impl Reclaim for Pool {
    /// Closes the connection unused the longest, if any: an idle HTTP/1.1
    /// one, or an HTTP/2 one with no stream open. Its place and memory are
    /// given back at once; dropping its last sender ends its task.
    fn reclaim_one(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let h1 = state.idle.iter().flat_map(|(origin, list)| {
            list.iter()
                .enumerate()
                .map(move |(i, c)| (c.since, Unused::H1(origin.clone(), i)))
        });
        let h2 = state
            .shared
            .iter()
            .filter(|(_, shared)| shared.unused())
            .map(|(origin, shared)| (shared.since, Unused::H2(origin.clone())));
        let Some((_, oldest)) = h1.chain(h2).min_by_key(|(since, _)| *since) else {
            return false;
        };
        let hold = match oldest {
            Unused::H1(origin, i) => state.idle.get_mut(&origin).map(|list| list.remove(i).hold),
            Unused::H2(origin) => state.shared.remove(&origin).map(|shared| shared.hold),
        };
        hold.is_some_and(|hold| {
            let_go(&hold);
            true
        })
    }
}

/// Forgets connection tasks that ended.
fn reap(drivers: &mut JoinSet<()>) {
    while drivers.try_join_next().is_some() {}
}

fn poisoned() -> NetError {
    NetError::Http("the connection pool is unusable after a panic".into())
}

/// A TLS handshake's failure, with what the certificate check found.
fn handshake_error(endpoint: &Endpoint, error: std::io::Error) -> NetError {
    let failure = match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => TlsFailure::from_rustls(tls),
        None if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            TlsFailure::Other("the server closed the connection during the TLS handshake".into())
        }
        None => TlsFailure::Other(error.to_string()),
    };
    NetError::Tls {
        endpoint: endpoint.to_string(),
        failure,
    }
}

//! [`Ingress`]: the HTTP server the host runs for a tenant whose Go handler
//! serves through it (`wasabi.ListenAndServe` under Wasabi).
//!
//! The host accepts, speaks HTTP/1.1 and HTTP/2 with hyper, enforces the
//! tenant's [`HttpLimits`] and answers for it when a request breaks one;
//! only what the handler must do runs as wasm. Requests reach the guest as
//! integer ids with their heads copied into its memory, bodies move in both
//! directions through bounded buffers, and the guest learns that something
//! it waits for happened through [`Doorbell`] tokens:
//!
//! ```text
//!  client ── hyper (host threads) ── queue ──► Ingress::take_request ─► handler
//!                 ▲   request body ◄── Ingress::read ◄──────────┤
//!                 └── ResponseBody ◄── Ingress::respond/write ◄─┘
//!                        tokens: ACCEPT, READABLE, WRITABLE, GONE ─► guest
//! ```
//!
//! Everything the ingress holds ends with it: dropping it stops every
//! listener and closes every connection.

mod body;
mod h2c;
mod head;
mod metrics;
mod router;
mod server;
mod tls;

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::body::{Body, Incoming};
use tokio::io::unix::AsyncFd;
use tokio::sync::{oneshot, watch};
use wasabi_limits::{HostMemory, HttpLimits};

pub use body::ResponseBody;
pub use head::HeadError;
pub use metrics::{LATENCY_BOUNDS, RequestStats, RequestStatsSnapshot};
pub use router::{Route, RouteError, Router, TenantLookup};
pub(crate) use tls::read_pem_file;
pub use tls::{ServerTls, TlsError};

use crate::SocketQuota;
use crate::doorbell::{Doorbell, token};
use body::{Pipe, Written};

/// The id of a request within one tenant, never 0 and never reused.
pub type RequestId = u32;

/// Why a call on a request failed.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// No request has this id (it was never given, or it ended).
    #[error("no HTTP request {0} is in progress")]
    UnknownRequest(RequestId),
    /// The response head was already sent.
    #[error("the response of request {0} has already started")]
    AlreadyAnswered(RequestId),
    /// A body write or an end came before the response head.
    #[error("the response of request {0} has not started")]
    NotAnswered(RequestId),
    /// The status is not one a response can have.
    #[error("{0} is not a valid final status code (200-999, or 100-199 informational)")]
    BadStatus(u32),
    /// A header block the guest wrote is malformed.
    #[error(transparent)]
    BadHead(#[from] HeadError),
    /// The client went away, or the connection broke.
    #[error("the client went away")]
    Gone,
    /// The request body is larger than the tenant accepts.
    #[error("the request body is larger than the limit of {0} bytes")]
    BodyTooLarge(u64),
    /// Holding the response bytes would take the tenant past its memory
    /// limit.
    #[error("the response bytes the host holds would exceed the tenant's memory limit")]
    Memory,
}

/// How a [`Router`] reaches one tenant's [`Ingress`] from outside it.
/// Cheap to clone; once the tenant's run ends, requests offered to it are
/// answered `503`.
#[derive(Clone)]
pub struct IngressHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for IngressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressHandle")
            .field("serving", &self.is_serving())
            .finish()
    }
}

impl IngressHandle {
    /// Whether the tenant serves through the host now: it has a listener
    /// the host serves, and is not shutting down.
    pub fn is_serving(&self) -> bool {
        self.shared.served_listener.load(Ordering::Acquire) != u64::MAX
            && *self.shared.shutdown.borrow() == Shutdown::No
    }

    /// Hands `req` to the tenant as if it had come on its first served
    /// listener, under the tenant's limits.
    pub(crate) async fn offer(
        &self,
        mut from: server::Origin,
        req: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<ResponseBody>, body::Aborted> {
        from.listener_id = self.shared.served_listener.load(Ordering::Acquire) as u32;
        server::handle(Arc::clone(&self.shared), from, req).await
    }
}

/// A request the host accepted, waiting for the guest to take it.
struct Arrival {
    head: Vec<u8>,
    body: Incoming,
    respond: oneshot::Sender<hyper::Response<ResponseBody>>,
    link: Arc<Link>,
    /// Memory charged for the queued head.
    charged: u64,
}

/// State shared between the tenant's side and the host's server tasks.
#[derive(Debug)]
struct Shared {
    limits: HttpLimits,
    /// What the server did, for the tenant's metrics.
    stats_http: Arc<RequestStats>,
    /// Serve over TLS with this identity; plain HTTP when `None`.
    tls: Option<ServerTls>,
    doorbell: Arc<Doorbell>,
    memory: Arc<dyn HostMemory>,
    quota: Arc<SocketQuota>,
    queue: Mutex<Queue>,
    /// Requests admitted and not yet over (queued, with the guest, or
    /// streaming their response).
    active: AtomicUsize,
    /// Connections open now, also counted in the instance's `NetStats`
    /// once it serves.
    connections: AtomicUsize,
    stats: Mutex<Option<Arc<crate::NetStats>>>,
    /// Asks every connection to finish (drain) or stop (the tenant ended).
    shutdown: watch::Sender<Shutdown>,
    /// Told whenever a connection closes or a request ends, so a draining
    /// event loop sees the last one go.
    settled: tokio::sync::Notify,
    /// The first listener the guest serves on (`u64::MAX`: none yet):
    /// where a router's requests enter.
    served_listener: std::sync::atomic::AtomicU64,
    /// Set on a [`Router`]'s own server: its requests go to tenants.
    router: std::sync::OnceLock<Arc<router::RouteTable>>,
}

#[derive(Default)]
struct Queue {
    arrivals: VecDeque<Arrival>,
    /// The guest found the queue empty and waits for [`token::ACCEPT`].
    guest_waits: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("arrivals", &self.arrivals.len())
            .field("guest_waits", &self.guest_waits)
            .finish()
    }
}

/// How the server's connections should carry on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// Serve.
    No,
    /// Finish the requests in progress, take no new ones, then close.
    Graceful,
    /// Close now.
    Now,
}

impl Shared {
    /// A connection opened (`+1`) or closed (`-1`).
    fn count_connection(&self, opened: bool) {
        let stats = self.stats.lock().ok().and_then(|s| s.clone());
        if opened {
            self.connections.fetch_add(1, Ordering::AcqRel);
            if let Some(s) = stats {
                s.http_connections.fetch_add(1, Ordering::AcqRel);
            }
        } else {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            if let Some(s) = stats {
                s.http_connections.fetch_sub(1, Ordering::AcqRel);
            }
            self.settled.notify_one();
        }
    }
}

/// One request as both sides see it: the guest's id for it once taken, and
/// whether the host side is over.
#[derive(Debug)]
pub(crate) struct Link {
    shared: Arc<Shared>,
    id: AtomicU32,
    over: AtomicBool,
    /// Requests in progress on the connection this one came on.
    on_connection: Option<Arc<AtomicUsize>>,
    /// When the request arrived, and the status of its response once it
    /// has one (0 before): for the tenant's metrics.
    arrived: std::time::Instant,
    status: std::sync::atomic::AtomicU16,
}

impl Link {
    fn new(shared: &Arc<Shared>, on_connection: Option<Arc<AtomicUsize>>) -> Arc<Link> {
        if let Some(n) = &on_connection {
            n.fetch_add(1, Ordering::AcqRel);
        }
        Arc::new(Link {
            shared: Arc::clone(shared),
            id: AtomicU32::new(0),
            over: AtomicBool::new(false),
            on_connection,
            arrived: std::time::Instant::now(),
            status: std::sync::atomic::AtomicU16::new(0),
        })
    }

    /// The response was sent to its end.
    pub(crate) fn completed(&self) {
        self.end(false);
    }

    /// The host side let go before the end: the client went away.
    pub(crate) fn abandoned(&self) {
        self.end(true);
    }

    fn end(&self, gone: bool) {
        if self.over.swap(true, Ordering::AcqRel) {
            return;
        }
        match self.status.load(Ordering::Acquire) {
            status if !gone && status != 0 => self
                .shared
                .stats_http
                .answered(status, self.arrived.elapsed()),
            _ => self.shared.stats_http.abandoned(),
        }
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
        if let Some(n) = &self.on_connection {
            n.fetch_sub(1, Ordering::AcqRel);
        }
        self.shared.settled.notify_one();
        let id = self.id.load(Ordering::Acquire);
        if gone && id != 0 {
            self.shared.doorbell.ring(token::GONE | u64::from(id));
        }
    }

    /// Bytes of the response were sent and are no longer held.
    pub(crate) fn release(&self, bytes: usize) {
        self.shared.memory.release(bytes as u64);
    }

    /// The response window has room again.
    pub(crate) fn ring_writable(&self) {
        let id = self.id.load(Ordering::Acquire);
        tracing::trace!(id, "response window has room");
        if id != 0 {
            self.shared.doorbell.ring(token::WRITABLE | u64::from(id));
        }
    }
}

/// The host's end of a request until its response is handed to hyper:
/// dropped with the service future (the client went away, or the guest gave
/// the request up), it reports the request abandoned.
struct Holding(Option<Arc<Link>>);

impl Holding {
    fn take(&mut self) -> Option<Arc<Link>> {
        self.0.take()
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(link) = self.0.take() {
            link.abandoned();
        }
    }
}

/// A request the guest has taken.
struct InFlight {
    link: Arc<Link>,
    body: Incoming,
    /// Bytes of the body already taken from hyper, not yet read by the guest.
    leftover: Bytes,
    /// Bytes of the body read so far.
    body_read: u64,
    body_done: bool,
    /// Until the response head goes out.
    respond: Option<oneshot::Sender<hyper::Response<ResponseBody>>>,
    /// After it, for a streamed body.
    pipe: Option<Arc<Pipe>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Still streaming: the guest gave the response up (or ended).
        if let Some(pipe) = self.pipe.take() {
            pipe.abort();
        }
    }
}

/// What [`Ingress::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRead {
    /// This many bytes were copied.
    Data(usize),
    /// The body is over.
    End,
    /// Nothing yet: [`token::READABLE`] rings for this request when there is.
    WouldBlock,
}

/// One tenant's HTTP server: the listeners it serves, the requests waiting
/// for its handler and those in progress.
pub struct Ingress {
    shared: Arc<Shared>,
    requests: HashMap<RequestId, InFlight>,
    last_id: RequestId,
    serving: usize,
}

impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingress")
            .field("serving", &self.serving)
            .field("in_flight", &self.requests.len())
            .finish()
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(Shutdown::Now);
        // Requests still queued hold memory charges and their clients.
        if let Ok(mut q) = self.shared.queue.lock() {
            for a in q.arrivals.drain(..) {
                self.shared.memory.release(a.charged);
            }
        }
    }
}

impl Ingress {
    /// A server that enforces `limits`, speaks TLS with `server_tls` if given,
    /// counts what it serves in `requests`, its connections under
    /// `quota` (the tenant's socket cap) and the bytes it holds for the
    /// tenant in `memory`, and tells the guest what happened through
    /// `doorbell`.
    pub fn new(
        doorbell: Arc<Doorbell>,
        limits: HttpLimits,
        server_tls: Option<ServerTls>,
        quota: Arc<SocketQuota>,
        memory: Arc<dyn HostMemory>,
        requests: Arc<RequestStats>,
    ) -> Ingress {
        let (shutdown, _) = watch::channel(Shutdown::No);
        Ingress {
            shared: Arc::new(Shared {
                limits,
                stats_http: requests,
                tls: server_tls,
                doorbell,
                memory,
                quota,
                queue: Mutex::default(),
                active: AtomicUsize::new(0),
                connections: AtomicUsize::new(0),
                stats: Mutex::new(None),
                shutdown,
                settled: tokio::sync::Notify::new(),
                served_listener: std::sync::atomic::AtomicU64::new(u64::MAX),
                router: std::sync::OnceLock::new(),
            }),
            requests: HashMap::new(),
            last_id: 0,
            serving: 0,
        }
    }

    /// Starts serving HTTP on `listener` (the guest's `listener_id`, which
    /// each request's head names); returns the task that accepts, which stops when
    /// aborted. Must be called within a tokio runtime.
    pub(crate) fn serve(
        &mut self,
        listener: Arc<AsyncFd<StdListener>>,
        listener_id: u32,
        stats: Arc<crate::NetStats>,
    ) -> tokio::task::AbortHandle {
        self.serving += 1;
        if let Ok(mut s) = self.shared.stats.lock() {
            *s = Some(stats);
        }
        let _ = self.shared.served_listener.compare_exchange(
            u64::MAX,
            u64::from(listener_id),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        server::spawn_acceptor(Arc::clone(&self.shared), listener, listener_id)
    }

    /// A handle a [`Router`] sends requests to this tenant through.
    pub fn router_handle(&self) -> IngressHandle {
        IngressHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Makes this the server of a router: requests go through `table`.
    fn route_with(&mut self, table: Arc<router::RouteTable>) {
        let _ = self.shared.router.set(table);
    }

    /// Whether the tenant serves HTTP through the host (so its event loop
    /// must keep waiting for requests).
    pub fn is_serving(&self) -> bool {
        self.serving > 0 || !self.requests.is_empty()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// Requests in progress now (queued or with the guest).
    pub fn active_requests(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Stops accepting and lets every connection finish what it has in
    /// progress, then close (a drain).
    pub fn stop(&mut self) {
        self.shared.shutdown.send_replace(Shutdown::Graceful);
    }

    /// Completes when a connection has closed or a request ended since the
    /// last call: what a drain waits for between looking at
    /// [`Ingress::connections`] and [`Ingress::active_requests`].
    pub async fn settled(&self) {
        self.shared.settled.notified().await;
    }

    /// The next request for the guest: its id and its head (see the
    /// layout in [`head`]), or `None` when none waits (then
    /// [`token::ACCEPT`] rings when one does).
    pub fn take_request(&mut self) -> Option<(RequestId, Vec<u8>)> {
        loop {
            let arrival = {
                let mut q = self.shared.queue.lock().ok()?;
                match q.arrivals.pop_front() {
                    Some(a) => a,
                    None => {
                        q.guest_waits = true;
                        return None;
                    }
                }
            };
            self.shared.memory.release(arrival.charged);
            // A client that left while its request queued is not worth
            // the handler's time.
            if arrival.respond.is_closed() {
                continue;
            }
            self.last_id = self.last_id.wrapping_add(1).max(1);
            let id = self.last_id;
            arrival.link.id.store(id, Ordering::Release);
            self.requests.insert(
                id,
                InFlight {
                    link: arrival.link,
                    body: arrival.body,
                    leftover: Bytes::new(),
                    body_read: 0,
                    body_done: false,
                    respond: Some(arrival.respond),
                    pipe: None,
                },
            );
            return Some((id, arrival.head));
        }
    }

    fn request(&mut self, id: RequestId) -> Result<&mut InFlight, IngressError> {
        self.requests
            .get_mut(&id)
            .ok_or(IngressError::UnknownRequest(id))
    }

    /// Copies body bytes of request `id` into `buf`.
    pub fn read(&mut self, id: RequestId, buf: &mut [u8]) -> Result<BodyRead, IngressError> {
        let limit = self.shared.limits.max_body_bytes;
        let bell = Arc::clone(&self.shared.doorbell);
        let stats = Arc::clone(&self.shared.stats_http);
        let r = self.request(id)?;
        loop {
            if !r.leftover.is_empty() {
                let n = r.leftover.len().min(buf.len());
                buf[..n].copy_from_slice(&r.leftover[..n]);
                r.leftover.advance(n);
                stats.read(n);
                return Ok(BodyRead::Data(n));
            }
            if r.body_done || buf.is_empty() {
                return Ok(if r.body_done {
                    BodyRead::End
                } else {
                    BodyRead::Data(0)
                });
            }
            let waker = bell.waker(token::READABLE | u64::from(id));
            let mut cx = Context::from_waker(&waker);
            match Pin::new(&mut r.body).poll_frame(&mut cx) {
                Poll::Pending => return Ok(BodyRead::WouldBlock),
                Poll::Ready(None) => r.body_done = true,
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(id, error = %e, "request body failed");
                    return Err(IngressError::Gone);
                }
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers of the request are not passed on.
                    if let Ok(data) = frame.into_data() {
                        r.body_read += data.len() as u64;
                        if r.body_read > limit {
                            self.refuse_body(id);
                            return Err(IngressError::BodyTooLarge(limit));
                        }
                        r.leftover = data;
                    }
                }
            }
        }
    }

    /// The body of request `id` went past the limit: answer 413 if the
    /// response has not started, and end the request either way.
    fn refuse_body(&mut self, id: RequestId) {
        if let Some(mut r) = self.requests.remove(&id)
            && let Some(respond) = r.respond.take()
        {
            r.link.status.store(413, Ordering::Release);
            let _ = respond.send(server::status_response(
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large\n",
                &[("connection", "close")],
            ));
            // The host's own answer carries no link: the request ends here.
            r.link.completed();
        }
    }

    /// Sends the response head of request `id`: `status` and the header
    /// block `headers` (see [`head`]). With `end`, `body` is the whole body
    /// and the request is over (its id is no longer valid); otherwise the
    /// body follows through [`Ingress::write`].
    pub fn respond(
        &mut self,
        id: RequestId,
        status: u32,
        headers: &[u8],
        body: &[u8],
        end: bool,
    ) -> Result<(), IngressError> {
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (200..=999).contains(s))
            .and_then(|s| hyper::StatusCode::from_u16(s).ok())
            .ok_or(IngressError::BadStatus(status))?;
        let headers = head::decode_fields(headers)?;
        let memory = Arc::clone(&self.shared.memory);
        let r = self.request(id)?;
        let respond = r.respond.take().ok_or(IngressError::AlreadyAnswered(id))?;
        let link = Arc::clone(&r.link);
        link.status.store(status.as_u16(), Ordering::Release);
        link.shared.stats_http.wrote(body.len());
        let body = if end {
            ResponseBody::full(Bytes::copy_from_slice(body), Some(link))
        } else {
            let pipe = Arc::new(Pipe::default());
            r.pipe = Some(Arc::clone(&pipe));
            let b = ResponseBody::piped(Arc::clone(&pipe), link);
            if !body.is_empty() {
                // A fresh pipe has room for at least the window.
                let _ = pipe.write(body, |n| memory.charge(n as u64));
            }
            b
        };
        let mut response = hyper::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        let sent = respond.send(response).is_ok();
        if end {
            self.requests.remove(&id);
        }
        if sent {
            Ok(())
        } else {
            Err(IngressError::Gone)
        }
    }

    /// Writes response body bytes of request `id`: `Some(n)` bytes went in
    /// (maybe fewer than offered), `None` when the window is full
    /// ([`token::WRITABLE`] rings when it is not).
    pub fn write(&mut self, id: RequestId, data: &[u8]) -> Result<Option<usize>, IngressError> {
        let memory = Arc::clone(&self.shared.memory);
        let r = self.request(id)?;
        let pipe = r.pipe.as_ref().ok_or(IngressError::NotAnswered(id))?;
        match pipe.write(data, |n| memory.charge(n as u64)) {
            Err(()) => Err(IngressError::Memory),
            Ok(Written::Took(n)) => {
                r.link.shared.stats_http.wrote(n);
                Ok(Some(n))
            }
            Ok(Written::Full) => {
                tracing::trace!(id, "response window full");
                Ok(None)
            }
            Ok(Written::Closed) => Err(IngressError::Gone),
        }
    }

    /// Ends the streamed response of request `id`, with trailers (a header
    /// block, maybe empty); the id is no longer valid.
    pub fn finish(&mut self, id: RequestId, trailers: &[u8]) -> Result<(), IngressError> {
        let trailers = head::decode_fields(trailers)?;
        let r = self.request(id)?;
        let pipe = r.pipe.take().ok_or(IngressError::NotAnswered(id))?;
        pipe.end(Some(trailers));
        self.requests.remove(&id);
        Ok(())
    }

    /// Gives request `id` up without an answer (the handler panicked): the
    /// connection closes, or the HTTP/2 stream is reset, as Go's own
    /// server does. The id is no longer valid.
    pub fn abort(&mut self, id: RequestId) -> Result<(), IngressError> {
        self.requests
            .remove(&id)
            .map(drop)
            .ok_or(IngressError::UnknownRequest(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    /// An ingress serving a fresh loopback listener: (ingress, address,
    /// accept task).
    fn serving(limits: HttpLimits) -> (Ingress, std::net::SocketAddr, tokio::task::AbortHandle) {
        let mut ingress = Ingress::new(
            Arc::default(),
            limits,
            None,
            SocketQuota::new(64),
            Arc::new(wasabi_limits::Uncounted),
            Arc::default(),
        );
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        // SAFETY: the std listener owns its descriptor, and the AsyncFd owns
        // the listener until both are dropped together.
        let listener = Arc::new(unsafe { AsyncFd::register(listener) }.unwrap());
        let task = ingress.serve(listener, 1, Arc::default());
        (ingress, addr, task)
    }

    fn send(addr: std::net::SocketAddr, request: &str) -> StdStream {
        let mut s = StdStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(request.as_bytes()).unwrap();
        s
    }

    fn queued(ingress: &Ingress) -> usize {
        ingress.shared.queue.lock().unwrap().arrivals.len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guest_that_takes_nothing_cannot_grow_the_queue() {
        let limits = HttpLimits {
            max_requests: 4,
            ..HttpLimits::default()
        };
        let (ingress, addr, _task) = serving(limits);
        let get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        // Clients that send a request and leave, many times the cap.
        for _ in 0..20 {
            let s = send(addr, get);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            drop(s);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Their requests no longer count as active, but the queue holds no
        // more than the cap.
        assert!(queued(&ingress) <= 4, "{} queued", queued(&ingress));
        // With four clients still waiting, the next one is told to come back.
        let waiting: Vec<StdStream> = (0..4).map(|_| send(addr, get)).collect();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut refused = send(
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let mut answer = String::new();
        let _ = refused.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        assert!(queued(&ingress) <= 4);
        drop(waiting);
    }
}

//! The host's side of the server: the accept loop of each listener, one
//! task per connection speaking HTTP/1.1 or HTTP/2 (prior knowledge, an h2c
//! upgrade, or ALPN) with hyper, and the service that enforces the tenant's
//! limits and queues what passes for its handler.

use std::io;
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::body::{Aborted, ResponseBody};
use super::{Arrival, Holding, Link, Shared, Shutdown, h2c, head, token};

/// What a queued request is charged beyond its head: the request's own
/// bookkeeping.
const ARRIVAL_OVERHEAD: u64 = 512;

/// Starts the accept loop of `listener`.
pub(super) fn spawn_acceptor(
    shared: Arc<Shared>,
    listener: Arc<AsyncFd<StdListener>>,
    listener_id: u32,
) -> tokio::task::AbortHandle {
    tokio::spawn(accept_loop(shared, listener, listener_id)).abort_handle()
}

async fn accept_loop(shared: Arc<Shared>, listener: Arc<AsyncFd<StdListener>>, listener_id: u32) {
    let mut shutdown = shared.shutdown.subscribe();
    let builder = Arc::new(connection_builder(&shared));
    loop {
        // A connection is a socket of the tenant's: wait for room under its
        // cap rather than accept and drop (the client stays in the backlog).
        let slot = match shared.quota.take() {
            Ok(slot) => slot,
            Err(_) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(20)) => continue,
                    _ = shutdown.wait_for(|s| *s != Shutdown::No) => return,
                }
            }
        };
        let accepted = tokio::select! {
            r = accept(&listener) => r,
            _ = shutdown.wait_for(|s| *s != Shutdown::No) => return,
        };
        match accepted {
            Ok(stream) => {
                tokio::spawn(serve_connection(
                    Arc::clone(&shared),
                    Arc::clone(&builder),
                    stream,
                    listener_id,
                    slot,
                ));
            }
            Err(e) => {
                // Out of descriptors, or a connection reset in the backlog:
                // carry on after a breath, as Go's server does.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

async fn accept(listener: &AsyncFd<StdListener>) -> io::Result<TcpStream> {
    loop {
        let mut guard = listener.readable().await?;
        match guard.try_io(|l| l.get_ref().accept()) {
            Ok(Ok((stream, _))) => {
                stream.set_nonblocking(true)?;
                stream.set_nodelay(true)?;
                return TcpStream::from_std(stream);
            }
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}

type Builder = auto::Builder<TokioExecutor>;

fn connection_builder(shared: &Shared) -> Builder {
    let limits = &shared.limits;
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(
            limits
                .max_header_bytes
                .max(wasabi_limits::HttpLimits::MIN_HEADER_BYTES),
        )
        .keep_alive(true)
        // `Content-Type`, as Go's server writes names, not `content-type`.
        .title_case_headers(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .initial_stream_window_size(256 << 10)
        .initial_connection_window_size(1 << 20);
    b
}

/// Milliseconds since a fixed point, for activity stamps.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

async fn serve_connection(
    shared: Arc<Shared>,
    builder: Arc<Builder>,
    stream: TcpStream,
    listener_id: u32,
    _slot: crate::QuotaSlot,
) {
    let remote: Arc<str> = stream
        .peer_addr()
        .map_or_else(|_| "".into(), |a| a.to_string().into());
    shared.count_connection(true);
    let _open = OnDrop(|| shared.count_connection(false));
    let stream = Arc::new(stream);
    let last_active = Arc::new(AtomicU64::new(now_ms()));
    let io = Conn {
        stream: Arc::clone(&stream),
        last_active: Arc::clone(&last_active),
    };
    let Some(tls) = shared.tls.clone() else {
        let conn = Connection {
            shared: &shared,
            builder: &builder,
            remote,
            listener_id,
            tls: None,
            last_active,
            plain: Some(stream),
            in_progress: Arc::default(),
        };
        return conn.drive(io).await;
    };
    // The handshake gets as long as a request head would.
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    let handshake = tokio::time::timeout(shared.limits.header_timeout, acceptor.accept(io));
    let tls_stream = match handshake.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let session = tls_stream.get_ref().1;
    let info = head::TlsInfo {
        server_name: session.server_name().unwrap_or("").to_string(),
        alpn: session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        version: match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => 0x0304,
            _ => 0x0303,
        },
    };
    let conn = Connection {
        shared: &shared,
        builder: &builder,
        remote,
        listener_id,
        tls: Some(Arc::new(info)),
        last_active,
        plain: None,
        in_progress: Arc::default(),
    };
    conn.drive(tls_stream).await;
}

/// One accepted connection, served by hyper until it ends.
struct Connection<'a> {
    shared: &'a Arc<Shared>,
    builder: &'a Builder,
    remote: Arc<str>,
    listener_id: u32,
    tls: Option<Arc<head::TlsInfo>>,
    last_active: Arc<AtomicU64>,
    /// The socket, when it carries plain HTTP: a 408 can be written on it
    /// after hyper gives up on a slow head.
    plain: Option<Arc<TcpStream>>,
    /// Requests in progress on the connection.
    in_progress: Arc<AtomicUsize>,
}

/// An accepted h2c upgrade: the upgraded connection once the 101 is out,
/// and the HEADERS frame of stream 1.
type Upgrade = (hyper::upgrade::OnUpgrade, Vec<u8>);

impl Connection<'_> {
    /// Serves the connection until it ends, in HTTP/2 after an h2c upgrade.
    async fn drive<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Plain HTTP/1.1 may upgrade; TLS negotiates HTTP/2 by ALPN instead.
        let Some((upgraded, stream_one)) = self.serve(io, self.tls.is_none()).await else {
            return;
        };
        let Ok(upgraded) = upgraded.await else {
            return;
        };
        let within = self.shared.limits.header_timeout;
        match h2c::splice(TokioIo::new(upgraded), stream_one, within).await {
            Ok(io) => {
                self.serve(io, false).await;
            }
            Err(e) => tracing::debug!(error = %e, "an h2c upgrade failed"),
        }
    }

    /// Serves HTTP on `io` until the connection ends, a drain closes it, or
    /// it stays idle too long. Returns the h2c upgrade a request asked for,
    /// when `upgradable` and one did.
    async fn serve<I>(&self, io: I, upgradable: bool) -> Option<Upgrade>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.shared;
        let in_progress = &self.in_progress;
        let (upgrade_tx, mut upgrade_rx) = oneshot::channel::<Upgrade>();
        let upgrade_tx = Arc::new(Mutex::new(upgradable.then_some(upgrade_tx)));
        let service = {
            let shared = Arc::clone(shared);
            let in_progress = Arc::clone(in_progress);
            let (remote, listener_id, tls) =
                (Arc::clone(&self.remote), self.listener_id, self.tls.clone());
            service_fn(move |mut req| {
                let shared = Arc::clone(&shared);
                let from = Origin {
                    remote: Arc::clone(&remote),
                    listener_id,
                    tls: tls.clone(),
                    in_progress: Arc::clone(&in_progress),
                };
                // A request asking for h2c, the first on a plain connection:
                // 101, and the connection goes on in HTTP/2 with it as
                // stream 1.
                let upgrade = h2c::asks_upgrade(&req)
                    .then(|| h2c::stream_one(&req))
                    .flatten()
                    .and_then(|frame| Some((upgrade_tx.lock().ok()?.take()?, frame)));
                let upgrading = upgrade.is_some();
                if let Some((tx, frame)) = upgrade {
                    let _ = tx.send((hyper::upgrade::on(&mut req), frame));
                }
                async move {
                    if upgrading {
                        return Ok(h2c::switching(ResponseBody::full("", None)));
                    }
                    // A router's connection: the request goes to a tenant.
                    match shared.router.get() {
                        Some(table) => table.dispatch(from, req).await,
                        None => handle(shared, from, req).await,
                    }
                }
            })
        };
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut shutdown = shared.shutdown.subscribe();
        let idle = shared.limits.idle_timeout;
        let last_active = &self.last_active;
        let mut draining = false;
        loop {
            let quiet_since = last_active.load(Ordering::Relaxed);
            let idle_at = Instant::now()
                + idle.saturating_sub(Duration::from_millis(now_ms().saturating_sub(quiet_since)));
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        let timed_out = e
                            .downcast_ref::<hyper::Error>()
                            .is_some_and(hyper::Error::is_timeout);
                        if let (true, Some(stream)) = (timed_out, &self.plain) {
                            // A client too slow to send its request head.
                            let _ = stream.try_write(REQUEST_TIMEOUT);
                        }
                        tracing::debug!(error = %e, "connection ended");
                        return None;
                    }
                    return upgrade_rx.try_recv().ok();
                }
                changed = shutdown.changed(), if !draining => {
                    let state = *shutdown.borrow_and_update();
                    match (changed, state) {
                        (Err(_), _) | (_, Shutdown::Now) => return None,
                        (_, Shutdown::Graceful) => {
                            draining = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        (_, Shutdown::No) => {}
                    }
                }
                () = tokio::time::sleep_until(idle_at.into()) => {
                    let quiet = now_ms().saturating_sub(last_active.load(Ordering::Relaxed));
                    if quiet >= idle.as_millis() as u64 && in_progress.load(Ordering::Acquire) == 0 {
                        tracing::debug!("closing an idle connection");
                        return None;
                    }
                    if quiet >= idle.as_millis() as u64 {
                        // A request is in progress: its handler decides.
                        last_active.store(now_ms(), Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Where a request came from: what its head tells the guest beyond HTTP,
/// and the count of requests in progress on its connection.
pub(crate) struct Origin {
    pub(crate) remote: Arc<str>,
    pub(crate) listener_id: u32,
    pub(crate) tls: Option<Arc<head::TlsInfo>>,
    pub(crate) in_progress: Arc<AtomicUsize>,
}

const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A response the host writes itself, with a short text body.
pub(super) fn status_response(
    status: StatusCode,
    text: &'static str,
    headers: &[(&'static str, &'static str)],
) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::full(text, None));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in headers {
        h.insert(*name, hyper::header::HeaderValue::from_static(value));
    }
    r
}

/// One request: refused here if it breaks a limit, otherwise queued for the
/// guest, whose answer this waits for.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    from: Origin,
    req: hyper::Request<Incoming>,
) -> Result<Response<ResponseBody>, Aborted> {
    use hyper::body::Body;

    if *shared.shutdown.borrow() != Shutdown::No {
        shared.stats_http.answered(503, Duration::ZERO);
        return Ok(status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down\n",
            &[("connection", "close"), ("retry-after", "1")],
        ));
    }
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > shared.limits.max_body_bytes) {
        shared.stats_http.answered(413, Duration::ZERO);
        return Ok(status_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
            &[("connection", "close")],
        ));
    }
    let content_length = if body.is_end_stream() {
        0
    } else {
        body.size_hint()
            .exact()
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(-1)
    };
    // Admission: the tenant's cap on requests in progress.
    if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_requests {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        shared.stats_http.answered(503, Duration::ZERO);
        return Ok(busy());
    }
    let head = head::encode_request(
        &parts,
        content_length,
        from.listener_id,
        &from.remote,
        from.tls.as_deref(),
    );
    let charged = head.len() as u64 + ARRIVAL_OVERHEAD;
    if !shared.memory.charge(charged) {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        shared.stats_http.answered(503, Duration::ZERO);
        return Ok(busy());
    }
    let link = Link::new(&shared, Some(from.in_progress));
    let (respond, answer) = oneshot::channel();
    let mut holding = Holding(Some(Arc::clone(&link)));
    let ring = {
        let Ok(mut q) = shared.queue.lock() else {
            return Err(Aborted);
        };
        // A guest that takes no requests must not make the queue grow: the
        // requests of clients that left still sit in it (they no longer
        // count as active), so at the cap they are dropped, and if the queue
        // is still full the client is told to come back.
        if q.arrivals.len() >= shared.limits.max_requests {
            let memory = &shared.memory;
            q.arrivals.retain(|a| {
                let keep = !a.respond.is_closed();
                if !keep {
                    memory.release(a.charged);
                }
                keep
            });
        }
        if q.arrivals.len() >= shared.limits.max_requests {
            drop(q);
            shared.memory.release(charged);
            // The request's link, dropped here, does not count it.
            link.status.store(503, Ordering::Release);
            holding.take();
            link.completed();
            return Ok(busy());
        }
        q.arrivals.push_back(Arrival {
            head,
            body,
            respond,
            link,
            charged,
        });
        std::mem::take(&mut q.guest_waits)
    };
    if ring {
        shared.doorbell.ring(token::ACCEPT);
    }
    match answer.await {
        Ok(response) => {
            // The body carries the request's end from here.
            holding.take();
            Ok(response)
        }
        // The guest gave the request up (or ended): close, as Go's server
        // does when a handler panics.
        Err(_) => Err(Aborted),
    }
}

fn busy() -> Response<ResponseBody> {
    status_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests in progress\n",
        &[("retry-after", "1")],
    )
}

/// A connection as hyper sees it: the socket, shared with the task that
/// serves it (which writes a 408 on it after hyper gives up), and the time
/// it last moved a byte.
struct Conn {
    stream: Arc<TcpStream>,
    last_active: Arc<AtomicU64>,
}

impl Conn {
    fn touch(&self) {
        self.last_active.store(now_ms(), Ordering::Relaxed);
    }

    /// Writes with `send` once the socket is writable, waiting while it
    /// would block.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        send: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match send(&self.stream) {
                Ok(n) => {
                    self.touch();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            // SAFETY: recv writes only initialised bytes into the unfilled
            // part, and reports how many; only those are marked filled.
            let unfilled = unsafe { buf.unfilled_mut() };
            let sock = socket2::SockRef::from(self.stream.as_ref());
            match self
                .stream
                .try_io(Interest::READABLE, || sock.recv(unfilled))
            {
                Ok(n) => {
                    // SAFETY: the kernel initialised `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    self.touch();
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |s| s.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |s| s.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sock = socket2::SockRef::from(self.stream.as_ref());
        Poll::Ready(match sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

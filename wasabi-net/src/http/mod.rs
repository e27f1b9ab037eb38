//! [`HttpClient`]: the requests a guest makes through `fetch`, on the
//! host's own client (hyper, rustls), under the guest's connect policy.
//!
//! A request is a tokio task: its URL, method and headers are checked and
//! its host and port put to the policy when it starts (so a denial is
//! immediate, before any connection); then it takes a connection from the
//! tenant's [`Pool`](pool) (or opens one: TCP, TLS for `https:` with the
//! certificate always verified, HTTP/2 when the server offers it by ALPN),
//! sends the request, follows redirects as its [`RedirectMode`] says (each
//! hop put to the policy again), and reports the response head as a
//! [`FetchEvent`].
//!
//! Bodies move only on demand, both ways. The request body stays in the
//! guest: the task asks for the next [`BODY_CHUNK`] bytes when the
//! connection can take them ([`FetchEvent::BodyWanted`],
//! [`HttpClient::supply_body`]). The response body is read one chunk per
//! [`HttpClient::pull`], so a guest that reads slowly holds at most one
//! chunk in the host, and the server sees back-pressure. Cancelling a
//! request (or dropping the client) aborts its task; dropping the client
//! also closes the tenant's pooled connections.

mod body;
mod pool;
mod redirect;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use wasabi_limits::HostMemory;

pub use body::BODY_CHUNK;
pub use pool::{CONNECTION_MEMORY, IDLE_TIMEOUT, MAX_IDLE_PER_ORIGIN};
pub use redirect::{MAX_REDIRECTS, RedirectMode};
pub use tls::{ClientTls, TlsFailure};

use body::OutgoingBody;
use pool::{Origin, Pool};
use redirect::Hop;

use crate::error::NetError;
use crate::policy::NetPolicy;

/// Identifies one request for the life of its client (never reused).
pub type FetchId = u64;

/// A request as the guest described it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// An absolute `http:` or `https:` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The length of the body, which the guest supplies on demand
    /// ([`FetchEvent::BodyWanted`]); 0 for none.
    pub body_length: u64,
    /// What to do with a redirect.
    pub redirect: RedirectMode,
}

/// Something that happened to a request.
#[derive(Debug)]
pub enum FetchEvent {
    /// The request needs `len` bytes of its body from `offset` on: answer
    /// with [`HttpClient::supply_body`].
    BodyWanted {
        /// The request.
        id: FetchId,
        /// Where in the body.
        offset: u64,
        /// How many bytes (at most [`BODY_CHUNK`], never past the end).
        len: u64,
    },
    /// The response head arrived.
    Head {
        /// The request.
        id: FetchId,
        /// The status code.
        status: u16,
        /// Header names (lower case) and values, in order.
        headers: Vec<(String, String)>,
        /// The URL that answered (the last one, after redirects).
        url: String,
        /// Whether a redirect was followed on the way.
        redirected: bool,
    },
    /// The next chunk of the body (after a [`HttpClient::pull`]).
    Chunk {
        /// The request.
        id: FetchId,
        /// The bytes (never empty).
        bytes: Bytes,
    },
    /// The body ended (after a [`HttpClient::pull`]).
    End {
        /// The request.
        id: FetchId,
    },
    /// The request failed, before or during the body.
    Failed {
        /// The request.
        id: FetchId,
        /// Why.
        error: NetError,
    },
}

impl FetchEvent {
    /// The request this event is about.
    pub fn id(&self) -> FetchId {
        match self {
            FetchEvent::BodyWanted { id, .. }
            | FetchEvent::Head { id, .. }
            | FetchEvent::Chunk { id, .. }
            | FetchEvent::End { id }
            | FetchEvent::Failed { id, .. } => *id,
        }
    }
}

/// One request in flight.
struct InFlight {
    /// Each message lets the task read one more body chunk.
    demand: mpsc::Sender<()>,
    /// Where supplied body chunks go.
    supply: mpsc::Sender<(u64, Bytes)>,
    /// `true` while the guest waits for an event (the head, or a chunk).
    awaited: bool,
    task: tokio::task::AbortHandle,
}

/// Headers the host sets itself (framing, connection management, the
/// host), which a guest's values could only contradict.
const HOST_MANAGED: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
];

/// One instance's HTTP requests.
pub struct HttpClient {
    policy: NetPolicy,
    pool: Arc<Pool>,
    /// The most requests in flight at once: the tenant's socket cap, since
    /// each may need a connection.
    max_in_flight: usize,
    next_id: FetchId,
    requests: HashMap<FetchId, InFlight>,
    tasks: JoinSet<()>,
    events_tx: mpsc::UnboundedSender<FetchEvent>,
    events: mpsc::UnboundedReceiver<FetchEvent>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("in_flight", &self.requests.len())
            .field("idle_connections", &self.pool.idle())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client that may reach what `policy` allows to connect to, trusting
    /// the authorities of `tls`. Each open connection (in use or pooled)
    /// takes a place in `quota`, the tenant's socket cap shared with its
    /// sockets, and [`CONNECTION_MEMORY`] of `memory`.
    pub fn new(
        policy: NetPolicy,
        quota: Arc<crate::SocketQuota>,
        memory: Arc<dyn HostMemory>,
        tls: &ClientTls,
    ) -> HttpClient {
        let (events_tx, events) = mpsc::unbounded_channel();
        HttpClient {
            policy,
            max_in_flight: quota.limit(),
            pool: Pool::new(quota, memory, tls.clone()),
            next_id: 1,
            requests: HashMap::new(),
            tasks: JoinSet::new(),
            events_tx,
            events,
        }
    }

    /// Number of requests in flight.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Connections this client has opened so far (each request that found
    /// one open in the pool opened none).
    pub fn connections_opened(&self) -> u64 {
        self.pool.opened()
    }

    /// `true` while the guest waits on a request (for its head or a chunk),
    /// so an event will come.
    pub fn has_pending(&self) -> bool {
        self.requests.values().any(|r| r.awaited)
    }

    /// Starts a request. Fails at once for a bad URL, a scheme other than
    /// `http` and `https`, a denied host and port, a bad method or header,
    /// or too many requests; everything else is reported by
    /// [`next_event`](HttpClient::next_event).
    pub fn start(&mut self, request: HttpRequest) -> Result<FetchId, NetError> {
        let mut url: url::Url = request
            .url
            .parse()
            .map_err(|e| NetError::Http(format!("invalid URL `{}`: {e}", request.url)))?;
        // A fragment is the client's own business; servers never see it.
        url.set_fragment(None);
        let origin = Origin::of(&url)?;
        self.policy.check_connect(&origin.endpoint)?;
        if self.requests.len() >= self.max_in_flight {
            return Err(NetError::TooManySockets {
                limit: self.max_in_flight,
            });
        }
        let method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| NetError::Http(format!("invalid method `{}`", request.method)))?;
        let (headers, close) = guest_headers(&request.headers)?;
        let hop = Hop {
            method,
            url,
            headers,
            with_body: request.body_length > 0,
        };
        let id = self.next_id;
        self.next_id += 1;
        let (demand, demanded) = mpsc::channel(1);
        let (supply, supplied) = mpsc::channel(1);
        let exchange = Exchange {
            id,
            pool: Arc::clone(&self.pool),
            policy: self.policy.clone(),
            events: self.events_tx.clone(),
            redirect: request.redirect,
            body_length: request.body_length,
            supplied: Arc::new(Mutex::new(supplied)),
            close,
        };
        let events = self.events_tx.clone();
        let task = self.tasks.spawn(async move {
            if let Err(error) = exchange.run(hop, demanded).await {
                let _ = events.send(FetchEvent::Failed { id, error });
            }
        });
        // Forget tasks that ended.
        while self.tasks.try_join_next().is_some() {}
        self.requests.insert(
            id,
            InFlight {
                demand,
                supply,
                awaited: true,
                task,
            },
        );
        tracing::debug!(id, url = %request.url, "fetch started");
        Ok(id)
    }

    /// Supplies the body bytes a [`FetchEvent::BodyWanted`] asked for (an
    /// empty or longer chunk than asked fails the request).
    pub fn supply_body(&mut self, id: FetchId, offset: u64, bytes: Bytes) {
        if let Some(request) = self.requests.get(&id) {
            // The task asked for exactly one chunk, so there is room.
            let _ = request.supply.try_send((offset, bytes));
        }
    }

    /// Lets request `id` read the next chunk of its body; a [`FetchEvent`]
    /// follows.
    pub fn pull(&mut self, id: FetchId) -> Result<(), NetError> {
        let request = self
            .requests
            .get_mut(&id)
            .ok_or_else(|| NetError::Http(format!("request {id} is over")))?;
        request.awaited = true;
        // The channel holds one demand; a second pull before the chunk
        // arrives asks for nothing more.
        let _ = request.demand.try_send(());
        Ok(())
    }

    /// Cancels request `id` (closing its connection); nothing more is
    /// reported about it.
    pub fn cancel(&mut self, id: FetchId) {
        if let Some(request) = self.requests.remove(&id) {
            request.task.abort();
        }
    }

    /// The next event of a request still in flight.
    pub async fn next_event(&mut self) -> FetchEvent {
        loop {
            // `events_tx` lives in self, so the channel never closes.
            let Some(event) = self.events.recv().await else {
                return std::future::pending().await;
            };
            if let Some(event) = self.accept(event) {
                return event;
            }
        }
    }

    /// Drops events of cancelled requests; forgets requests that ended.
    fn accept(&mut self, event: FetchEvent) -> Option<FetchEvent> {
        let id = event.id();
        let request = self.requests.get_mut(&id)?;
        if matches!(event, FetchEvent::BodyWanted { .. }) {
            return Some(event);
        }
        request.awaited = false;
        if matches!(event, FetchEvent::End { .. } | FetchEvent::Failed { .. }) {
            self.requests.remove(&id);
        }
        Some(event)
    }
}

/// The guest's headers as hyper's, without those the host manages; and
/// whether the guest asked for the connection to close after the request
/// (`Connection: close`).
fn guest_headers(pairs: &[(String, String)]) -> Result<(HeaderMap, bool), NetError> {
    let mut headers = HeaderMap::new();
    let mut close = false;
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| NetError::Http(format!("invalid header name `{name}`")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| NetError::Http(format!("invalid value for header `{name}`")))?;
        if name == header::CONNECTION {
            close |= value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        }
        if HOST_MANAGED.contains(&name.as_str()) {
            continue;
        }
        headers.append(name, value);
    }
    Ok((headers, close))
}

/// One request, start to end, as its task sees it.
struct Exchange {
    id: FetchId,
    pool: Arc<Pool>,
    policy: NetPolicy,
    events: mpsc::UnboundedSender<FetchEvent>,
    redirect: RedirectMode,
    body_length: u64,
    supplied: Arc<Mutex<body::Supplied>>,
    close: bool,
}

impl Exchange {
    /// Sends `hop` (following redirects), reports the head, then one body
    /// chunk per demand.
    async fn run(self, mut hop: Hop, mut demanded: mpsc::Receiver<()>) -> Result<(), NetError> {
        let mut hops = 0;
        let (response, lease) = loop {
            let origin = Origin::of(&hop.url)?;
            // The first hop was checked when the request started.
            if hops > 0 {
                self.policy.check_connect(&origin.endpoint)?;
            }
            let (response, lease) = self.send(&origin, &hop).await?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            match (redirect::is_redirect(status), location, self.redirect) {
                (true, Some(location), RedirectMode::Follow) => {
                    let next = redirect::next(&hop, status, &location, hops)?;
                    self.discard(response, lease).await;
                    tracing::debug!(id = self.id, %status, to = %next.url, "fetch redirected");
                    hop = next;
                    hops += 1;
                }
                (true, Some(location), RedirectMode::Error) => {
                    return Err(NetError::Http(format!(
                        "unexpected redirect ({status} to `{location}`): the request's redirect mode is `error`"
                    )));
                }
                _ => break (response, lease),
            }
        };
        let (head, mut body) = response.into_parts();
        let headers = head
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let _ = self.events.send(FetchEvent::Head {
            id: self.id,
            status: head.status.as_u16(),
            headers,
            url: hop.url.to_string(),
            redirected: hops > 0,
        });
        while demanded.recv().await.is_some() {
            loop {
                match body.frame().await {
                    None => {
                        self.pool.give_back(lease, self.close);
                        let _ = self.events.send(FetchEvent::End { id: self.id });
                        return Ok(());
                    }
                    Some(Err(e)) => return Err(http_error(e)),
                    Some(Ok(frame)) => {
                        if let Ok(bytes) = frame.into_data()
                            && !bytes.is_empty()
                        {
                            let _ = self.events.send(FetchEvent::Chunk { id: self.id, bytes });
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends one hop on a pooled or new connection. A pooled HTTP/1.1
    /// connection the server closed meanwhile fails without having sent
    /// the request (hyper says "canceled"); the request then goes again on
    /// another connection, as Go's own transport does.
    async fn send(
        &self,
        origin: &Origin,
        hop: &Hop,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, pool::Lease), NetError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut lease = self.pool.lease(origin).await?;
            let mut request = hyper::Request::builder()
                .method(hop.method.clone())
                .uri(hop.url.as_str())
                .body(self.body(hop))
                .map_err(|e| NetError::Http(format!("invalid request: {e}")))?;
            *request.headers_mut() = hop.headers.clone();
            if self.close && !lease.is_h2() {
                request
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            match lease.send(request).await {
                Ok(response) => return Ok((response, lease)),
                Err(e) if e.is_canceled() && lease.reused && attempts < 3 => continue,
                Err(e) => return Err(http_error(e)),
            }
        }
    }

    fn body(&self, hop: &Hop) -> OutgoingBody {
        if !hop.with_body {
            return OutgoingBody::empty();
        }
        OutgoingBody::pulled(
            self.id,
            self.body_length,
            self.events.clone(),
            Arc::clone(&self.supplied),
        )
    }

    /// Reads and drops a redirect's body, so its connection can serve the
    /// next hop; a long one closes the connection instead.
    async fn discard(&self, response: hyper::Response<hyper::body::Incoming>, lease: pool::Lease) {
        const MAX_DISCARD: usize = 64 * 1024;
        let mut body = response.into_body();
        let mut seen = 0;
        while seen <= MAX_DISCARD {
            match body.frame().await {
                None => {
                    self.pool.give_back(lease, self.close);
                    return;
                }
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                Some(Err(_)) => return,
            }
        }
    }
}

fn http_error(e: hyper::Error) -> NetError {
    // An I/O error underneath keeps its errno; our own body's error is
    // itself.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return NetError::Io(std::io::Error::new(io.kind(), io.to_string()));
        }
        if let Some(NetError::Http(message)) = s.downcast_ref::<NetError>() {
            return NetError::Http(message.clone());
        }
        source = s.source();
    }
    NetError::Http(format!("HTTP exchange failed: {e}"))
}

#[cfg(test)]
mod tests;

//! [`HttpClient`]: the HTTP/1.1 requests a guest makes through `fetch`, on
//! the host's own client (hyper), under the guest's connect policy.
//!
//! A request is a tokio task: check the policy (synchronously, when the
//! request starts, so a denial is immediate), connect, send, and report the
//! response head as a [`FetchEvent`]. The body then moves only on demand:
//! each [`HttpClient::pull`] lets the task read one more chunk, so a guest
//! that reads slowly holds at most one chunk in the host, and the server
//! sees TCP back-pressure. Cancelling a request (or dropping the client)
//! aborts its task, which closes its connection.
//!
//! Only `http:` URLs are supported: there is no TLS in the host client yet.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::address::{Endpoint, Family, Host};
use crate::error::NetError;
use crate::policy::NetPolicy;
use crate::sockets::connect;

/// Identifies one request for the life of its client (never reused).
pub type FetchId = u64;

/// A request as the guest described it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// An absolute `http:` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// Something that happened to a request.
#[derive(Debug)]
pub enum FetchEvent {
    /// The response head arrived.
    Head {
        /// The request.
        id: FetchId,
        /// The status code.
        status: u16,
        /// Header names (lower case) and values, in order.
        headers: Vec<(String, String)>,
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
            FetchEvent::Head { id, .. }
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
    /// `true` while the guest waits for an event (the head, or a chunk).
    awaited: bool,
    task: tokio::task::AbortHandle,
    /// Its place under the tenant's socket cap: a request holds a
    /// connection.
    _slot: crate::QuotaSlot,
}

/// The port an `http:` URL names, 80 by default. A port that is not a
/// number from 0 to 65535 (`:99999`) is an error, never quietly 80.
fn url_port(authority: &hyper::http::uri::Authority, url: &str) -> Result<u16, NetError> {
    let text = authority.as_str();
    let port = match text.rsplit_once(':') {
        // `[::1]` has colons but no port; `[::1]:8080` and `host:8080` do.
        Some((host, port)) if !text.ends_with(']') && !host.is_empty() && !port.is_empty() => port,
        // No port, or an empty one (`host:`), is the default, as URLs say.
        _ => return Ok(80),
    };
    port.parse()
        .map_err(|_| NetError::Http(format!("invalid URL `{url}`: bad port `{port}`")))
}

/// One instance's HTTP requests.
pub struct HttpClient {
    policy: NetPolicy,
    quota: std::sync::Arc<crate::SocketQuota>,
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
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client that may reach what `policy` allows to connect to. Each
    /// request in flight holds a connection, so it takes a place in `quota`,
    /// the tenant's socket cap shared with its sockets.
    pub fn new(policy: NetPolicy, quota: std::sync::Arc<crate::SocketQuota>) -> HttpClient {
        let (events_tx, events) = mpsc::unbounded_channel();
        HttpClient {
            policy,
            quota,
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

    /// `true` while the guest waits on a request (for its head or a chunk),
    /// so an event will come.
    pub fn has_pending(&self) -> bool {
        self.requests.values().any(|r| r.awaited)
    }

    /// Starts a request. Fails at once for a bad URL, a scheme other than
    /// `http`, a denied address or too many requests; everything else is
    /// reported by [`next_event`](HttpClient::next_event).
    pub fn start(&mut self, request: HttpRequest) -> Result<FetchId, NetError> {
        let uri: Uri = request
            .url
            .parse()
            .map_err(|e| NetError::Http(format!("invalid URL `{}`: {e}", request.url)))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(NetError::Http(format!(
                    "{other}: URLs are not supported by Wasabi's fetch (only http:)"
                )));
            }
            None => {
                return Err(NetError::Http(format!(
                    "invalid URL `{}`: not absolute",
                    request.url
                )));
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| NetError::Http(format!("invalid URL `{}`: no host", request.url)))?
            .clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let endpoint = Endpoint {
            host: match host.parse() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(host.to_ascii_lowercase()),
            },
            port: url_port(&authority, &request.url)?,
        };
        self.policy.check_connect(&endpoint)?;
        let slot = self.quota.take()?;
        let method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| NetError::Http(format!("invalid method `{}`", request.method)))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, authority.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http_request = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| NetError::Http(format!("invalid request: {e}")))?;
        let id = self.next_id;
        self.next_id += 1;
        let (demand, demanded) = mpsc::channel(1);
        let events = self.events_tx.clone();
        let task = self.tasks.spawn(async move {
            if let Err(error) = exchange(id, endpoint, http_request, &events, demanded).await {
                let _ = events.send(FetchEvent::Failed { id, error });
            }
        });
        self.requests.insert(
            id,
            InFlight {
                demand,
                awaited: true,
                task,
                _slot: slot,
            },
        );
        tracing::debug!(id, url = %request.url, "fetch started");
        Ok(id)
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
        request.awaited = false;
        if matches!(event, FetchEvent::End { .. } | FetchEvent::Failed { .. }) {
            self.requests.remove(&id);
        }
        Some(event)
    }
}

/// One request, start to end: connect, send, report the head, then one
/// chunk per demand.
async fn exchange(
    id: FetchId,
    endpoint: Endpoint,
    request: hyper::Request<Full<Bytes>>,
    events: &mpsc::UnboundedSender<FetchEvent>,
    mut demanded: mpsc::Receiver<()>,
) -> Result<(), NetError> {
    let stream = connect(&endpoint, Family::Any).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(http_error)?;
    // The connection is driven beside the exchange, and dies with it.
    let mut driver = JoinSet::new();
    driver.spawn(connection);
    let response = sender.send_request(request).await.map_err(http_error)?;
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
    let _ = events.send(FetchEvent::Head {
        id,
        status: head.status.as_u16(),
        headers,
    });
    while demanded.recv().await.is_some() {
        loop {
            match body.frame().await {
                None => {
                    let _ = events.send(FetchEvent::End { id });
                    return Ok(());
                }
                Some(Err(e)) => return Err(http_error(e)),
                Some(Ok(frame)) => {
                    if let Ok(bytes) = frame.into_data()
                        && !bytes.is_empty()
                    {
                        let _ = events.send(FetchEvent::Chunk { id, bytes });
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

fn http_error(e: hyper::Error) -> NetError {
    // An I/O error underneath keeps its errno.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return NetError::Io(std::io::Error::new(io.kind(), io.to_string()));
        }
        source = s.source();
    }
    NetError::Http(format!("HTTP exchange failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AddressRule;
    use std::io::{Read, Write};

    fn loopback() -> NetPolicy {
        let mut p = NetPolicy::deny_all();
        p.allow_connect("127.0.0.1".parse::<AddressRule>().unwrap());
        p
    }

    #[tokio::test]
    async fn a_request_reports_its_head_then_chunks_on_demand() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let serving = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.1 201 Created\r\nX-Answer: 42\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            head
        });
        let mut client = HttpClient::new(loopback(), crate::SocketQuota::new(4));
        let id = client
            .start(HttpRequest {
                method: "POST".into(),
                url: format!("http://{addr}/path?q=1"),
                headers: vec![("x-mine".into(), "yes".into())],
                body: b"body".to_vec(),
            })
            .unwrap();
        assert!(client.has_pending());
        let FetchEvent::Head {
            status, headers, ..
        } = client.next_event().await
        else {
            panic!("expected the head");
        };
        assert_eq!(status, 201);
        assert!(headers.contains(&("x-answer".into(), "42".into())));
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
    }

    #[tokio::test]
    async fn bad_urls_and_denied_addresses_fail_at_once() {
        let mut client = HttpClient::new(loopback(), crate::SocketQuota::new(1));
        let req = |url: &str| HttpRequest {
            method: "GET".into(),
            url: url.into(),
            ..HttpRequest::default()
        };
        let err = client.start(req("http://10.1.2.3/")).unwrap_err();
        assert_eq!(err.code(), "EACCES");
        assert_eq!(err.to_string(), "connecting to 10.1.2.3:80 is not allowed");
        assert!(client.start(req("https://127.0.0.1/")).is_err());
        assert!(client.start(req("/relative")).is_err());
        assert!(client.start(req("http://127.0.0.1:1/")).is_ok());
        let err = client.start(req("http://127.0.0.1:1/")).unwrap_err();
        assert_eq!(err.code(), "EMFILE");
        let err = client.start(req("http://127.0.0.1:99999/")).unwrap_err();
        assert!(err.to_string().contains("invalid URL"), "{err}");
        // The first one is refused by the kernel, as an event.
        let FetchEvent::Failed { error, .. } = client.next_event().await else {
            panic!("expected a failure");
        };
        assert_eq!(error.code(), "ECONNREFUSED");
    }

    /// A `fetch` holds a connection, so it counts in the same cap as the
    /// tenant's sockets: with a cap of 2, a listener and a request leave no
    /// room for a second request or a second listener.
    #[tokio::test]
    async fn requests_and_sockets_share_one_cap() {
        let quota = crate::SocketQuota::new(2);
        let mut policy = loopback();
        policy.allow_listen("127.0.0.1".parse::<AddressRule>().unwrap());
        let mut net = crate::Sockets::new(
            policy.clone(),
            std::sync::Arc::clone(&quota),
            std::sync::Arc::default(),
        );
        let mut client = HttpClient::new(policy, std::sync::Arc::clone(&quota));
        let listener = net.listen("tcp", "127.0.0.1:0").unwrap();
        let req = HttpRequest {
            method: "GET".into(),
            url: "http://127.0.0.1:1/".into(),
            ..HttpRequest::default()
        };
        let id = client.start(req.clone()).unwrap();
        assert_eq!(quota.held(), 2);
        assert_eq!(client.start(req.clone()).unwrap_err().code(), "EMFILE");
        assert_eq!(
            net.listen("tcp", "127.0.0.1:0").unwrap_err().code(),
            "EMFILE"
        );
        // Ending either gives its place back.
        client.cancel(id);
        assert_eq!(quota.held(), 1);
        net.close(listener).unwrap();
        assert_eq!(quota.held(), 0);
    }
}

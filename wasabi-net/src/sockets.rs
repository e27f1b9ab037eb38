//! [`Sockets`]: the sockets of one instance, its policy and its pending
//! waits.
//!
//! The interface is readiness-based, like Go's own network poller: `read`,
//! `write` and `accept` never block — they return `None` when they would —
//! and `wait` arms a one-shot notification for when the socket is ready,
//! delivered later through [`Sockets::next_event`]. This keeps every
//! data copy synchronous and direct (kernel buffer to the caller's slice, for
//! Wasabi the guest's linear memory) and every wait cheap: a small tokio task
//! that owns nothing but a reference to its socket.
//!
//! Everything an instance holds is released when its `Sockets` is dropped:
//! every socket closes (peers see the connection end) and every pending task
//! is aborted.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::task::{AbortHandle, JoinSet};

use crate::address::{Endpoint, Family, Host};
use crate::{NetError, NetPolicy, QuotaSlot, SocketQuota};

/// The id of a socket within one instance.
pub type SocketId = u32;

/// What a wait waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data to read, end of stream, or (for a listener) a connection to accept.
    Read,
    /// Room to write.
    Write,
}

/// A completed wait or dial.
#[derive(Debug)]
pub struct Event {
    /// The token the caller gave to [`Sockets::wait`] or [`Sockets::dial`].
    pub token: u64,
    /// For a dial, the connected socket; for a wait, `None`.
    pub result: Result<Option<SocketId>, NetError>,
}

enum Socket {
    Listener(Arc<AsyncFd<StdListener>>),
    Stream(Arc<TcpStream>),
    /// A dial in progress; `serial` tells its completion from a later
    /// socket that reuses the id.
    Dialing {
        serial: u64,
    },
    /// A listener whose connections the host's HTTP server takes
    /// ([`Sockets::serve_http`]); its accept task is the entry's read task.
    Serving(Arc<AsyncFd<StdListener>>),
    /// A listener the host stopped while draining: its port is closed, but
    /// the id stays taken until the guest closes it, so that no other socket
    /// can answer to it.
    Stopped,
}

impl Socket {
    /// The error for using socket `id` as something it is not, saying what
    /// it is.
    fn wrong_kind(&self, id: SocketId) -> NetError {
        let what = match self {
            Socket::Listener(_) => "a listener",
            Socket::Stream(_) => "a connection",
            Socket::Dialing { .. } => "still connecting",
            Socket::Serving(_) => "a listener the host serves HTTP on",
            Socket::Stopped => "a listener the host stopped",
        };
        NetError::WrongKind { id, what }
    }
}

struct Entry {
    socket: Socket,
    /// The address the guest asked for, when the policy mapped it to another
    /// host address: what the guest sees as the local address.
    guest_local: Option<SocketAddr>,
    /// The pending wait (or the dial) for each interest, aborted when
    /// replaced or when the socket closes.
    read_task: Option<AbortHandle>,
    write_task: Option<AbortHandle>,
    /// Its place under the tenant's socket cap, given back with the entry.
    _slot: QuotaSlot,
}

impl Drop for Entry {
    fn drop(&mut self) {
        for task in [self.read_task.take(), self.write_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

enum TaskOutput {
    Ready {
        token: u64,
    },
    Connected {
        token: u64,
        id: SocketId,
        serial: u64,
        result: Result<TcpStream, NetError>,
    },
}

/// Live counts of one instance's sockets, shared with whoever watches the
/// instance (a supervisor's metrics). All zero once the context is dropped.
#[derive(Debug, Default)]
pub struct NetStats {
    open_sockets: AtomicUsize,
    open_connections: AtomicUsize,
    /// Connections the host's HTTP server holds for the instance.
    pub(crate) http_connections: AtomicUsize,
}

impl NetStats {
    /// Listeners, connections and dials in progress.
    pub fn open_sockets(&self) -> usize {
        self.open_sockets.load(Ordering::Relaxed)
    }

    /// Connections: established or being dialled by the guest, and those
    /// the host's HTTP server serves for it.
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Relaxed)
            + self.http_connections.load(Ordering::Relaxed)
    }
}

/// The network of one instance: its policy, its open sockets, and the waits
/// and dials in flight.
///
/// Operations that start a wait or a dial spawn a task on the current tokio
/// runtime, so they must be called from within one.
pub struct Sockets {
    policy: NetPolicy,
    quota: Arc<SocketQuota>,
    sockets: Slab<Entry>,
    tasks: JoinSet<TaskOutput>,
    next_serial: u64,
    stats: Arc<NetStats>,
    /// Waits and dials that completed and whose event is not delivered yet.
    ready: Arc<AtomicUsize>,
    /// Reads and accepts that found data since the event loop's turn began.
    turn_reads: usize,
}

/// Reads and accepts that may find data in one turn of the event loop
/// while other sockets' events wait for the turn to end.
///
/// Why: the host delivers readiness events between turns (calls into the
/// guest), and a turn lasts until every goroutine is blocked. A goroutine
/// whose socket always has data (a keep-alive client sending its next
/// request as soon as it has an answer) never blocks, so a few busy
/// connections could hold a turn for hundreds of milliseconds while a
/// connection that had to wait got nothing: measured, a p99 of 270 ms for
/// 8 connections against a p90 of 1 ms. Past this budget, and only when
/// another socket's event is waiting, a read reports "nothing yet": its
/// goroutine arms a wait like the others, the turn ends, and every ready
/// socket is served in the next one, busy or not.
const TURN_BUDGET: usize = 32;

impl Drop for Sockets {
    fn drop(&mut self) {
        self.sockets.clear();
        self.recount();
    }
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("policy", &self.policy)
            .field("open_sockets", &self.sockets.len())
            .field("pending", &self.tasks.len())
            .finish()
    }
}

impl Default for Sockets {
    /// No network at all, and the default socket cap.
    fn default() -> Sockets {
        Sockets::new(
            NetPolicy::deny_all(),
            SocketQuota::new(wasabi_limits::DEFAULT_MAX_SOCKETS),
        )
    }
}

impl Sockets {
    /// An instance's network under `policy`, holding at most as many
    /// sockets at once as `quota` (shared with the instance's HTTP client)
    /// allows.
    pub fn new(policy: NetPolicy, quota: Arc<SocketQuota>) -> Sockets {
        Sockets {
            policy,
            quota,
            sockets: Slab::new(),
            tasks: JoinSet::new(),
            next_serial: 0,
            stats: Arc::default(),
            ready: Arc::default(),
            turn_reads: 0,
        }
    }

    /// The event loop starts a turn (a call into the guest): the read
    /// budget of [`TURN_BUDGET`] starts again.
    pub fn begin_turn(&mut self) {
        self.turn_reads = 0;
    }

    /// Whether this turn has used its read budget while another socket's
    /// event waits: then a read or an accept yields.
    fn should_yield(&self) -> bool {
        self.turn_reads >= TURN_BUDGET && self.ready.load(Ordering::Acquire) > 0
    }

    /// The policy this context enforces.
    pub fn policy(&self) -> &NetPolicy {
        &self.policy
    }

    /// Sockets open now (listeners, connections and dials in progress).
    pub fn open_sockets(&self) -> usize {
        self.sockets.len()
    }

    /// The live counts, shared.
    pub fn stats(&self) -> Arc<NetStats> {
        Arc::clone(&self.stats)
    }

    /// Connections open now (established or being dialled).
    pub fn open_connections(&self) -> usize {
        self.stats.open_connections()
    }

    /// Brings the shared counts up to date after a change.
    fn recount(&self) {
        let connections = self
            .sockets
            .iter()
            .filter(|(_, e)| matches!(e.socket, Socket::Stream(_) | Socket::Dialing { .. }))
            .count();
        self.stats
            .open_sockets
            .store(self.sockets.len(), Ordering::Relaxed);
        self.stats
            .open_connections
            .store(connections, Ordering::Relaxed);
    }

    /// Stops every listener: their ports close, so no new connection
    /// arrives, while established connections carry on. A guest blocked in
    /// accept stays blocked (the host is draining it); its later calls on the
    /// listener fail, except close.
    pub fn stop_listening(&mut self) {
        for (_, entry) in self.sockets.iter_mut() {
            if matches!(entry.socket, Socket::Listener(_) | Socket::Serving(_)) {
                entry.socket = Socket::Stopped;
                if let Some(task) = entry.read_task.take() {
                    task.abort();
                }
            }
        }
    }

    /// `true` while a wait or a dial may still deliver an event.
    pub fn has_pending(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Fails when the instance holds as many sockets as it may: checked
    /// before binding or accepting, so nothing is opened only to be dropped.
    fn check_room(&self) -> Result<(), NetError> {
        self.quota.check()
    }

    fn too_many(&self) -> NetError {
        NetError::TooManySockets {
            limit: self.quota.limit(),
        }
    }

    fn insert(&mut self, socket: Socket) -> Result<SocketId, NetError> {
        let slot = self.quota.take()?;
        let key = self.sockets.insert(Entry {
            socket,
            guest_local: None,
            read_task: None,
            write_task: None,
            _slot: slot,
        });
        self.recount();
        // The slab never holds more entries than the quota allows; ids past
        // `u32::MAX` would need a cap no one sets.
        SocketId::try_from(key).map_err(|_| {
            self.sockets.remove(key);
            self.too_many()
        })
    }

    fn entry(&self, id: SocketId) -> Result<&Entry, NetError> {
        self.sockets.get(id as usize).ok_or(NetError::NotOpen(id))
    }

    fn stream(&self, id: SocketId) -> Result<&Arc<TcpStream>, NetError> {
        match &self.entry(id)?.socket {
            Socket::Stream(s) => Ok(s),
            other => Err(other.wrong_kind(id)),
        }
    }

    /// Starts listening on `address` (`host:port`; `localhost` is
    /// `127.0.0.1`, an empty host is `0.0.0.0`), if the policy grants it.
    pub fn listen(&mut self, network: &str, address: &str) -> Result<SocketId, NetError> {
        let family = Family::from_network(network)?;
        let mut endpoint: Endpoint = address.parse()?;
        if endpoint.host == Host::Name("localhost".into()) {
            endpoint.host = Host::Ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let Host::Ip(ip) = endpoint.host else {
            return Err(NetError::BadAddress {
                address: address.to_string(),
                reason: "a listen address must be an IP address or localhost",
            });
        };
        let addr = SocketAddr::new(ip, endpoint.port);
        if !family.admits(&addr) {
            return Err(NetError::BadAddress {
                address: address.to_string(),
                reason: "the address is not of the network's family",
            });
        }
        let mapped = self.policy.listen_target(&endpoint)?;
        self.check_room()?;
        let listener = StdListener::bind(mapped.unwrap_or(addr))?;
        listener.set_nonblocking(true)?;
        // SAFETY: the std listener owns its descriptor, and the AsyncFd owns
        // the listener until both are dropped together.
        let listener =
            unsafe { AsyncFd::register(listener) }.map_err(|e| NetError::Io(e.into_parts().1))?;
        let id = self.insert(Socket::Listener(Arc::new(listener)))?;
        if let (Some(host), Some(entry)) = (mapped, self.sockets.get_mut(id as usize)) {
            entry.guest_local = Some(addr);
            tracing::debug!(id, guest = %addr, %host, "listening (mapped)");
        } else {
            tracing::debug!(id, %addr, "listening");
        }
        Ok(id)
    }

    /// Accepts a pending connection on listener `id`, or `None` when there
    /// is none yet (wait for [`Interest::Read`]).
    pub fn accept(&mut self, id: SocketId) -> Result<Option<SocketId>, NetError> {
        let entry = self.entry(id)?;
        let guest_local = entry.guest_local;
        let listener = match &entry.socket {
            Socket::Listener(l) => Arc::clone(l),
            stopped @ Socket::Stopped => return Err(stopped.wrong_kind(id)),
            _ => {
                return Err(NetError::WrongKind {
                    id,
                    what: "not a listener",
                });
            }
        };
        self.check_room()?;
        if self.should_yield() {
            return Ok(None);
        }
        let Some(stream) = try_accept(&listener)? else {
            return Ok(None);
        };
        self.turn_reads += 1;
        stream.set_nonblocking(true)?;
        let stream = TcpStream::from_std(stream)?;
        // Go's own network stack sets TCP_NODELAY on every connection.
        stream.set_nodelay(true)?;
        let conn = self.insert(Socket::Stream(Arc::new(stream)))?;
        if let Some(entry) = self.sockets.get_mut(conn as usize) {
            entry.guest_local = guest_local;
        }
        tracing::trace!(listener = id, conn, "accepted");
        Ok(Some(conn))
    }

    /// Starts connecting to `address` if the policy grants it, and returns
    /// the id the connection will have. The outcome arrives as an
    /// [`Event`] with `token`; [`close`](Self::close) cancels it.
    pub fn dial(&mut self, network: &str, address: &str, token: u64) -> Result<SocketId, NetError> {
        let family = Family::from_network(network)?;
        let endpoint: Endpoint = address.parse()?;
        self.policy.check_connect(&endpoint)?;
        let serial = self.next_serial;
        self.next_serial += 1;
        let id = self.insert(Socket::Dialing { serial })?;
        let task = self.tasks.spawn(async move {
            let result = connect(&endpoint, family).await;
            TaskOutput::Connected {
                token,
                id,
                serial,
                result,
            }
        });
        if let Some(entry) = self.sockets.get_mut(id as usize) {
            entry.write_task = Some(task);
        }
        tracing::debug!(id, %address, "dialing");
        Ok(id)
    }

    /// Reads into `buf`: `Some(0)` at the end of the stream, `None` when no
    /// data is there yet (wait for [`Interest::Read`]).
    pub fn read(&mut self, id: SocketId, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let stream = self.stream(id)?;
        if self.should_yield() {
            return Ok(None);
        }
        match stream.try_read(buf) {
            Ok(n) => {
                self.turn_reads += 1;
                Ok(Some(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes from `buf`: how much was written, or `None` when the send
    /// buffer is full (wait for [`Interest::Write`]).
    pub fn write(&mut self, id: SocketId, buf: &[u8]) -> Result<Option<usize>, NetError> {
        match self.stream(id)?.try_write(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Arms a one-shot notification, delivered as an [`Event`] with `token`,
    /// for when socket `id` is ready for `interest`. A new wait for the same
    /// socket and interest replaces the previous one.
    pub fn wait(&mut self, id: SocketId, interest: Interest, token: u64) -> Result<(), NetError> {
        let entry = self.entry(id)?;
        let task = match (&entry.socket, interest) {
            (Socket::Listener(l), Interest::Read) => {
                let l = Arc::clone(l);
                let ready = Arc::clone(&self.ready);
                self.tasks.spawn(async move {
                    // The readiness stays set; the next accept consumes or clears it.
                    let _ = l.readable().await;
                    ready.fetch_add(1, Ordering::AcqRel);
                    TaskOutput::Ready { token }
                })
            }
            (Socket::Stream(s), interest) => {
                let s = Arc::clone(s);
                let ready = Arc::clone(&self.ready);
                self.tasks.spawn(async move {
                    let _ = match interest {
                        Interest::Read => s.readable().await,
                        Interest::Write => s.writable().await,
                    };
                    ready.fetch_add(1, Ordering::AcqRel);
                    TaskOutput::Ready { token }
                })
            }
            (other, _) => return Err(other.wrong_kind(id)),
        };
        let entry = self
            .sockets
            .get_mut(id as usize)
            .ok_or(NetError::NotOpen(id))?;
        let slot = match interest {
            Interest::Read => &mut entry.read_task,
            Interest::Write => &mut entry.write_task,
        };
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// Hands listener `id` to `ingress`, the host's HTTP server: from now on
    /// it accepts the listener's connections and speaks HTTP on them. The
    /// id stays the guest's; closing it stops the accepting (connections in
    /// progress carry on, as with Go's `http.Serve`).
    pub fn serve_http(
        &mut self,
        id: SocketId,
        ingress: &mut crate::Ingress,
    ) -> Result<(), NetError> {
        let stats = self.stats();
        let entry = self
            .sockets
            .get_mut(id as usize)
            .ok_or(NetError::NotOpen(id))?;
        let listener = match &entry.socket {
            Socket::Listener(l) => Arc::clone(l),
            other => return Err(other.wrong_kind(id)),
        };
        if let Some(task) = entry.read_task.take() {
            task.abort();
        }
        entry.read_task = Some(ingress.serve(Arc::clone(&listener), id, stats));
        entry.socket = Socket::Serving(listener);
        tracing::debug!(id, "serving HTTP");
        Ok(())
    }

    /// Shuts down the writing half: the peer reads end of stream, and this
    /// side can still read.
    pub fn close_write(&mut self, id: SocketId) -> Result<(), NetError> {
        let stream = self.stream(id)?;
        socket2::SockRef::from(stream.as_ref()).shutdown(std::net::Shutdown::Write)?;
        Ok(())
    }

    /// Closes socket `id`, cancelling its waits (or its dial).
    pub fn close(&mut self, id: SocketId) -> Result<(), NetError> {
        self.sockets
            .try_remove(id as usize)
            .ok_or(NetError::NotOpen(id))?;
        self.recount();
        tracing::trace!(id, "closed");
        Ok(())
    }

    /// The local address of socket `id`.
    pub fn local_addr(&self, id: SocketId) -> Result<SocketAddr, NetError> {
        let entry = self.entry(id)?;
        if let Some(guest) = entry.guest_local {
            return Ok(guest);
        }
        match &entry.socket {
            Socket::Listener(l) | Socket::Serving(l) => Ok(l.get_ref().local_addr()?),
            Socket::Stream(s) => Ok(s.local_addr()?),
            other => Err(other.wrong_kind(id)),
        }
    }

    /// The remote address of connection `id`.
    pub fn peer_addr(&self, id: SocketId) -> Result<SocketAddr, NetError> {
        Ok(self.stream(id)?.peer_addr()?)
    }

    /// The next completed wait or dial. Never completes while
    /// [`has_pending`](Self::has_pending) is false. Cancel-safe: dropping the
    /// future loses no event.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let Some(joined) = self.tasks.join_next().await else {
                return std::future::pending().await;
            };
            if let Some(event) = self.completed(joined) {
                return event;
            }
        }
    }

    /// A completed wait or dial if one is ready now, without waiting: how a
    /// caller delivers every event that is ready in one batch.
    pub fn try_next_event(&mut self) -> Option<Event> {
        loop {
            let joined = self.tasks.try_join_next()?;
            if let Some(event) = self.completed(joined) {
                return Some(event);
            }
        }
    }

    /// The event a finished task reports, if it still has something to say.
    fn completed(&mut self, joined: Result<TaskOutput, tokio::task::JoinError>) -> Option<Event> {
        // A task that was aborted (replaced or closed) has nothing to say.
        let output = joined.ok()?;
        if matches!(output, TaskOutput::Ready { .. }) {
            let _ = self
                .ready
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
        match output {
            TaskOutput::Ready { token } => Some(Event {
                token,
                result: Ok(None),
            }),
            TaskOutput::Connected {
                token,
                id,
                serial,
                result,
            } => {
                let entry = self.sockets.get_mut(id as usize)?;
                if !matches!(entry.socket, Socket::Dialing { serial: s } if s == serial) {
                    return None;
                }
                entry.write_task = None;
                Some(match result {
                    Ok(stream) => {
                        entry.socket = Socket::Stream(Arc::new(stream));
                        Event {
                            token,
                            result: Ok(Some(id)),
                        }
                    }
                    Err(e) => {
                        self.sockets.remove(id as usize);
                        self.recount();
                        Event {
                            token,
                            result: Err(e),
                        }
                    }
                })
            }
        }
    }
}

/// Accepts without blocking: `None` when no connection is waiting.
fn try_accept(listener: &AsyncFd<StdListener>) -> Result<Option<StdStream>, NetError> {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match listener.poll_read_ready(&mut cx) {
            Poll::Pending => return Ok(None),
            Poll::Ready(Err(e)) => return Err(e.into()),
            Poll::Ready(Ok(mut guard)) => match guard.try_io(|l| l.get_ref().accept()) {
                Ok(Ok((stream, _))) => return Ok(Some(stream)),
                Ok(Err(e)) => return Err(e.into()),
                // Readiness was stale and is now cleared: poll once more.
                Err(_would_block) => continue,
            },
        }
    }
}

/// Resolves (when `endpoint` is a name) and connects, trying each address of
/// the family in turn as Go does.
pub(crate) async fn connect(endpoint: &Endpoint, family: Family) -> Result<TcpStream, NetError> {
    let addrs: Vec<SocketAddr> = match &endpoint.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, endpoint.port)],
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), endpoint.port))
            .await?
            .collect(),
    };
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| family.admits(a)).collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => e.into(),
        None => NetError::NoAddress {
            host: endpoint.host_name(),
            family: match family {
                Family::Any => "IP",
                Family::V4 => "IPv4",
                Family::V6 => "IPv6",
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AddressRule;
    use std::io::{Read, Write};

    fn loopback_policy() -> NetPolicy {
        let mut policy = NetPolicy::deny_all();
        let rule: AddressRule = "127.0.0.1".parse().unwrap();
        policy.allow_listen(rule.clone()).allow_connect(rule);
        policy
    }

    async fn next(net: &mut Sockets) -> Event {
        tokio::time::timeout(std::time::Duration::from_secs(10), net.next_event())
            .await
            .expect("an event within 10 s")
    }

    #[tokio::test]
    async fn listen_accept_read_write_close() {
        let mut net = Sockets::new(loopback_policy(), SocketQuota::new(8));
        let l = net.listen("tcp", "127.0.0.1:0").unwrap();
        let addr = net.local_addr(l).unwrap();
        assert_eq!(net.accept(l).unwrap(), None);
        net.wait(l, Interest::Read, 7).unwrap();
        let mut peer = std::thread::spawn(move || StdStream::connect(addr).unwrap())
            .join()
            .unwrap();
        let event = next(&mut net).await;
        assert_eq!(event.token, 7);
        let c = net
            .accept(l)
            .unwrap()
            .expect("a connection after readiness");
        assert_eq!(net.peer_addr(c).unwrap(), peer.local_addr().unwrap());
        peer.write_all(b"ping").unwrap();
        let mut buf = [0u8; 16];
        let n = loop {
            match net.read(c, &mut buf).unwrap() {
                Some(n) => break n,
                None => {
                    net.wait(c, Interest::Read, 8).unwrap();
                    assert_eq!(next(&mut net).await.token, 8);
                }
            }
        };
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(net.write(c, b"pong").unwrap(), Some(4));
        net.close_write(c).unwrap();
        let mut back = Vec::new();
        peer.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"pong");
        net.close(c).unwrap();
        assert!(matches!(net.read(c, &mut buf), Err(NetError::NotOpen(_))));
        assert!(matches!(net.close(c), Err(NetError::NotOpen(_))));
    }

    /// Accepts a connection on listener `l` from a new peer.
    async fn connected(net: &mut Sockets, l: SocketId) -> (SocketId, StdStream) {
        let addr = net.local_addr(l).unwrap();
        let peer = StdStream::connect(addr).unwrap();
        loop {
            if let Some(c) = net.accept(l).unwrap() {
                return (c, peer);
            }
            net.wait(l, Interest::Read, 0).unwrap();
            next(net).await;
        }
    }

    #[tokio::test]
    async fn a_busy_socket_yields_its_turn_to_one_that_waited() {
        let mut net = Sockets::new(loopback_policy(), SocketQuota::new(8));
        let l = net.listen("tcp", "127.0.0.1:0").unwrap();
        let (busy, mut busy_peer) = connected(&mut net, l).await;
        let (quiet, mut quiet_peer) = connected(&mut net, l).await;
        // The busy connection always has data; the quiet one waits for its
        // first byte, which comes: its event is ready to be delivered.
        busy_peer.write_all(&[b'b'; 4096]).unwrap();
        net.wait(quiet, Interest::Read, 42).unwrap();
        quiet_peer.write_all(b"q").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while net.ready.load(Ordering::Acquire) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the quiet socket's wait completes");
        net.begin_turn();
        let mut buf = [0u8; 1];
        let mut reads = 0;
        while let Some(n) = net.read(busy, &mut buf).unwrap() {
            assert_eq!(n, 1);
            reads += 1;
        }
        // The busy socket had data left, but the turn gave way after its
        // budget; the quiet socket's event is delivered next.
        assert_eq!(reads, TURN_BUDGET);
        assert_eq!(next(&mut net).await.token, 42);
        // A new turn: the busy socket reads again.
        net.begin_turn();
        assert_eq!(net.read(busy, &mut buf).unwrap(), Some(1));
        // Alone, a busy socket is never held back.
        for _ in 0..2 * TURN_BUDGET {
            assert_eq!(net.read(busy, &mut buf).unwrap(), Some(1));
        }
    }

    #[tokio::test]
    async fn mapped_listens_bind_the_host_address_and_report_the_guest_s() {
        let host_port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let mut policy = NetPolicy::deny_all();
        policy.map_listen("127.0.0.1:8080".parse().unwrap(), host_port);
        let mut net = Sockets::new(policy, SocketQuota::new(8));
        let l = net.listen("tcp", "127.0.0.1:8080").unwrap();
        assert_eq!(net.local_addr(l).unwrap().to_string(), "127.0.0.1:8080");
        let peer = StdStream::connect(host_port).unwrap();
        net.wait(l, Interest::Read, 1).unwrap();
        next(&mut net).await;
        let c = net.accept(l).unwrap().unwrap();
        assert_eq!(net.local_addr(c).unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(net.peer_addr(c).unwrap(), peer.local_addr().unwrap());
        let stats = net.stats();
        assert_eq!((stats.open_sockets(), stats.open_connections()), (2, 1));
        // Draining: the port closes, the connection stays, the id stays taken.
        net.stop_listening();
        assert!(StdStream::connect(host_port).is_err());
        assert!(net.accept(l).is_err());
        net.wait(c, Interest::Write, 2).unwrap();
        assert_eq!(next(&mut net).await.token, 2);
        assert_eq!(net.write(c, b"still here").unwrap(), Some(10));
        net.close(l).unwrap();
        drop(net);
        assert_eq!((stats.open_sockets(), stats.open_connections()), (0, 0));
    }

    #[tokio::test]
    async fn dial_completes_through_an_event() {
        let server = StdListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let mut net = Sockets::new(loopback_policy(), SocketQuota::new(8));
        let id = net.dial("tcp", &addr, 42).unwrap();
        let event = next(&mut net).await;
        assert_eq!(event.token, 42);
        assert_eq!(event.result.unwrap(), Some(id));
        assert_eq!(net.peer_addr(id).unwrap().to_string(), addr);
        drop(server);
        // Nothing listens any more: refused.
        let id = net.dial("tcp", &addr, 43).unwrap();
        let event = next(&mut net).await;
        let err = event.result.unwrap_err();
        assert_eq!(err.code(), "ECONNREFUSED", "{err}");
        assert!(matches!(net.close(id), Err(NetError::NotOpen(_))));
    }

    #[tokio::test]
    async fn policy_and_caps_are_enforced() {
        let mut net = Sockets::new(NetPolicy::deny_all(), SocketQuota::new(1));
        let err = net.listen("tcp", "127.0.0.1:0").unwrap_err();
        assert_eq!(err.code(), "EACCES");
        assert_eq!(err.to_string(), "listening on 127.0.0.1:0 is not allowed");
        let err = net.dial("tcp", "127.0.0.1:1", 1).unwrap_err();
        assert_eq!(err.to_string(), "connecting to 127.0.0.1:1 is not allowed");
        let mut net = Sockets::new(loopback_policy(), SocketQuota::new(1));
        net.listen("tcp", "127.0.0.1:0").unwrap();
        let err = net.listen("tcp", "127.0.0.1:0").unwrap_err();
        assert_eq!(err.code(), "EMFILE");
        assert!(net.listen("udp", "127.0.0.1:0").is_err());
        assert!(net.listen("tcp6", "127.0.0.1:0").is_err());
    }

    #[tokio::test]
    async fn closing_cancels_waits_and_dropping_closes_everything() {
        let mut net = Sockets::new(loopback_policy(), SocketQuota::new(8));
        let l = net.listen("tcp", "127.0.0.1:0").unwrap();
        let addr = net.local_addr(l).unwrap();
        net.wait(l, Interest::Read, 1).unwrap();
        net.close(l).unwrap();
        // The aborted wait delivers nothing, and the port is free again.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let quiet =
            tokio::time::timeout(std::time::Duration::from_millis(50), net.next_event()).await;
        assert!(quiet.is_err());
        assert!(!net.has_pending());
        assert!(StdStream::connect(addr).is_err());
        let server = StdListener::bind("127.0.0.1:0").unwrap();
        let id = net.dial("tcp", &server.local_addr().unwrap().to_string(), 2);
        next(&mut net).await.result.unwrap();
        let (mut accepted, _) = server.accept().unwrap();
        assert!(id.is_ok());
        drop(net);
        let mut buf = [0u8; 1];
        assert_eq!(accepted.read(&mut buf).unwrap(), 0, "the peer sees the end");
    }
}

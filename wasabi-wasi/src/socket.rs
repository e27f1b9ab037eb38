//! Sockets for a WASI guest: preview 1's `sock_accept`, `sock_recv`,
//! `sock_send` and `sock_shutdown`, and the WasmEdge socket extension
//! (`sock_open`, `sock_bind`, `sock_listen`, `sock_connect`,
//! `sock_getsockopt`, `sock_setsockopt`, `sock_getlocaladdr`,
//! `sock_getpeeraddr`) that Go's wasip1 networking libraries
//! (`github.com/stealthrocket/net`, the companion module) call.
//!
//! A socket descriptor is a guest-side state ([`SocketFd`]) over one socket
//! of the tenant's [`wasabi_net::Sockets`]: the same policy, socket cap,
//! listen mapping and readiness as a js guest's sockets. Nothing here
//! blocks a thread: a blocking call waits on the tenant's doorbell, which
//! the socket's waker rings; a non-blocking one returns `EAGAIN` (or
//! `EINPROGRESS` for a connect, whose outcome `SO_ERROR` then reports).
//!
//! Address layouts are WasmEdge's: an address is passed as a buffer
//! descriptor `{ buf: u32, buf_len: u32 }` whose buffer holds the 4 or 16
//! bytes of an IPv4 or IPv6 address, or (128 bytes) a family `u16`
//! (1 IPv4, 2 IPv6) followed by the address bytes; ports travel apart, as
//! `u32`s. Datagram (UDP) sockets are bound with `sock_bind` (a listen
//! grant) or on first use to an ephemeral port, send with `sock_send_to`
//! (each destination checked against the connect grants) or, once
//! connected, with `sock_send`/`fd_write`; see `wasabi_net`'s datagram
//! module for what an unbound socket may hear. Unix sockets are not
//! supported (`EAFNOSUPPORT`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use wasabi_limits::SharedAdvice;
use wasabi_net::{Doorbell, DrainSignal, NetError, SocketId, Sockets, token};
use wasmtime_wasi::p1::types::Errno;

use crate::abi;
use crate::fds::{FdTable, Target};

/// WasmEdge's address families.
const AF_INET: u16 = 1;
const AF_INET6: u16 = 2;
/// WasmEdge's socket types.
const SOCK_ANY: i32 = 0;
const SOCK_DGRAM: i32 = 1;
const SOCK_STREAM: i32 = 2;
/// `sock_getsockopt`/`sock_setsockopt` level and names (WasmEdge's).
const SOL_SOCKET: i32 = 0;
const SO_REUSEADDR: i32 = 0;
const SO_TYPE: i32 = 1;
const SO_ERROR: i32 = 2;
const SO_KEEPALIVE: i32 = 7;
/// Preview 1's `fdflags.nonblock`.
pub(crate) const FDFLAGS_NONBLOCK: u16 = 1 << 2;

/// A socket descriptor.
pub(crate) struct SocketFd {
    /// An IPv6 socket (else IPv4).
    v6: bool,
    /// A datagram (UDP) socket (else a stream).
    datagram: bool,
    /// Calls return `EAGAIN` rather than wait.
    pub(crate) nonblocking: bool,
    state: State,
}

/// Where a socket descriptor is in its life.
enum State {
    /// Made by `sock_open`; maybe given an address by `sock_bind`.
    Open { bound: Option<SocketAddr> },
    /// A listener.
    Listening(SocketId),
    /// A datagram socket with an address but no peer.
    Bound(SocketId),
    /// A connect under way.
    Connecting(SocketId),
    /// A connection.
    Connected(SocketId),
    /// A connect that failed, its error not yet reported by `SO_ERROR`.
    Failed(Errno),
}

impl SocketFd {
    /// A listener the host opened for the guest before it started.
    pub(crate) fn preopened(id: SocketId, addr: SocketAddr) -> SocketFd {
        SocketFd {
            v6: addr.is_ipv6(),
            datagram: false,
            nonblocking: false,
            state: State::Listening(id),
        }
    }

    /// The host socket, if there is one.
    pub(crate) fn id(&self) -> Option<SocketId> {
        match self.state {
            State::Listening(id)
            | State::Bound(id)
            | State::Connecting(id)
            | State::Connected(id) => Some(id),
            State::Open { .. } | State::Failed(_) => None,
        }
    }

    /// The connection, once a connect under way has ended; `ENOTCONN` when
    /// there is none (yet), `EAGAIN` while connecting.
    fn connection(&mut self, sockets: &mut Sockets) -> Result<SocketId, Errno> {
        self.settle(sockets);
        match self.state {
            State::Connected(id) => Ok(id),
            State::Connecting(_) => Err(Errno::Again),
            _ => Err(Errno::Notconn),
        }
    }

    /// Moves a connect under way to its outcome, if it has one.
    fn settle(&mut self, sockets: &mut Sockets) {
        if let State::Connecting(id) = self.state {
            match sockets.connected(id) {
                Ok(true) => self.state = State::Connected(id),
                Ok(false) => {}
                // The id is closed with the failure.
                Err(e) => self.state = State::Failed(abi::errno_of(e.code())),
            }
        }
    }

    /// Whether a `poll_oneoff` subscription for reading (or writing) is
    /// satisfied now; when it is not, a wake-up is armed on the doorbell.
    pub(crate) fn ready(&mut self, net: &mut Net, readable: bool) -> bool {
        self.settle(&mut net.sockets);
        let (id, direction) = match self.state {
            State::Listening(id) | State::Bound(id) | State::Connected(id) => (id, readable),
            // A connect rings the doorbell when it ends.
            State::Connecting(_) => return false,
            // An error, or an operation that fails at once: ready to say so.
            State::Open { .. } | State::Failed(_) => return true,
        };
        let kind = if direction {
            token::SOCKET_READABLE
        } else {
            token::SOCKET_WRITABLE
        };
        let waker = net.doorbell.waker(kind | u64::from(id));
        net.sockets
            .poll_ready(id, direction, &waker)
            .unwrap_or(true)
    }

    /// `fd_fdstat_get`'s file type: `SOCKET_STREAM` or `SOCKET_DGRAM`.
    pub(crate) fn filetype(&self) -> u8 {
        use wasmtime_wasi::p1::types::Filetype;
        if self.datagram {
            Filetype::SocketDgram as u8
        } else {
            Filetype::SocketStream as u8
        }
    }

    /// Whether this is a datagram (UDP) socket.
    pub(crate) fn is_datagram(&self) -> bool {
        self.datagram
    }

    /// The host socket of a datagram socket, made (on an ephemeral port)
    /// if it has none yet.
    fn datagram_socket(&mut self, net: &mut Net) -> Result<SocketId, Errno> {
        match self.state {
            State::Bound(id) | State::Connected(id) => Ok(id),
            State::Open { .. } => {
                let id = net.sockets.udp_open(self.v6).map_err(|e| net.errno(e))?;
                self.state = State::Bound(id);
                Ok(id)
            }
            _ => Err(Errno::Inval),
        }
    }
}

/// The tenant's network as its WASI imports see it.
pub(crate) struct Net {
    pub(crate) sockets: Sockets,
    pub(crate) doorbell: Arc<Doorbell>,
    /// How to word a denial for the tenant's owner.
    pub(crate) advice: SharedAdvice,
    /// The denials already logged.
    pub(crate) warned: std::collections::HashSet<String>,
    /// The supervisor's request to drain.
    pub(crate) drain: DrainSignal,
}

/// How a guest that drained ends: stopped accepting, and its last
/// connection closed. [`crate::run`] reports it as [`crate::Ending::Drained`].
#[derive(Debug)]
pub struct Drained;

impl std::fmt::Display for Drained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("drained: stopped accepting and finished its connections")
    }
}

impl std::error::Error for Drained {}

/// The most distinct denials logged for one tenant.
const MAX_WARNINGS: usize = 32;

impl Net {
    /// The errno for `e`; a denial or a cap reached is also logged with
    /// how to change it, since an errno cannot carry that.
    ///
    /// Each message is logged once per tenant (and at most
    /// [`MAX_WARNINGS`] in all), so a guest retrying a denied address in a
    /// loop cannot flood the host's log.
    pub(crate) fn errno(&mut self, e: NetError) -> Errno {
        if matches!(e, NetError::Denied { .. } | NetError::TooManySockets { .. }) {
            let message = e.advised(&*self.advice);
            if self.warned.len() < MAX_WARNINGS && self.warned.insert(message.clone()) {
                tracing::warn!("{message}");
            }
        }
        abi::errno_of(e.code())
    }

    /// Waits until something the guest waits for may have happened, or
    /// the host asks the guest to drain; fails with [`Drained`] (which
    /// ends the guest) once it has drained.
    pub(crate) async fn wait(&mut self) -> wasmtime::Result<()> {
        if self.drain.draining() {
            self.doorbell.rung().await;
        } else {
            tokio::select! {
                () = self.doorbell.rung() => {}
                () = self.drain.requested() => {}
            }
        }
        self.check_drained()
    }

    /// Whether the host asked the guest to drain. Its listeners are then
    /// stopped (their ports closed; accepting waits for the end).
    pub(crate) fn draining(&mut self) -> bool {
        if !self.drain.draining() {
            return false;
        }
        self.sockets.stop_listening();
        true
    }

    /// Fails with [`Drained`] when the guest was asked to drain and holds
    /// no connection any more.
    pub(crate) fn check_drained(&mut self) -> wasmtime::Result<()> {
        if self.draining() && self.sockets.open_connections() == 0 {
            return Err(Drained.into());
        }
        Ok(())
    }

    /// Closes host socket `id`.
    pub(crate) fn close(&mut self, socket: &SocketFd) {
        if let Some(id) = socket.id() {
            let _ = self.sockets.close(id);
        }
    }
}

/// `sock_open`: a new socket descriptor.
pub(crate) fn open(fds: &mut FdTable, family: i32, socktype: i32) -> Result<u32, Errno> {
    let v6 = match u16::try_from(family) {
        Ok(AF_INET) => false,
        Ok(AF_INET6) => true,
        _ => return Err(Errno::Afnosupport),
    };
    let datagram = match socktype {
        SOCK_ANY | SOCK_STREAM => false,
        SOCK_DGRAM => true,
        _ => return Err(Errno::Inval),
    };
    fds.insert(Target::Socket(SocketFd {
        v6,
        datagram,
        nonblocking: false,
        state: State::Open { bound: None },
    }))
}

/// Reads the address at `ptr` (a WasmEdge buffer descriptor) with `port`.
pub(crate) fn read_address(
    mem: &[u8],
    import: &str,
    ptr: i32,
    port: u32,
) -> wasmtime::Result<Result<SocketAddr, Errno>> {
    let buf = abi::read_u32(mem, import, ptr)? as i32;
    let len = abi::read_u32(mem, import, ptr.wrapping_add(4))?;
    let Ok(port) = u16::try_from(port) else {
        return Ok(Err(Errno::Inval));
    };
    let raw = abi::bytes(mem, import, buf, len.min(128))?;
    let ip: IpAddr = match raw.len() {
        4 => <[u8; 4]>::try_from(raw).map(Ipv4Addr::from)?.into(),
        16 => <[u8; 16]>::try_from(raw).map(Ipv6Addr::from)?.into(),
        n if n >= 18 => match u16::from_le_bytes([raw[0], raw[1]]) {
            AF_INET => <[u8; 4]>::try_from(&raw[2..6]).map(Ipv4Addr::from)?.into(),
            AF_INET6 => <[u8; 16]>::try_from(&raw[2..18])
                .map(Ipv6Addr::from)?
                .into(),
            _ => return Ok(Err(Errno::Afnosupport)),
        },
        _ => return Ok(Err(Errno::Inval)),
    };
    Ok(Ok(SocketAddr::new(ip, port)))
}

/// Writes `addr` to the WasmEdge buffer descriptor at `ptr` and its port to
/// `port_ptr`.
pub(crate) fn write_address(
    mem: &mut [u8],
    import: &str,
    ptr: i32,
    port_ptr: i32,
    addr: SocketAddr,
) -> wasmtime::Result<Result<(), Errno>> {
    let buf = abi::read_u32(mem, import, ptr)? as i32;
    let len = abi::read_u32(mem, import, ptr.wrapping_add(4))?;
    let (family, octets): (u16, Vec<u8>) = match addr.ip() {
        IpAddr::V4(ip) => (AF_INET, ip.octets().to_vec()),
        IpAddr::V6(ip) => (AF_INET6, ip.octets().to_vec()),
    };
    if len as usize >= 2 + octets.len() && len >= 18 {
        let out = abi::bytes_mut(mem, import, buf, 2 + octets.len() as u32)?;
        out[..2].copy_from_slice(&family.to_le_bytes());
        out[2..].copy_from_slice(&octets);
    } else if len as usize == octets.len() {
        abi::bytes_mut(mem, import, buf, len)?.copy_from_slice(&octets);
    } else {
        return Ok(Err(Errno::Inval));
    }
    abi::write_u32(mem, import, port_ptr, u32::from(addr.port()))?;
    Ok(Ok(()))
}

fn network(v6: bool) -> &'static str {
    if v6 { "tcp6" } else { "tcp4" }
}

/// `sock_bind`: records the address `sock_listen` will listen on, or binds
/// a datagram socket there (if the policy grants listening on it).
pub(crate) fn bind(
    fds: &mut FdTable,
    net: &mut Net,
    fd: i32,
    addr: SocketAddr,
) -> Result<(), Errno> {
    let socket = fds.socket(fd)?;
    if socket.v6 != addr.is_ipv6() {
        return Err(Errno::Afnosupport);
    }
    if socket.datagram {
        if !matches!(socket.state, State::Open { .. }) {
            return Err(Errno::Inval);
        }
        let id = net.sockets.udp_bind(addr).map_err(|e| net.errno(e))?;
        socket.state = State::Bound(id);
        return Ok(());
    }
    match &mut socket.state {
        State::Open { bound } if bound.is_none() => {
            *bound = Some(addr);
            Ok(())
        }
        _ => Err(Errno::Inval),
    }
}

/// `sock_listen`: listens on the bound address, if the policy grants it.
pub(crate) fn listen(fds: &mut FdTable, net: &mut Net, fd: i32) -> Result<(), Errno> {
    let socket = fds.socket(fd)?;
    if socket.datagram {
        return Err(Errno::Notsup);
    }
    let addr = match socket.state {
        State::Open { bound } => bound.unwrap_or_else(|| {
            let any: IpAddr = if socket.v6 {
                Ipv6Addr::UNSPECIFIED.into()
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            };
            SocketAddr::new(any, 0)
        }),
        State::Listening(_) => return Ok(()),
        _ => return Err(Errno::Inval),
    };
    let id = net
        .sockets
        .listen(network(socket.v6), &addr.to_string())
        .map_err(|e| net.errno(e))?;
    socket.state = State::Listening(id);
    Ok(())
}

/// `sock_connect`: connects to `addr` if the policy grants it; on a
/// non-blocking socket, returns `EINPROGRESS` and lets `SO_ERROR` tell how
/// it ended.
pub(crate) async fn connect(
    fds: &mut FdTable,
    net: &mut Net,
    fd: i32,
    addr: SocketAddr,
) -> wasmtime::Result<Result<(), Errno>> {
    let socket = match fds.socket(fd) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if socket.v6 != addr.is_ipv6() {
        return Ok(Err(Errno::Afnosupport));
    }
    if socket.datagram {
        // A datagram socket's peer: set at once.
        let id = match socket.datagram_socket(net) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = net.sockets.udp_connect(id, addr) {
            return Ok(Err(net.errno(e)));
        }
        socket.state = State::Connected(id);
        return Ok(Ok(()));
    }
    match socket.state {
        State::Open { .. } => {}
        State::Connecting(_) => return Ok(Err(Errno::Already)),
        State::Connected(_) => return Ok(Err(Errno::Isconn)),
        _ => return Ok(Err(Errno::Inval)),
    }
    let id = match net.sockets.dial(network(socket.v6), &addr.to_string()) {
        Ok(id) => id,
        Err(e) => return Ok(Err(net.errno(e))),
    };
    socket.state = State::Connecting(id);
    if socket.nonblocking {
        return Ok(Err(Errno::Inprogress));
    }
    loop {
        net.doorbell.clear();
        socket.settle(&mut net.sockets);
        match socket.state {
            State::Connected(_) => return Ok(Ok(())),
            State::Failed(e) => {
                socket.state = State::Open { bound: None };
                return Ok(Err(e));
            }
            _ => net.wait().await?,
        }
    }
}

/// `sock_accept`: the next connection on a listener, as a new descriptor
/// with `flags` (`fdflags`; only `NONBLOCK` means something). While the
/// guest drains, no connection comes: a non-blocking accept says
/// `EAGAIN`, a blocking one waits for the end.
pub(crate) async fn accept(
    fds: &mut FdTable,
    net: &mut Net,
    fd: i32,
    flags: u16,
) -> wasmtime::Result<Result<u32, Errno>> {
    let socket = match fds.socket(fd) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let State::Listening(id) = socket.state else {
        return Ok(Err(Errno::Inval));
    };
    let (v6, nonblocking) = (socket.v6, socket.nonblocking);
    if let Err(e) = fds.room_for_socket() {
        return Ok(Err(e));
    }
    let conn = loop {
        net.doorbell.clear();
        net.sockets.begin_turn();
        let accepted = if net.draining() {
            net.check_drained()?;
            Ok(None)
        } else {
            net.sockets.accept(id)
        };
        match accepted {
            Ok(Some(conn)) => break conn,
            Ok(None) if nonblocking => return Ok(Err(Errno::Again)),
            Ok(None) => net.wait().await?,
            Err(e) => return Ok(Err(net.errno(e))),
        }
    };
    let accepted = SocketFd {
        v6,
        datagram: false,
        nonblocking: flags & FDFLAGS_NONBLOCK != 0,
        state: State::Connected(conn),
    };
    Ok(fds.insert(Target::Socket(accepted)).inspect_err(|_| {
        let _ = net.sockets.close(conn);
    }))
}

/// Reads into the first non-empty buffer of `iovs` (as wasmtime-wasi does
/// for files): how many bytes, 0 at the end of the stream.
pub(crate) async fn recv(
    fds: &mut FdTable,
    net: &mut Net,
    mem: &mut [u8],
    import: &str,
    fd: i32,
    iovs: &[(i32, u32)],
) -> wasmtime::Result<Result<u32, Errno>> {
    let socket = match fds.socket(fd) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if socket.datagram {
        return Ok(recv_datagram(socket, net, mem, import, iovs)
            .await?
            .map(|(n, _)| n));
    }
    let Some(&(buf, len)) = iovs.iter().find(|(_, len)| *len > 0) else {
        return Ok(Ok(0));
    };
    stream_io(socket, net, |sockets, id| {
        sockets.begin_turn();
        let out = abi::bytes_mut(mem, import, buf, len)?;
        Ok(sockets.read(id, out))
    })
    .await
}

/// Runs `op` (a read or a write) on the stream `socket` until it has a
/// result: a blocking socket waits on the tenant's doorbell (while its
/// connect is under way, too), a non-blocking one says `EAGAIN`.
async fn stream_io(
    socket: &mut SocketFd,
    net: &mut Net,
    mut op: impl FnMut(&mut Sockets, SocketId) -> wasmtime::Result<Result<Option<usize>, NetError>>,
) -> wasmtime::Result<Result<u32, Errno>> {
    loop {
        net.doorbell.clear();
        let id = match socket.connection(&mut net.sockets) {
            Ok(id) => id,
            Err(Errno::Again) if !socket.nonblocking => {
                net.wait().await?;
                continue;
            }
            Err(e) => return Ok(Err(e)),
        };
        match op(&mut net.sockets, id)? {
            Ok(Some(n)) => return Ok(Ok(n as u32)),
            Ok(None) if socket.nonblocking => return Ok(Err(Errno::Again)),
            Ok(None) => net.wait().await?,
            Err(e) => return Ok(Err(net.errno(e))),
        }
    }
}

/// Writes from the first non-empty buffer of `iovs`: how many bytes.
pub(crate) async fn send(
    fds: &mut FdTable,
    net: &mut Net,
    mem: &[u8],
    import: &str,
    fd: i32,
    iovs: &[(i32, u32)],
) -> wasmtime::Result<Result<u32, Errno>> {
    let socket = match fds.socket(fd) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if socket.datagram {
        if !matches!(socket.state, State::Connected(_)) {
            return Ok(Err(Errno::Destaddrreq));
        }
        return send_datagram(socket, net, mem, import, iovs, None).await;
    }
    let Some(&(buf, len)) = iovs.iter().find(|(_, len)| *len > 0) else {
        return Ok(Ok(0));
    };
    stream_io(socket, net, |sockets, id| {
        Ok(sockets.write(id, abi::bytes(mem, import, buf, len)?))
    })
    .await
}

/// `sock_shutdown`: `how` is preview 1's `sdflags` (1 read, 2 write).
pub(crate) fn shutdown(fds: &mut FdTable, net: &mut Net, fd: i32, how: i32) -> Result<(), Errno> {
    let how = match how {
        1 => std::net::Shutdown::Read,
        2 => std::net::Shutdown::Write,
        3 => std::net::Shutdown::Both,
        _ => return Err(Errno::Inval),
    };
    let id = fds.socket(fd)?.connection(&mut net.sockets)?;
    net.sockets.shutdown(id, how).map_err(|e| net.errno(e))
}

/// `sock_getsockopt` at `SOL_SOCKET`: the value, as an `i32`.
pub(crate) fn getsockopt(
    fds: &mut FdTable,
    net: &mut Net,
    fd: i32,
    level: i32,
    name: i32,
) -> Result<i32, Errno> {
    let socket = fds.socket(fd)?;
    if level != SOL_SOCKET {
        return Err(Errno::Noprotoopt);
    }
    match name {
        SO_TYPE if socket.datagram => Ok(SOCK_DGRAM),
        SO_TYPE => Ok(SOCK_STREAM),
        // Listeners reuse addresses, as Go's own do.
        SO_REUSEADDR => Ok(1),
        SO_KEEPALIVE => Ok(0),
        SO_ERROR => {
            socket.settle(&mut net.sockets);
            Ok(match socket.state {
                State::Connecting(_) => Errno::Inprogress as i32,
                State::Failed(e) => {
                    socket.state = State::Open { bound: None };
                    e as i32
                }
                _ => 0,
            })
        }
        _ => Err(Errno::Noprotoopt),
    }
}

/// `sock_setsockopt` at `SOL_SOCKET`: the options a TCP program sets
/// before it listens or connects are accepted (`SO_REUSEADDR` is what
/// listeners do anyway; `SO_KEEPALIVE` is left to the host's defaults).
pub(crate) fn setsockopt(fds: &mut FdTable, fd: i32, level: i32, name: i32) -> Result<(), Errno> {
    fds.socket(fd)?;
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR | SO_KEEPALIVE) => Ok(()),
        _ => Err(Errno::Noprotoopt),
    }
}

/// The local (or peer) address of socket `fd`, as the guest sees it.
pub(crate) fn address(
    fds: &mut FdTable,
    net: &mut Net,
    fd: i32,
    peer: bool,
) -> Result<SocketAddr, Errno> {
    let socket = fds.socket(fd)?;
    if peer {
        let id = socket
            .connection(&mut net.sockets)
            .map_err(|_| Errno::Notconn)?;
        return net.sockets.peer_addr(id).map_err(|e| net.errno(e));
    }
    socket.settle(&mut net.sockets);
    match socket.state {
        State::Listening(id) | State::Bound(id) | State::Connected(id) => {
            net.sockets.local_addr(id).map_err(|e| net.errno(e))
        }
        State::Open { bound: Some(addr) } => Ok(addr),
        _ => {
            let any: IpAddr = if socket.v6 {
                Ipv6Addr::UNSPECIFIED.into()
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            };
            Ok(SocketAddr::new(any, 0))
        }
    }
}

/// The largest datagram a guest may send or receive at once.
const MAX_DATAGRAM: usize = 65536;

/// Receives one datagram, scattered over `iovs`: its size (cut to the
/// buffers) and source.
pub(crate) async fn recv_datagram(
    socket: &mut SocketFd,
    net: &mut Net,
    mem: &mut [u8],
    import: &str,
    iovs: &[(i32, u32)],
) -> wasmtime::Result<Result<(u32, SocketAddr), Errno>> {
    let id = match socket.state {
        State::Bound(id) | State::Connected(id) => id,
        _ => return Ok(Err(Errno::Notconn)),
    };
    let room: usize = iovs.iter().map(|(_, len)| *len as usize).sum();
    let mut scratch = vec![0u8; room.min(MAX_DATAGRAM)];
    let (n, from) = loop {
        net.doorbell.clear();
        match net.sockets.recv_from(id, &mut scratch) {
            Ok(Some(got)) => break got,
            Ok(None) if socket.nonblocking => return Ok(Err(Errno::Again)),
            Ok(None) => net.wait().await?,
            Err(e) => return Ok(Err(net.errno(e))),
        }
    };
    let mut rest = &scratch[..n];
    for &(buf, len) in iovs {
        if rest.is_empty() {
            break;
        }
        let take = rest.len().min(len as usize);
        abi::bytes_mut(mem, import, buf, take as u32)?.copy_from_slice(&rest[..take]);
        rest = &rest[take..];
    }
    Ok(Ok((n as u32, from)))
}

/// Sends the buffers of `iovs` as one datagram to `dest` (or the peer):
/// how many bytes. `EMSGSIZE` past the largest datagram.
pub(crate) async fn send_datagram(
    socket: &mut SocketFd,
    net: &mut Net,
    mem: &[u8],
    import: &str,
    iovs: &[(i32, u32)],
    dest: Option<SocketAddr>,
) -> wasmtime::Result<Result<u32, Errno>> {
    if let Some(dest) = dest
        && socket.v6 != dest.is_ipv6()
    {
        return Ok(Err(Errno::Afnosupport));
    }
    let total: usize = iovs.iter().map(|(_, len)| *len as usize).sum();
    if total > MAX_DATAGRAM {
        return Ok(Err(Errno::Msgsize));
    }
    let mut datagram = Vec::with_capacity(total);
    for &(buf, len) in iovs {
        datagram.extend_from_slice(abi::bytes(mem, import, buf, len)?);
    }
    let id = match socket.datagram_socket(net) {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    loop {
        net.doorbell.clear();
        match net.sockets.send_to(id, &datagram, dest) {
            Ok(Some(n)) => return Ok(Ok(n as u32)),
            Ok(None) if socket.nonblocking => return Ok(Err(Errno::Again)),
            Ok(None) => net.wait().await?,
            Err(e) => return Ok(Err(net.errno(e))),
        }
    }
}

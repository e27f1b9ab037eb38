//! Datagram (UDP) sockets of an instance, under the same policy, cap and
//! doorbell as its streams.
//!
//! The policy reads as for TCP: binding an address is listening on it (a
//! listen grant, and the listen mapping); sending to an address is
//! connecting to it (a connect grant, checked for every destination). A
//! socket the guest did not bind under a listen grant — one bound to an
//! ephemeral port so that it can send — receives only from addresses it may
//! send to: datagrams from anyone else are dropped, so a socket opened to
//! ask one granted server cannot be used to listen to the world.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdp};
use std::task::{Context, Poll};

use tokio::net::UdpSocket;

use super::{Socket, SocketId, Sockets};
use crate::NetError;
use crate::address::Endpoint;
use crate::doorbell::token;

/// A datagram socket.
pub(super) struct Datagram {
    pub(super) socket: UdpSocket,
    /// Bound under a listen grant: it receives from anyone. Otherwise only
    /// from the addresses the connect policy grants.
    open_to_all: bool,
}

/// Datagrams dropped in one call (from sources the socket may not hear)
/// before the call yields, so a flood of them cannot hold the guest.
const DROPS_PER_CALL: usize = 64;

impl Sockets {
    fn datagram(&self, id: SocketId) -> Result<&Datagram, NetError> {
        match &self.entry(id)?.socket {
            Socket::Datagram(d) => Ok(d),
            other => Err(other.wrong_kind(id)),
        }
    }

    fn insert_datagram(&mut self, socket: StdUdp, open_to_all: bool) -> Result<SocketId, NetError> {
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        self.insert(Socket::Datagram(Datagram {
            socket,
            open_to_all,
        }))
    }

    /// A datagram socket bound to `addr`, if the policy grants listening
    /// there (bound on the mapped host address when the listen map says
    /// so; the guest sees its own).
    pub fn udp_bind(&mut self, addr: SocketAddr) -> Result<SocketId, NetError> {
        let mapped = self.policy.listen_target(&Endpoint::from(addr))?;
        self.check_room()?;
        let socket = StdUdp::bind(mapped.unwrap_or(addr))?;
        let id = self.insert_datagram(socket, true)?;
        if mapped.is_some()
            && let Some(entry) = self.sockets.get_mut(id as usize)
        {
            entry.guest_local = Some(addr);
        }
        Ok(id)
    }

    /// A datagram socket on an ephemeral port of the unspecified address
    /// (IPv6 when `v6`), to send from: no listen grant is needed, and it
    /// hears only from addresses it may send to.
    pub fn udp_open(&mut self, v6: bool) -> Result<SocketId, NetError> {
        self.check_room()?;
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let socket = StdUdp::bind(SocketAddr::new(any, 0))?;
        self.insert_datagram(socket, false)
    }

    /// Sets the peer of datagram socket `id`, if the policy grants sending
    /// to it: sends without an address go there, and only its datagrams
    /// arrive.
    pub fn udp_connect(&mut self, id: SocketId, peer: SocketAddr) -> Result<(), NetError> {
        self.check_connect(&Endpoint::from(peer))?;
        let d = self.datagram(id)?;
        socket2::SockRef::from(&d.socket).connect(&peer.into())?;
        Ok(())
    }

    /// Sends `buf` as one datagram to `dest` (or to the socket's peer):
    /// how much was sent, or `None` when the send buffer is full (then
    /// [`token::SOCKET_WRITABLE`] rings with `id` when it may have room).
    pub fn send_to(
        &mut self,
        id: SocketId,
        buf: &[u8],
        dest: Option<SocketAddr>,
    ) -> Result<Option<usize>, NetError> {
        if let Some(dest) = dest {
            self.check_connect(&Endpoint::from(dest))?;
        }
        let waker = self.doorbell.waker(token::SOCKET_WRITABLE | u64::from(id));
        let d = self.datagram(id)?;
        for _ in 0..super::READY_RETRIES {
            let sent = match dest {
                Some(dest) => d.socket.try_send_to(buf, dest),
                None => d.socket.try_send(buf),
            };
            match sent {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            match d.socket.poll_send_ready(&mut Context::from_waker(&waker)) {
                Poll::Pending => return Ok(None),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e.into()),
            }
        }
        waker.wake();
        Ok(None)
    }

    /// Receives one datagram into `buf` (cut to its length): its size and
    /// source, or `None` when none is there (then
    /// [`token::SOCKET_READABLE`] rings with `id` when one may be).
    pub fn recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<Option<(usize, SocketAddr)>, NetError> {
        let token = token::SOCKET_READABLE | u64::from(id);
        let waker = self.doorbell.waker(token);
        let d = match &self.entry(id)?.socket {
            Socket::Datagram(d) => d,
            other => return Err(other.wrong_kind(id)),
        };
        let mut retries = 0;
        for _ in 0..DROPS_PER_CALL {
            match d.socket.try_recv_from(buf) {
                Ok((n, from)) => {
                    if d.open_to_all || self.check_connect(&Endpoint::from(from)).is_ok() {
                        return Ok(Some((n, from)));
                    }
                    tracing::trace!(id, %from, "datagram from an address the socket may not hear: dropped");
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            match d.socket.poll_recv_ready(&mut Context::from_waker(&waker)) {
                Poll::Pending => return Ok(None),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e.into()),
            }
            retries += 1;
            if retries >= super::READY_RETRIES {
                break;
            }
        }
        // Many dropped (or a stale readiness): look again next time.
        self.doorbell.ring(token);
        Ok(None)
    }
}

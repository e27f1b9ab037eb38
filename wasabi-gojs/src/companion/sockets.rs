//! The sockets' imports: TCP listeners and connections under the tenant's
//! network policy and socket cap (`wasabi_net::Sockets`).
//!
//! | import | result |
//! |---|---|
//! | `sock_listen(network, network_len, address, address_len) -> i32` | the listener's id |
//! | `sock_accept(listener) -> i32` | a connection's id, or [`AGAIN`] (`SOCKET_READABLE` rings with the listener's id) |
//! | `sock_dial(network, network_len, address, address_len) -> i32` | the connection's id; `SOCKET_WRITABLE` rings with it when the dial has finished |
//! | `sock_connected(id) -> i32` | 0 once connected, [`AGAIN`] while dialling; a failed dial fails once and its id is closed |
//! | `sock_read(id, buf, cap) -> i32` | bytes read into `buf`, 0 at the end of the stream, or [`AGAIN`] (`SOCKET_READABLE` rings) |
//! | `sock_write(id, buf, len) -> i32` | bytes written from `buf` (maybe fewer), or [`AGAIN`] (`SOCKET_WRITABLE` rings) |
//! | `sock_close_write(id) -> i32` | 0; the peer reads the end of the stream |
//! | `sock_close(id) -> i32` | 0; drops its waits, cancels its dial |
//! | `sock_addr(id, peer, buf, cap) -> i32` | the length of the local (`peer` 0) or remote address, `ip:port`, written at `buf` if it fits |
//!
//! Networks are `tcp`, `tcp4` and `tcp6`; addresses `host:port` as Go's
//! `net.Dial` takes them. A failure returns `-(ERRNO_BASE + errno)`, with
//! `errno` as Linux (and so Go's `syscall` on js/wasm) numbers it —
//! `ECONNREFUSED`, `EACCES` for what the policy denies, `EMFILE` at the
//! socket cap — and `last_error` has the message, which for a denial says
//! how to grant it.

use wasmtime::{Caller, Linker};

use wasabi_net::{NetError, SocketId};

use super::{AGAIN, MAX_TRANSFER, MODULE, addr, with_host};
use crate::GoView;
use crate::calling::HostError;
use crate::guest_memory::GuestMemory;
use crate::host::GoHost;

/// A failed socket call returns `-(ERRNO_BASE + errno)`.
pub const ERRNO_BASE: i32 = 256;

/// The longest network name or address a call takes, in bytes: longer is
/// no address (a DNS name is at most 253).
const MAX_ADDRESS: u64 = 1024;

/// The result of a failed call, keeping its message (with the embedder's
/// advice) for `last_error`.
fn failure(host: &mut GoHost, e: &NetError) -> i32 {
    host.network.last_error = Some(host.js.network_message(e));
    -(ERRNO_BASE + wasabi_net::errno_number(e.code()))
}

/// The result of a socket call: its value, [`AGAIN`], or its failure.
fn result(host: &mut GoHost, r: Result<Option<i32>, NetError>) -> i32 {
    match r {
        Ok(Some(v)) => v,
        Ok(None) => AGAIN,
        Err(e) => failure(host, &e),
    }
}

/// A string argument: the guest's bytes at `ptr`, which must be UTF-8 and
/// short. Outside linear memory it traps, as every bad address does.
fn text(mem: &GuestMemory<'_>, ptr: i32, len: i32) -> Result<Result<String, NetError>, HostError> {
    let len = addr(len);
    if len > MAX_ADDRESS {
        return Ok(Err(NetError::BadAddress {
            address: format!("({len} bytes)"),
            reason: "longer than any address",
        }));
    }
    let bytes = mem.slice(addr(ptr), len)?;
    Ok(
        String::from_utf8(bytes.to_vec()).map_err(|_| NetError::BadAddress {
            address: String::from_utf8_lossy(bytes).into_owned(),
            reason: "it is not UTF-8",
        }),
    )
}

/// Socket ids come as `i32`; a negative one names no socket.
fn id(v: i32) -> SocketId {
    v as u32
}

/// A count of bytes as a result (at most [`MAX_TRANSFER`], so it fits).
fn count(n: usize) -> i32 {
    n as i32
}

/// Defines the sockets' imports on `linker`.
pub(crate) fn add_to_linker<T: GoView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    for (name, dial) in [("sock_listen", false), ("sock_dial", true)] {
        linker.func_wrap(
            MODULE,
            name,
            move |mut caller: Caller<'_, T>,
                  network: i32,
                  network_len: i32,
                  address: i32,
                  address_len: i32|
                  -> wasmtime::Result<i32> {
                let import = if dial {
                    "wasabi.sock_dial"
                } else {
                    "wasabi.sock_listen"
                };
                with_host(&mut caller, import, |host, mem| {
                    let (n, a) = (
                        text(mem, network, network_len)?,
                        text(mem, address, address_len)?,
                    );
                    let opened = n.and_then(|n| {
                        let a = a?;
                        let sockets = &mut host.network.sockets;
                        if dial {
                            sockets.dial(&n, &a)
                        } else {
                            sockets.listen(&n, &a)
                        }
                    });
                    Ok(result(host, opened.map(|id| Some(id as i32))))
                })
            },
        )?;
    }
    linker.func_wrap(
        MODULE,
        "sock_accept",
        |mut caller: Caller<'_, T>, listener: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.sock_accept", |host, _| {
                let accepted = host.network.sockets.accept(id(listener));
                Ok(result(host, accepted.map(|c| c.map(|c| c as i32))))
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "sock_connected",
        |mut caller: Caller<'_, T>, conn: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.sock_connected", |host, _| {
                let connected = host.network.sockets.connected(id(conn));
                Ok(result(host, connected.map(|done| done.then_some(0))))
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "sock_read",
        |mut caller: Caller<'_, T>, conn: i32, buf: i32, cap: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.sock_read", |host, mem| {
                let dst = mem.slice_mut(addr(buf), addr(cap).min(MAX_TRANSFER))?;
                let read = host.network.sockets.read(id(conn), dst);
                Ok(result(host, read.map(|n| n.map(count))))
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "sock_write",
        |mut caller: Caller<'_, T>, conn: i32, buf: i32, len: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.sock_write", |host, mem| {
                let src = mem.slice(addr(buf), addr(len).min(MAX_TRANSFER))?;
                let written = host.network.sockets.write(id(conn), src);
                Ok(result(host, written.map(|n| n.map(count))))
            })
        },
    )?;
    for (name, whole) in [("sock_close", true), ("sock_close_write", false)] {
        linker.func_wrap(
            MODULE,
            name,
            move |mut caller: Caller<'_, T>, socket: i32| -> wasmtime::Result<i32> {
                let import = if whole {
                    "wasabi.sock_close"
                } else {
                    "wasabi.sock_close_write"
                };
                with_host(&mut caller, import, |host, _| {
                    let sockets = &mut host.network.sockets;
                    let closed = if whole {
                        sockets.close(id(socket))
                    } else {
                        sockets.shutdown(id(socket), std::net::Shutdown::Write)
                    };
                    Ok(result(host, closed.map(|()| Some(0))))
                })
            },
        )?;
    }
    linker.func_wrap(
        MODULE,
        "sock_addr",
        |mut caller: Caller<'_, T>,
         socket: i32,
         peer: i32,
         buf: i32,
         cap: i32|
         -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.sock_addr", |host, mem| {
                let sockets = &host.network.sockets;
                let found = if peer != 0 {
                    sockets.peer_addr(id(socket))
                } else {
                    sockets.local_addr(id(socket))
                };
                match found {
                    Ok(a) => {
                        let text = a.to_string();
                        if text.len() as u64 <= addr(cap) {
                            mem.write(addr(buf), text.as_bytes())?;
                        }
                        Ok(text.len() as i32)
                    }
                    Err(e) => Ok(failure(host, &e)),
                }
            })
        },
    )?;
    Ok(())
}

/// What a failed call's result says, for tests: the errno.
#[cfg(test)]
pub(crate) fn errno_of(result: i32) -> Option<i32> {
    (result <= -ERRNO_BASE).then_some(-result - ERRNO_BASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_their_errno_past_every_other_result() {
        let refused = NetError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let mut host = crate::GoHostBuilder::new().build().unwrap();
        let r = failure(&mut host, &refused);
        assert_eq!(errno_of(r), Some(111));
        assert!(r < super::super::FAILED, "below every other result code");
        assert_eq!(
            host.network.last_error.as_deref(),
            Some("connection refused")
        );
        assert_eq!(errno_of(AGAIN), None);
    }

    #[test]
    fn addresses_must_be_short_utf8_and_inside_memory() {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"tcp\xff");
        let mem = GuestMemory::new(&mut bytes);
        assert_eq!(text(&mem, 0, 3).unwrap().unwrap(), "tcp");
        let not_utf8 = text(&mem, 0, 4).unwrap().unwrap_err();
        assert!(not_utf8.to_string().contains("UTF-8"));
        assert!(text(&mem, 60, 8).is_err(), "outside memory: a trap");
        assert!(text(&mem, 0, -1).unwrap().is_err(), "4 GiB: no address");
        assert!(text(&mem, 0, 2048).unwrap().is_err());
    }
}

//! The WasmEdge socket extension's imports (module `wasi_snapshot_preview1`),
//! with WasmEdge's signatures as Go's wasip1 networking libraries call
//! them. The socket semantics are [`crate::socket`]'s.

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::types::Errno;

use crate::shadow::{errno, import};
use crate::{WasiHost, abi, socket};

/// Defines the extension's imports on `linker`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    project: fn(&mut T) -> &mut WasiHost,
) -> wasmtime::Result<()> {
    import!(
        linker,
        project,
        "sock_open",
        |host, mem, family: i32, socktype: i32, out: i32| {
            abi::bytes(mem, "sock_open", out, 4)?;
            match socket::open(&mut host.fds, family, socktype) {
                Ok(fd) => abi::write_u32(mem, "sock_open", out, fd).map(|()| 0),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "sock_bind",
        |host, mem, fd: i32, addr: i32, port: i32| {
            match socket::read_address(mem, "sock_bind", addr, port as u32)? {
                Ok(addr) => Ok(errno(socket::bind(&mut host.fds, &mut host.net, fd, addr))),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "sock_listen",
        |host, _mem, fd: i32, _backlog: i32| {
            Ok(errno(socket::listen(&mut host.fds, &mut host.net, fd)))
        }
    );
    import!(
        linker,
        project,
        "sock_connect",
        |host, mem, fd: i32, addr: i32, port: i32| {
            match socket::read_address(mem, "sock_connect", addr, port as u32)? {
                Ok(addr) => Ok(errno(
                    socket::connect(&mut host.fds, &mut host.net, fd, addr).await,
                )),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "sock_getsockopt",
        |host, mem, fd: i32, level: i32, name: i32, value: i32, len: i32| {
            abi::bytes(mem, "sock_getsockopt", value, len as u32)?;
            if len < 4 {
                return Ok(Errno::Inval as i32);
            }
            match socket::getsockopt(&mut host.fds, &mut host.net, fd, level, name) {
                Ok(v) => abi::write_u32(mem, "sock_getsockopt", value, v as u32).map(|()| 0),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "sock_setsockopt",
        |host, mem, fd: i32, level: i32, name: i32, value: i32, len: i32| {
            abi::bytes(mem, "sock_setsockopt", value, len as u32)?;
            Ok(errno(socket::setsockopt(&mut host.fds, fd, level, name)))
        }
    );
    for (name, peer) in [("sock_getlocaladdr", false), ("sock_getpeeraddr", true)] {
        import!(
            linker,
            project,
            name,
            |host, mem, fd: i32, addr: i32, port: i32| {
                match socket::address(&mut host.fds, &mut host.net, fd, peer) {
                    Ok(a) => Ok(errno(socket::write_address(mem, name, addr, port, a)?)),
                    Err(e) => Ok(e as i32),
                }
            }
        );
    }
    import!(
        linker,
        project,
        "sock_recv_from",
        |host,
         mem,
         fd: i32,
         iovs: i32,
         n: i32,
         addr: i32,
         flags: i32,
         port: i32,
         nread: i32,
         oflags: i32| {
            const NAME: &str = "sock_recv_from";
            let iovs = match abi::iovecs(mem, NAME, iovs, n)? {
                Ok(iovs) => iovs,
                Err(e) => return Ok(e as i32),
            };
            abi::bytes(mem, NAME, nread, 4)?;
            abi::bytes(mem, NAME, oflags, 2)?;
            if flags != 0 {
                return Ok(Errno::Notsup as i32);
            }
            let socket = match host.fds.socket(fd) {
                Ok(s) if s.is_datagram() => s,
                Ok(_) => return Ok(Errno::Notsup as i32),
                Err(e) => return Ok(e as i32),
            };
            match socket::recv_datagram(socket, &mut host.net, mem, NAME, &iovs).await? {
                Ok((count, from)) => {
                    if let Err(e) = socket::write_address(mem, NAME, addr, port, from)? {
                        return Ok(e as i32);
                    }
                    abi::write_u32(mem, NAME, nread, count)?;
                    abi::write_u16(mem, NAME, oflags, 0)?;
                    Ok(0)
                }
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "sock_send_to",
        |host, mem, fd: i32, iovs: i32, n: i32, addr: i32, port: i32, flags: i32, nwritten: i32| {
            const NAME: &str = "sock_send_to";
            let iovs = match abi::iovecs(mem, NAME, iovs, n)? {
                Ok(iovs) => iovs,
                Err(e) => return Ok(e as i32),
            };
            abi::bytes(mem, NAME, nwritten, 4)?;
            if flags != 0 {
                return Ok(Errno::Notsup as i32);
            }
            let dest = match socket::read_address(mem, NAME, addr, port as u32)? {
                Ok(dest) => dest,
                Err(e) => return Ok(e as i32),
            };
            let socket = match host.fds.socket(fd) {
                Ok(s) if s.is_datagram() => s,
                Ok(_) => return Ok(Errno::Notsup as i32),
                Err(e) => return Ok(e as i32),
            };
            match socket::send_datagram(socket, &mut host.net, mem, NAME, &iovs, Some(dest)).await?
            {
                Ok(count) => abi::write_u32(mem, NAME, nwritten, count).map(|()| 0),
                Err(e) => Ok(e as i32),
            }
        }
    );
    Ok(())
}

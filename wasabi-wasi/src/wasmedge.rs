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
                    socket::connect(&mut host.fds, &mut host.net, fd, addr).await?,
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
    import!(
        linker,
        project,
        "sock_getaddrinfo",
        |host,
         mem,
         node: i32,
         node_len: i32,
         service: i32,
         service_len: i32,
         hints: i32,
         res: i32,
         max: i32,
         res_len: i32| {
            getaddrinfo(
                host,
                mem,
                [
                    node,
                    node_len,
                    service,
                    service_len,
                    hints,
                    res,
                    max,
                    res_len,
                ],
            )
            .await
        }
    );
    Ok(())
}

/// WasmEdge's `addrinfo` (28 bytes) and `sockaddr` (12) layouts.
const AI_FAMILY: i32 = 2;
const AI_SOCKTYPE: i32 = 3;
const AI_PROTOCOL: i32 = 4;
const AI_ADDR: i32 = 12;
const AI_NEXT: i32 = 24;
const AI_PASSIVE: u16 = 1;
const SA_DATA_LEN: i32 = 4;
const SA_DATA: i32 = 8;

/// A string argument, up to its first NUL (WasmEdge's callers terminate
/// them).
fn text(mem: &[u8], ptr: i32, len: i32) -> wasmtime::Result<Option<String>> {
    let raw = abi::bytes(mem, "sock_getaddrinfo", ptr, len as u32)?;
    let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
    Ok(std::str::from_utf8(raw)
        .ok()
        .filter(|t| t.len() <= 253)
        .map(str::to_string))
}

/// `sock_getaddrinfo(node, node_len, service, service_len, hints, res,
/// max, res_len)`: fills the guest's chain of `addrinfo` records (the
/// first at `*res`, each linked by `ai_next`) with up to `max` addresses
/// of `node`, resolved under the connect policy
/// ([`wasabi_net::Sockets::resolve`]).
async fn getaddrinfo(host: &mut WasiHost, mem: &mut [u8], args: [i32; 8]) -> wasmtime::Result<i32> {
    const NAME: &str = "sock_getaddrinfo";
    let [
        node,
        node_len,
        service,
        service_len,
        hints,
        res,
        max,
        res_len,
    ] = args;
    let (Some(node), Some(service)) =
        (text(mem, node, node_len)?, text(mem, service, service_len)?)
    else {
        return Ok(Errno::Inval as i32);
    };
    let hint = abi::bytes(mem, NAME, hints, 8)?;
    let (flags, family, socktype) = (u16::from_le_bytes([hint[0], hint[1]]), hint[2], hint[3]);
    let port: u16 = match service.as_str() {
        "" => 0,
        "http" => 80,
        "https" => 443,
        p => match p.parse() {
            Ok(p) => p,
            Err(_) => return Ok(Errno::Inval as i32),
        },
    };
    let (want_v4, want_v6) = match family {
        0 => (true, true),
        1 => (true, false),
        2 => (false, true),
        _ => return Ok(Errno::Afnosupport as i32),
    };
    let found = if node.is_empty() {
        let ip: std::net::IpAddr = match (flags & AI_PASSIVE != 0, want_v4) {
            (true, true) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            (true, false) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            (false, true) => std::net::Ipv4Addr::LOCALHOST.into(),
            (false, false) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        vec![std::net::SocketAddr::new(ip, port)]
    } else {
        match host
            .net
            .sockets
            .resolve(&node, port, want_v4, want_v6)
            .await
        {
            Ok(found) => found,
            Err(e @ wasabi_net::NetError::Denied { .. }) => return Ok(host.net.errno(e) as i32),
            Err(_) => return Ok(Errno::Noent as i32),
        }
    };
    let socktype = if socktype == 0 { 2 } else { socktype };
    let protocol: u32 = if socktype == 1 { 2 } else { 1 };
    let mut entry = abi::read_u32(mem, NAME, res)? as i32;
    let mut written = 0u32;
    for addr in found.iter().take(max.max(0) as usize) {
        if entry == 0 {
            break;
        }
        let record = abi::bytes_mut(mem, NAME, entry, 28)?;
        record[AI_FAMILY as usize] = if addr.is_ipv4() { 1 } else { 2 };
        record[AI_SOCKTYPE as usize] = socktype;
        record[AI_PROTOCOL as usize..AI_PROTOCOL as usize + 4]
            .copy_from_slice(&protocol.to_le_bytes());
        let sockaddr = abi::read_u32(mem, NAME, entry.wrapping_add(AI_ADDR))? as i32;
        abi::write_u32(mem, NAME, sockaddr, if addr.is_ipv4() { 1 } else { 2 })?;
        let data_len = abi::read_u32(mem, NAME, sockaddr.wrapping_add(SA_DATA_LEN))?;
        let data = abi::read_u32(mem, NAME, sockaddr.wrapping_add(SA_DATA))? as i32;
        let octets = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
            std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        if (data_len as usize) < 2 + octets.len() {
            return Ok(Errno::Inval as i32);
        }
        let out = abi::bytes_mut(mem, NAME, data, 2 + octets.len() as u32)?;
        out[..2].copy_from_slice(&addr.port().to_be_bytes());
        out[2..].copy_from_slice(&octets);
        written += 1;
        entry = abi::read_u32(mem, NAME, entry.wrapping_add(AI_NEXT))? as i32;
    }
    abi::write_u32(mem, NAME, res_len, written)?;
    Ok(0)
}

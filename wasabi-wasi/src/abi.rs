//! Reading and writing the guest's linear memory for the imports this
//! crate defines itself, and errno numbering.
//!
//! A pointer or length outside the guest's memory traps, as the preview-1
//! rules ask ("if an out-of-bounds pointer is passed to a function and the
//! function needs to dereference it, the function shall trap") and as
//! wasmtime-wasi does for the imports it defines.

use wasmtime::{Caller, Extern, Memory};
use wasmtime_wasi::p1::types::Errno;

/// The most buffers one read or write call may name (Linux's `IOV_MAX`).
pub(crate) const MAX_IOVECS: u32 = 1024;

/// The guest's exported memory.
pub(crate) fn memory<T>(caller: &mut Caller<'_, T>, import: &str) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg(format!(
            "{import}: the module exports no memory"
        ))),
    }
}

/// The trap for a pointer outside memory.
pub(crate) fn out_of_bounds(import: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "{import}: a pointer or length lies outside the guest's memory"
    ))
}

/// `len` bytes at `ptr`.
pub(crate) fn bytes<'m>(
    mem: &'m [u8],
    import: &str,
    ptr: i32,
    len: u32,
) -> wasmtime::Result<&'m [u8]> {
    let start = ptr as u32 as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| mem.get(start..end))
        .ok_or_else(|| out_of_bounds(import))
}

/// `len` bytes at `ptr`, to write.
pub(crate) fn bytes_mut<'m>(
    mem: &'m mut [u8],
    import: &str,
    ptr: i32,
    len: u32,
) -> wasmtime::Result<&'m mut [u8]> {
    let start = ptr as u32 as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| mem.get_mut(start..end))
        .ok_or_else(|| out_of_bounds(import))
}

/// The little-endian `u32` at `ptr`.
pub(crate) fn read_u32(mem: &[u8], import: &str, ptr: i32) -> wasmtime::Result<u32> {
    let b = bytes(mem, import, ptr, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes `value` at `ptr`, little-endian.
pub(crate) fn write_u32(
    mem: &mut [u8],
    import: &str,
    ptr: i32,
    value: u32,
) -> wasmtime::Result<()> {
    bytes_mut(mem, import, ptr, 4)?.copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// Writes `value` at `ptr`, little-endian.
pub(crate) fn write_u16(
    mem: &mut [u8],
    import: &str,
    ptr: i32,
    value: u16,
) -> wasmtime::Result<()> {
    bytes_mut(mem, import, ptr, 2)?.copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// The buffers (`iovec`/`ciovec`: pointer and length, 8 bytes each) of
/// the `count` at `ptr`, each checked to lie inside memory. `EINVAL` for
/// more than [`MAX_IOVECS`].
pub(crate) fn iovecs(
    mem: &[u8],
    import: &str,
    ptr: i32,
    count: i32,
) -> wasmtime::Result<Result<Vec<(i32, u32)>, Errno>> {
    let count = count as u32;
    if count > MAX_IOVECS {
        return Ok(Err(Errno::Inval));
    }
    let raw = bytes(mem, import, ptr, count * 8)?;
    let mut out = Vec::with_capacity(count as usize);
    for iov in raw.chunks_exact(8) {
        let buf = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        bytes(mem, import, buf, len)?;
        out.push((buf, len));
    }
    Ok(Ok(out))
}

/// The preview-1 errno for a POSIX error name (`ECONNREFUSED`), as
/// [`wasabi_net::NetError::code`] gives them. `EIO` for one it does not
/// know.
pub(crate) fn errno_of(code: &str) -> Errno {
    match code {
        "EACCES" => Errno::Acces,
        "EMFILE" => Errno::Mfile,
        "EINVAL" => Errno::Inval,
        "EAFNOSUPPORT" => Errno::Afnosupport,
        "EADDRNOTAVAIL" => Errno::Addrnotavail,
        "EADDRINUSE" => Errno::Addrinuse,
        "EBADF" => Errno::Badf,
        "EPROTO" => Errno::Proto,
        "ECONNREFUSED" => Errno::Connrefused,
        "ECONNRESET" => Errno::Connreset,
        "ECONNABORTED" => Errno::Connaborted,
        "EPIPE" => Errno::Pipe,
        "ENOTCONN" => Errno::Notconn,
        "ETIMEDOUT" => Errno::Timedout,
        "EHOSTUNREACH" => Errno::Hostunreach,
        "ENETUNREACH" => Errno::Netunreach,
        "ENETDOWN" => Errno::Netdown,
        "EINTR" => Errno::Intr,
        _ => Errno::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_outside_memory_trap_and_too_many_are_refused() {
        let mut mem = vec![0u8; 64];
        mem[0..8].copy_from_slice(&[16, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(iovecs(&mem, "t", 0, 1).unwrap(), Ok(vec![(16, 8)]));
        mem[4..8].copy_from_slice(&[100, 0, 0, 0]);
        assert!(iovecs(&mem, "t", 0, 1).is_err());
        assert!(iovecs(&mem, "t", 60, 1).is_err());
        assert!(iovecs(&mem, "t", -1, 1).is_err());
        assert_eq!(iovecs(&mem, "t", 0, -1).unwrap(), Err(Errno::Inval));
        assert!(read_u32(&mem, "t", 62).is_err());
        assert_eq!(errno_of("ECONNREFUSED"), Errno::Connrefused);
    }
}

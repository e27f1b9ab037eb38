//! The preview-1 imports that take or return a descriptor, defined over
//! wasmtime-wasi's: each turns the guest's number into wasmtime-wasi's (or
//! serves a socket itself) and calls wasmtime-wasi's own ABI glue
//! (`wasi_snapshot_preview1::<name>`, the code its linker runs), so file
//! semantics stay exactly wasmtime-wasi's. See [`crate::fds`] for why the
//! numbers are Wasabi's.

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::types::Errno;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as glue;
use wiggle::GuestMemory;

use crate::fds::Target;
use crate::socket::{self, FDFLAGS_NONBLOCK};
use crate::{WasiHost, abi, poll};

/// Defines import `$name` of `wasi_snapshot_preview1` on `$linker`, whose
/// body sees the guest's memory as `$mem` and the guest's world as
/// `$host`, and returns the errno (or a trap).
macro_rules! import {
    ($linker:ident, $project:ident, $name:expr, |$host:ident, $mem:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        $linker.func_wrap_async(
            "wasi_snapshot_preview1",
            $name,
            move |mut caller: Caller<'_, T>, ($($arg,)*): ($($ty,)*)| {
                Box::new(async move {
                    let memory = abi::memory(&mut caller, $name)?;
                    // What wasmtime-wasi may copy out of the guest in the
                    // call, as its own linker sets it before every call.
                    let fuel = wasmtime::AsContextMut::as_context_mut(&mut caller).hostcall_fuel();
                    let (bytes, data) = memory.data_and_store_mut(&mut caller);
                    let $host: &mut WasiHost = $project(data);
                    wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1::set_hostcall_fuel(&mut $host.p1, fuel);
                    let $mem: &mut [u8] = bytes;
                    let result: wasmtime::Result<i32> = $body;
                    result
                })
            },
        )?
    };
}

pub(crate) use import;

/// An import whose first argument is a descriptor and that has no meaning
/// for a socket (`$on_socket` is its errno there): wasmtime-wasi's, under
/// wasmtime-wasi's number.
macro_rules! file_import {
    ($linker:ident, $project:ident, $kind:ident $name:ident, $on_socket:expr, ($($arg:ident : $ty:ty),*) $(, builtin: |$b:ident, $m:ident| $bexpr:expr)?) => {
        import!($linker, $project, stringify!($name), |host, mem, fd: i32 $(, $arg: $ty)*| {
            $(
                if let Some($b) = host.fds.builtin(fd) {
                    let $m: &mut [u8] = &mut *mem;
                    return $bexpr;
                }
            )?
            match host.fds.wasi(fd, $on_socket) {
                Ok(fd) => file_import!(@call $kind, glue::$name(&mut host.p1, &mut GuestMemory::Unshared(mem), fd $(, $arg)*)),
                Err(e) => Ok(e as i32),
            }
        })
    };
    (@call async, $call:expr) => { $call.await };
    (@call sync, $call:expr) => { $call };
}

/// Defines every descriptor-taking import of `wasi_snapshot_preview1` on
/// `linker`, over the definitions wasmtime-wasi put there.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    project: fn(&mut T) -> &mut WasiHost,
) -> wasmtime::Result<()> {
    use Errno::{Badf, Inval, Notdir, Notsup, Spipe};

    file_import!(linker, project, async fd_advise, Spipe, (offset: i64, len: i64, advice: i32));
    file_import!(linker, project, sync fd_allocate, Spipe, (offset: i64, len: i64));
    file_import!(linker, project, async fd_datasync, Inval, ());
    file_import!(linker, project, sync fd_fdstat_set_rights, Notsup, (base: i64, inheriting: i64));
    file_import!(linker, project, async fd_filestat_set_size, Inval, (size: i64));
    file_import!(linker, project, async fd_filestat_set_times, Inval, (atim: i64, mtim: i64, flags: i32));
    import!(
        linker,
        project,
        "fd_pread",
        |host, mem, fd: i32, iovs: i32, n: i32, offset: i64, out: i32| {
            if let Some(b) = host.fds.builtin(fd) {
                let iovs = match abi::iovecs(mem, "fd_pread", iovs, n)? {
                    Ok(iovs) => iovs,
                    Err(e) => return Ok(e as i32),
                };
                return match b.read(mem, "fd_pread", &iovs, Some(offset as u64))? {
                    Ok(count) => abi::write_u32(mem, "fd_pread", out, count).map(|()| 0),
                    Err(e) => Ok(e as i32),
                };
            }
            match host.fds.wasi(fd, Spipe) {
                Ok(fd) => {
                    let clamp = Clamp::first_iovec(mem, iovs, n);
                    let result = glue::fd_pread(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        fd,
                        iovs,
                        n,
                        offset,
                        out,
                    )
                    .await;
                    clamp.restore(mem);
                    result
                }
                Err(e) => Ok(e as i32),
            }
        }
    );
    file_import!(linker, project, sync fd_prestat_get, Badf, (out: i32), builtin: |b, m| b.prestat(m, out));
    file_import!(linker, project, sync fd_prestat_dir_name, Badf, (path: i32, len: i32), builtin: |b, m| b.prestat_dir_name(m, path, len));
    file_import!(linker, project, async fd_pwrite, Spipe, (iovs: i32, n: i32, offset: i64, out: i32), builtin: |b, m| {
        let _ = offset;
        match abi::iovecs(m, "fd_pwrite", iovs, n)?.and_then(|iovs| b.write(&iovs)) {
            Ok(count) => abi::write_u32(m, "fd_pwrite", out, count).map(|()| 0),
            Err(e) => Ok(e as i32),
        }
    });
    file_import!(linker, project, async fd_readdir, Notdir, (buf: i32, len: i32, cookie: i64, out: i32), builtin: |b, m| {
        match b.readdir(m, buf, len, cookie as u64)? {
            Ok(used) => abi::write_u32(m, "fd_readdir", out, used).map(|()| 0),
            Err(e) => Ok(e as i32),
        }
    });
    file_import!(linker, project, async fd_seek, Spipe, (offset: i64, whence: i32, out: i32), builtin: |b, m| {
        match b.seek(offset, whence) {
            Ok(to) => {
                abi::bytes_mut(m, "fd_seek", out, 8)?.copy_from_slice(&to.to_le_bytes());
                Ok(0)
            }
            Err(e) => Ok(e as i32),
        }
    });
    file_import!(linker, project, async fd_sync, Inval, ());
    file_import!(linker, project, sync fd_tell, Spipe, (out: i32), builtin: |b, m| {
        match b.seek(0, 1) {
            Ok(at) => {
                abi::bytes_mut(m, "fd_tell", out, 8)?.copy_from_slice(&at.to_le_bytes());
                Ok(0)
            }
            Err(e) => Ok(e as i32),
        }
    });
    file_import!(linker, project, async path_create_directory, Notdir, (path: i32, len: i32));
    file_import!(linker, project, async path_filestat_get, Notdir, (flags: i32, path: i32, len: i32, out: i32), builtin: |b, m| {
        let _ = flags;
        let name = String::from_utf8_lossy(abi::bytes(m, "path_filestat_get", path, len as u32)?).into_owned();
        b.path_filestat(&name, m, out)
    });
    file_import!(linker, project, async path_filestat_set_times, Notdir, (flags: i32, path: i32, len: i32, atim: i64, mtim: i64, fst: i32));
    file_import!(linker, project, async path_readlink, Notdir, (path: i32, len: i32, buf: i32, buf_len: i32, out: i32));
    file_import!(linker, project, async path_remove_directory, Notdir, (path: i32, len: i32));
    file_import!(linker, project, async path_unlink_file, Notdir, (path: i32, len: i32));

    import!(
        linker,
        project,
        "path_link",
        |host,
         mem,
         old_fd: i32,
         flags: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32| {
            match (host.fds.wasi(old_fd, Notdir), host.fds.wasi(new_fd, Notdir)) {
                (Ok(old_fd), Ok(new_fd)) => {
                    glue::path_link(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        old_fd,
                        flags,
                        old,
                        old_len,
                        new_fd,
                        new,
                        new_len,
                    )
                    .await
                }
                (Err(e), _) | (_, Err(e)) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "path_rename",
        |host, mem, old_fd: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32| {
            match (host.fds.wasi(old_fd, Notdir), host.fds.wasi(new_fd, Notdir)) {
                (Ok(old_fd), Ok(new_fd)) => {
                    glue::path_rename(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        old_fd,
                        old,
                        old_len,
                        new_fd,
                        new,
                        new_len,
                    )
                    .await
                }
                (Err(e), _) | (_, Err(e)) => Ok(e as i32),
            }
        }
    );
    // One rule of the sandbox wasmtime-wasi does not keep: it refuses to
    // follow a link out of a preopen, but lets a guest plant one (a link
    // whose target climbs above its mount). The host, or anything else
    // that walks the directory, would follow it; Go js guests are refused
    // such links, and so are WASI guests.
    import!(
        linker,
        project,
        "path_symlink",
        |host, mem, target: i32, target_len: i32, dirfd: i32, link: i32, link_len: i32| {
            let text = |mem: &[u8], ptr: i32, len: i32| {
                abi::bytes(mem, "path_symlink", ptr, len as u32)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            if crate::climbs_out(&text(mem, target, target_len)?, &text(mem, link, link_len)?) {
                return Ok(Errno::Perm as i32);
            }
            match host.fds.wasi(dirfd, Notdir) {
                Ok(dirfd) => {
                    glue::path_symlink(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        target,
                        target_len,
                        dirfd,
                        link,
                        link_len,
                    )
                    .await
                }
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "path_open",
        |host,
         mem,
         dirfd: i32,
         dirflags: i32,
         path: i32,
         len: i32,
         oflags: i32,
         base: i64,
         inheriting: i64,
         fdflags: i32,
         out: i32| {
            if let Some(dir) = host.fds.builtin(dirfd) {
                let name = String::from_utf8_lossy(abi::bytes(mem, "path_open", path, len as u32)?)
                    .into_owned();
                abi::bytes(mem, "path_open", out, 4)?;
                let opened = match dir
                    .open(&name, oflags)
                    .and_then(|b| host.fds.room_for_file().map(|()| b))
                {
                    Ok(b) => b,
                    Err(e) => return Ok(e as i32),
                };
                return match host.fds.insert(Target::Builtin(opened)) {
                    Ok(fd) => abi::write_u32(mem, "path_open", out, fd).map(|()| 0),
                    Err(e) => Ok(e as i32),
                };
            }
            // The open-files cap, as POSIX reports it: EMFILE.
            let inner = match host
                .fds
                .wasi(dirfd, Notdir)
                .and_then(|fd| host.fds.room_for_file().map(|()| fd))
            {
                Ok(fd) => fd,
                Err(e) => return Ok(e as i32),
            };
            let errno = glue::path_open(
                &mut host.p1,
                &mut GuestMemory::Unshared(mem),
                inner,
                dirflags,
                path,
                len,
                oflags,
                base,
                inheriting,
                fdflags,
                out,
            )
            .await?;
            if errno != 0 {
                return Ok(errno);
            }
            let opened = abi::read_u32(mem, "path_open", out)?;
            match host.fds.insert(Target::Wasi(opened)) {
                Ok(fd) => abi::write_u32(mem, "path_open", out, fd).map(|()| 0),
                Err(e) => {
                    glue::fd_close(&mut host.p1, &mut GuestMemory::Unshared(mem), opened as i32)
                        .await?;
                    Ok(e as i32)
                }
            }
        }
    );
    import!(linker, project, "fd_close", |host, mem, fd: i32| {
        match host.fds.get(fd) {
            Ok(Target::Wasi(inner)) => {
                let inner = *inner as i32;
                let errno =
                    glue::fd_close(&mut host.p1, &mut GuestMemory::Unshared(mem), inner).await?;
                if errno == 0 {
                    host.fds.remove(fd).ok();
                }
                Ok(errno)
            }
            Ok(Target::Socket(_)) => {
                if let Ok(Target::Socket(s)) = host.fds.remove(fd) {
                    host.net.close(&s);
                }
                Ok(0)
            }
            Ok(Target::Builtin(_)) => Ok(errno(host.fds.remove(fd).map(drop))),
            Err(e) => Ok(e as i32),
        }
    });
    import!(
        linker,
        project,
        "fd_renumber",
        |host, mem, from: i32, to: i32| {
            let (inner_from, inner_to) = match (host.fds.get(from), host.fds.get(to)) {
                (Ok(f), Ok(t)) => (inner(f), inner(t)),
                (Err(e), _) | (_, Err(e)) => return Ok(e as i32),
            };
            if from == to {
                return Ok(0);
            }
            let mut guest = GuestMemory::Unshared(mem);
            if let (Some(f), Some(t)) = (inner_from, inner_to) {
                // Two files: wasmtime-wasi moves its own descriptor, which
                // then has `to`'s number on both sides.
                let errno = glue::fd_renumber(&mut host.p1, &mut guest, f, t).await?;
                if errno == 0 {
                    host.fds.remove(from).ok();
                }
                return Ok(errno);
            }
            // A socket on either side: close what `to` was, then move.
            match inner_to {
                Some(t) => {
                    let errno = glue::fd_close(&mut host.p1, &mut guest, t).await?;
                    if errno != 0 {
                        return Ok(errno);
                    }
                    host.fds.remove(to).ok();
                }
                None => {
                    if let Ok(Target::Socket(s)) = host.fds.remove(to) {
                        host.net.close(&s);
                    }
                }
            }
            match host.fds.remove(from) {
                Ok(target) => Ok(host.fds.put(to, target).map_or_else(|e| e as i32, |()| 0)),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "fd_read",
        |host, mem, fd: i32, iovs: i32, n: i32, out: i32| {
            match host.fds.get(fd) {
                Ok(Target::Wasi(inner)) => {
                    let inner = *inner as i32;
                    let clamp = Clamp::first_iovec(mem, iovs, n);
                    let result = glue::fd_read(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        inner,
                        iovs,
                        n,
                        out,
                    )
                    .await;
                    clamp.restore(mem);
                    result
                }
                Ok(Target::Socket(_)) => {
                    recv(host, mem, "fd_read", fd, iovs, n, 0, out, None).await
                }
                Ok(Target::Builtin(_)) => {
                    let iovs = match abi::iovecs(mem, "fd_read", iovs, n)? {
                        Ok(iovs) => iovs,
                        Err(e) => return Ok(e as i32),
                    };
                    let Some(b) = host.fds.builtin(fd) else {
                        return Ok(Badf as i32);
                    };
                    match b.read(mem, "fd_read", &iovs, None)? {
                        Ok(count) => abi::write_u32(mem, "fd_read", out, count).map(|()| 0),
                        Err(e) => Ok(e as i32),
                    }
                }
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "fd_write",
        |host, mem, fd: i32, iovs: i32, n: i32, out: i32| {
            match host.fds.get(fd) {
                Ok(Target::Wasi(inner)) => {
                    let inner = *inner as i32;
                    glue::fd_write(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        inner,
                        iovs,
                        n,
                        out,
                    )
                    .await
                }
                Ok(Target::Socket(_)) => send(host, mem, "fd_write", fd, iovs, n, 0, out).await,
                Ok(Target::Builtin(b)) => {
                    match abi::iovecs(mem, "fd_write", iovs, n)?.and_then(|iovs| b.write(&iovs)) {
                        Ok(count) => abi::write_u32(mem, "fd_write", out, count).map(|()| 0),
                        Err(e) => Ok(e as i32),
                    }
                }
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "fd_fdstat_get",
        |host, mem, fd: i32, out: i32| {
            match host.fds.get(fd) {
                Ok(Target::Wasi(inner)) => {
                    let inner = *inner as i32;
                    glue::fd_fdstat_get(&mut host.p1, &mut GuestMemory::Unshared(mem), inner, out)
                        .await
                }
                Ok(Target::Socket(s)) => {
                    use wasmtime_wasi::p1::types::Rights;
                    let rights = Rights::FD_READ
                        | Rights::FD_WRITE
                        | Rights::FD_FDSTAT_SET_FLAGS
                        | Rights::POLL_FD_READWRITE
                        | Rights::SOCK_SHUTDOWN
                        | Rights::SOCK_ACCEPT;
                    let flags = if s.nonblocking { FDFLAGS_NONBLOCK } else { 0 };
                    let stat = abi::bytes_mut(mem, "fd_fdstat_get", out, 24)?;
                    stat.fill(0);
                    stat[0] = s.filetype();
                    stat[2..4].copy_from_slice(&flags.to_le_bytes());
                    stat[8..16].copy_from_slice(&rights.bits().to_le_bytes());
                    Ok(0)
                }
                Ok(Target::Builtin(b)) => b.fdstat(mem, out),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "fd_fdstat_set_flags",
        |host, mem, fd: i32, flags: i32| {
            match host.fds.get(fd) {
                Ok(Target::Wasi(inner)) => {
                    let inner = *inner as i32;
                    glue::fd_fdstat_set_flags(
                        &mut host.p1,
                        &mut GuestMemory::Unshared(mem),
                        inner,
                        flags,
                    )
                }
                Ok(Target::Socket(_)) => {
                    if let Ok(s) = host.fds.socket(fd) {
                        s.nonblocking = flags as u16 & FDFLAGS_NONBLOCK != 0;
                    }
                    Ok(0)
                }
                // Made-up files never block.
                Ok(Target::Builtin(_)) => Ok(0),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "fd_filestat_get",
        |host, mem, fd: i32, out: i32| {
            match host.fds.get(fd) {
                Ok(Target::Wasi(inner)) => {
                    let inner = *inner as i32;
                    glue::fd_filestat_get(&mut host.p1, &mut GuestMemory::Unshared(mem), inner, out)
                        .await
                }
                Ok(Target::Socket(s)) => {
                    let filetype = s.filetype();
                    let stat = abi::bytes_mut(mem, "fd_filestat_get", out, 64)?;
                    stat.fill(0);
                    stat[16] = filetype;
                    Ok(0)
                }
                Ok(Target::Builtin(b)) => b.filestat(mem, out),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "poll_oneoff",
        |host, mem, subs: i32, events: i32, n: i32, out: i32| {
            poll::poll_oneoff(host, mem, subs, events, n, out).await
        }
    );

    // Preview 1's own socket calls.
    import!(
        linker,
        project,
        "sock_accept",
        |host, mem, fd: i32, flags: i32, out: i32| {
            abi::bytes(mem, "sock_accept", out, 4)?;
            match socket::accept(&mut host.fds, &mut host.net, fd, flags as u16).await? {
                Ok(conn) => abi::write_u32(mem, "sock_accept", out, conn).map(|()| 0),
                Err(e) => Ok(e as i32),
            }
        }
    );
    import!(
        linker,
        project,
        "sock_recv",
        |host, mem, fd: i32, iovs: i32, n: i32, flags: i32, out: i32, out_flags: i32| {
            recv(
                host,
                mem,
                "sock_recv",
                fd,
                iovs,
                n,
                flags,
                out,
                Some(out_flags),
            )
            .await
        }
    );
    import!(
        linker,
        project,
        "sock_send",
        |host, mem, fd: i32, iovs: i32, n: i32, flags: i32, out: i32| {
            send(host, mem, "sock_send", fd, iovs, n, flags, out).await
        }
    );
    import!(
        linker,
        project,
        "sock_shutdown",
        |host, _mem, fd: i32, how: i32| {
            Ok(errno(socket::shutdown(
                &mut host.fds,
                &mut host.net,
                fd,
                how,
            )))
        }
    );
    Ok(())
}

/// wasmtime-wasi's number for a target that is a file.
fn inner(target: &Target) -> Option<i32> {
    match target {
        Target::Wasi(fd) => Some(*fd as i32),
        Target::Socket(_) | Target::Builtin(_) => None,
    }
}

/// 0 for success, else the errno.
pub(crate) fn errno(result: Result<(), Errno>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => e as i32,
    }
}

/// A read from socket `fd` into `iovs`: the count at `out`, and (for
/// `sock_recv`) no flags at `out_flags`. `flags` (peek, wait-all) are not
/// supported.
#[allow(clippy::too_many_arguments)]
async fn recv(
    host: &mut WasiHost,
    mem: &mut [u8],
    import: &str,
    fd: i32,
    iovs: i32,
    n: i32,
    flags: i32,
    out: i32,
    out_flags: Option<i32>,
) -> wasmtime::Result<i32> {
    let iovs = match abi::iovecs(mem, import, iovs, n)? {
        Ok(iovs) => iovs,
        Err(e) => return Ok(e as i32),
    };
    abi::bytes(mem, import, out, 4)?;
    if let Some(p) = out_flags {
        abi::bytes(mem, import, p, 2)?;
    }
    if flags != 0 {
        return Ok(Errno::Notsup as i32);
    }
    match socket::recv(&mut host.fds, &mut host.net, mem, import, fd, &iovs).await? {
        Ok(count) => {
            abi::write_u32(mem, import, out, count)?;
            if let Some(p) = out_flags {
                abi::write_u16(mem, import, p, 0)?;
            }
            Ok(0)
        }
        Err(e) => Ok(e as i32),
    }
}

/// A write to socket `fd` from `iovs`: the count at `out`.
#[allow(clippy::too_many_arguments)]
async fn send(
    host: &mut WasiHost,
    mem: &mut [u8],
    import: &str,
    fd: i32,
    iovs: i32,
    n: i32,
    flags: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let iovs = match abi::iovecs(mem, import, iovs, n)? {
        Ok(iovs) => iovs,
        Err(e) => return Ok(e as i32),
    };
    abi::bytes(mem, import, out, 4)?;
    if flags != 0 {
        return Ok(Errno::Notsup as i32);
    }
    match socket::send(&mut host.fds, &mut host.net, mem, import, fd, &iovs).await? {
        Ok(count) => abi::write_u32(mem, import, out, count).map(|()| 0),
        Err(e) => Ok(e as i32),
    }
}

/// The most bytes one read asks wasmtime-wasi for. It reads a file into a
/// host buffer as large as the guest's buffer before copying it over, so
/// without a bound a guest could make the host allocate as much as its
/// whole memory, outside every limit, in one call. A read of less than was
/// asked is a short read, which POSIX and preview 1 allow.
const MAX_READ: u32 = 1 << 20;

/// A guest `iovec` whose length is lowered to [`MAX_READ`] for one call,
/// and put back after it (the guest does not run in between; preview-1
/// memories are not shared).
struct Clamp(Option<(i32, u32)>);

impl Clamp {
    /// Lowers the first non-empty buffer of the `n` at `iovs` (the one
    /// wasmtime-wasi reads into), when it is larger than [`MAX_READ`].
    /// Buffers outside memory are left for wasmtime-wasi to trap on.
    fn first_iovec(mem: &mut [u8], iovs: i32, n: i32) -> Clamp {
        for i in 0..(n as u32).min(abi::MAX_IOVECS) {
            let at = iovs.wrapping_add((i * 8 + 4) as i32);
            let Ok(len) = abi::read_u32(mem, "fd_read", at) else {
                break;
            };
            if len == 0 {
                continue;
            }
            if len > MAX_READ && abi::write_u32(mem, "fd_read", at, MAX_READ).is_ok() {
                return Clamp(Some((at, len)));
            }
            break;
        }
        Clamp(None)
    }

    fn restore(self, mem: &mut [u8]) {
        if let Some((at, len)) = self.0 {
            let _ = abi::write_u32(mem, "fd_read", at, len);
        }
    }
}

//! The files every guest sees unless a mount covers them — `/dev/null` and
//! `/etc/hosts`, as js guests see them (`wasabi_fs`'s builtins) — for WASI
//! guests, whose directories are otherwise only real host directories.
//!
//! Each lives in a small read-only directory the host makes up, preopened
//! after the mounts (`/dev` holding only `null`, `/etc` holding only
//! `hosts`) when no mount covers the file: a mount at `/`, at the
//! directory or at the file itself takes its place, as for js guests. Only
//! when asked ([`crate::WasiWorld::builtins`]): `go test -exec`.
//! Nothing of the host is behind them: `null` reads empty and swallows
//! writes; `hosts` reads as [`wasabi_fs::ETC_HOSTS`].

use wasmtime_wasi::p1::types::{Errno, Filetype, Rights};

use crate::abi;

/// A made-up directory and the one file in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    /// `/dev/null`.
    Null,
    /// `/etc/hosts`.
    Hosts,
}

impl Builtin {
    /// Both, each with its full path.
    pub(crate) const ALL: [(Builtin, &'static str); 2] =
        [(Builtin::Null, "/dev/null"), (Builtin::Hosts, "/etc/hosts")];

    /// The directory's guest path.
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Builtin::Null => "/dev",
            Builtin::Hosts => "/etc",
        }
    }

    /// The file's name in it.
    fn name(self) -> &'static str {
        match self {
            Builtin::Null => "null",
            Builtin::Hosts => "hosts",
        }
    }

    fn content(self) -> &'static [u8] {
        match self {
            Builtin::Null => b"",
            Builtin::Hosts => wasabi_fs::ETC_HOSTS,
        }
    }

    fn filetype(self) -> Filetype {
        match self {
            Builtin::Null => Filetype::CharacterDevice,
            Builtin::Hosts => Filetype::RegularFile,
        }
    }

    /// Whether a mount at guest path `mount` covers this file.
    pub(crate) fn covered_by(self, mount: &str) -> bool {
        let file = match self {
            Builtin::Null => "/dev/null",
            Builtin::Hosts => "/etc/hosts",
        };
        let mount = mount.trim_end_matches('/');
        mount.is_empty() || file == mount || file.starts_with(&format!("{mount}/"))
    }
}

/// A descriptor of a made-up directory or file.
#[derive(Debug)]
pub(crate) enum BuiltinFd {
    /// The directory; `preopen` for the one given at start.
    Dir { of: Builtin, preopen: bool },
    /// The file, with its read offset.
    File { of: Builtin, offset: u64 },
}

const FILESTAT: u32 = 64;

/// Writes a `filestat` for `filetype` and `size` at `out`.
fn write_filestat(
    mem: &mut [u8],
    import: &str,
    out: i32,
    filetype: Filetype,
    size: u64,
) -> wasmtime::Result<i32> {
    let stat = abi::bytes_mut(mem, import, out, FILESTAT)?;
    stat.fill(0);
    stat[16] = filetype as u8;
    stat[24..32].copy_from_slice(&1u64.to_le_bytes());
    stat[32..40].copy_from_slice(&size.to_le_bytes());
    Ok(0)
}

impl BuiltinFd {
    /// `fd_prestat_get`: a directory prestat for the preopened one.
    pub(crate) fn prestat(&self, mem: &mut [u8], out: i32) -> wasmtime::Result<i32> {
        let Self::Dir { of, preopen: true } = self else {
            return Ok(Errno::Badf as i32);
        };
        let p = abi::bytes_mut(mem, "fd_prestat_get", out, 8)?;
        p.fill(0);
        p[4..8].copy_from_slice(&(of.dir().len() as u32).to_le_bytes());
        Ok(0)
    }

    /// `fd_prestat_dir_name`.
    pub(crate) fn prestat_dir_name(
        &self,
        mem: &mut [u8],
        path: i32,
        len: i32,
    ) -> wasmtime::Result<i32> {
        let Self::Dir { of, preopen: true } = self else {
            return Ok(Errno::Badf as i32);
        };
        let name = of.dir().as_bytes();
        if (len as u32 as usize) < name.len() {
            return Ok(Errno::Nametoolong as i32);
        }
        abi::bytes_mut(mem, "fd_prestat_dir_name", path, name.len() as u32)?.copy_from_slice(name);
        Ok(0)
    }

    /// `fd_fdstat_get`.
    pub(crate) fn fdstat(&self, mem: &mut [u8], out: i32) -> wasmtime::Result<i32> {
        let file_rights = Rights::FD_READ
            | Rights::FD_WRITE
            | Rights::FD_SEEK
            | Rights::FD_TELL
            | Rights::FD_FILESTAT_GET
            | Rights::POLL_FD_READWRITE;
        let (filetype, base, inheriting) = match self {
            Self::Dir { .. } => (
                Filetype::Directory,
                Rights::PATH_OPEN
                    | Rights::FD_READDIR
                    | Rights::PATH_FILESTAT_GET
                    | Rights::FD_FILESTAT_GET,
                file_rights,
            ),
            Self::File { of, .. } => (of.filetype(), file_rights, Rights::empty()),
        };
        let stat = abi::bytes_mut(mem, "fd_fdstat_get", out, 24)?;
        stat.fill(0);
        stat[0] = filetype as u8;
        stat[8..16].copy_from_slice(&base.bits().to_le_bytes());
        stat[16..24].copy_from_slice(&inheriting.bits().to_le_bytes());
        Ok(0)
    }

    /// `fd_filestat_get`.
    pub(crate) fn filestat(&self, mem: &mut [u8], out: i32) -> wasmtime::Result<i32> {
        match self {
            Self::Dir { .. } => write_filestat(mem, "fd_filestat_get", out, Filetype::Directory, 0),
            Self::File { of, .. } => write_filestat(
                mem,
                "fd_filestat_get",
                out,
                of.filetype(),
                of.content().len() as u64,
            ),
        }
    }

    /// Which of this directory's entries `path` names: `Some(None)` for the
    /// directory itself, `Some(Some(file))` for its file.
    fn lookup(&self, path: &str) -> Result<Option<Builtin>, Errno> {
        let Self::Dir { of, .. } = self else {
            return Err(Errno::Notdir);
        };
        let path = path.trim_start_matches("./").trim_end_matches('/');
        match path {
            "" | "." => Ok(None),
            p if p == of.name() => Ok(Some(*of)),
            _ => Err(Errno::Noent),
        }
    }

    /// `path_open` below this directory: the descriptor to give, or the
    /// errno. Nothing can be made here, and `hosts` cannot be truncated.
    pub(crate) fn open(&self, path: &str, oflags: i32) -> Result<BuiltinFd, Errno> {
        const CREAT: i32 = 1;
        const DIRECTORY: i32 = 2;
        const EXCL: i32 = 4;
        const TRUNC: i32 = 8;
        let found = match self.lookup(path) {
            Err(Errno::Noent) if oflags & CREAT != 0 => return Err(Errno::Acces),
            other => other?,
        };
        if oflags & (CREAT | EXCL) == CREAT | EXCL {
            return Err(Errno::Exist);
        }
        match found {
            None => match self {
                Self::Dir { of, .. } => Ok(Self::Dir {
                    of: *of,
                    preopen: false,
                }),
                Self::File { .. } => Err(Errno::Notdir),
            },
            Some(_) if oflags & DIRECTORY != 0 => Err(Errno::Notdir),
            Some(Builtin::Hosts) if oflags & TRUNC != 0 => Err(Errno::Acces),
            Some(of) => Ok(Self::File { of, offset: 0 }),
        }
    }

    /// `path_filestat_get` below this directory.
    pub(crate) fn path_filestat(
        &self,
        path: &str,
        mem: &mut [u8],
        out: i32,
    ) -> wasmtime::Result<i32> {
        const IMPORT: &str = "path_filestat_get";
        match self.lookup(path) {
            Ok(None) => write_filestat(mem, IMPORT, out, Filetype::Directory, 0),
            Ok(Some(of)) => {
                write_filestat(mem, IMPORT, out, of.filetype(), of.content().len() as u64)
            }
            Err(e) => Ok(e as i32),
        }
    }

    /// `fd_read` (or, with `at`, `fd_pread`) into `iovs`: the count.
    pub(crate) fn read(
        &mut self,
        mem: &mut [u8],
        import: &str,
        iovs: &[(i32, u32)],
        at: Option<u64>,
    ) -> wasmtime::Result<Result<u32, Errno>> {
        let Self::File { of, offset } = self else {
            return Ok(Err(Errno::Isdir));
        };
        let content = of.content();
        let mut pos = at.unwrap_or(*offset);
        let mut total = 0u32;
        for &(buf, len) in iovs {
            let start = (pos as usize).min(content.len());
            let take = (content.len() - start).min(len as usize);
            if take == 0 {
                break;
            }
            abi::bytes_mut(mem, import, buf, take as u32)?
                .copy_from_slice(&content[start..start + take]);
            pos += take as u64;
            total += take as u32;
        }
        if at.is_none() {
            *offset = pos;
        }
        Ok(Ok(total))
    }

    /// `fd_write` (or `fd_pwrite`) from `iovs`: `null` takes everything;
    /// `hosts` is read-only.
    pub(crate) fn write(&self, iovs: &[(i32, u32)]) -> Result<u32, Errno> {
        match self {
            Self::File {
                of: Builtin::Null, ..
            } => Ok(iovs
                .iter()
                .map(|(_, len)| *len)
                .fold(0u32, u32::saturating_add)),
            Self::File { .. } => Err(Errno::Badf),
            Self::Dir { .. } => Err(Errno::Isdir),
        }
    }

    /// `fd_seek`: the new offset.
    pub(crate) fn seek(&mut self, delta: i64, whence: i32) -> Result<u64, Errno> {
        let Self::File { of, offset } = self else {
            return Err(Errno::Isdir);
        };
        let base = match whence {
            0 => 0,
            1 => *offset as i64,
            2 => of.content().len() as i64,
            _ => return Err(Errno::Inval),
        };
        let to = base
            .checked_add(delta)
            .filter(|t| *t >= 0)
            .ok_or(Errno::Inval)?;
        *offset = to as u64;
        Ok(*offset)
    }

    /// `fd_readdir` of this directory from `cookie`: the bytes written.
    pub(crate) fn readdir(
        &self,
        mem: &mut [u8],
        buf: i32,
        len: i32,
        cookie: u64,
    ) -> wasmtime::Result<Result<u32, Errno>> {
        let Self::Dir { of, .. } = self else {
            return Ok(Err(Errno::Notdir));
        };
        let entries = [
            (".", Filetype::Directory),
            ("..", Filetype::Directory),
            (of.name(), of.filetype()),
        ];
        let mut out = Vec::new();
        for (i, (name, filetype)) in entries.iter().enumerate().skip(cookie as usize) {
            out.extend_from_slice(&(i as u64 + 1).to_le_bytes());
            out.extend_from_slice(&(i as u64 + 1).to_le_bytes());
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(&[*filetype as u8, 0, 0, 0]);
            out.extend_from_slice(name.as_bytes());
        }
        let n = out.len().min(len as u32 as usize);
        abi::bytes_mut(mem, "fd_readdir", buf, n as u32)?.copy_from_slice(&out[..n]);
        Ok(Ok(n as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_covers_a_builtin_at_the_root_its_directory_or_itself() {
        for mount in ["/", "/dev", "/dev/", "/dev/null"] {
            assert!(Builtin::Null.covered_by(mount), "{mount}");
        }
        for mount in ["/data", "/devices", "/dev/shm", "/etc"] {
            assert!(!Builtin::Null.covered_by(mount), "{mount}");
        }
        assert!(Builtin::Hosts.covered_by("/etc"));
    }

    #[test]
    fn nothing_can_be_made_and_hosts_is_read_only() {
        let dev = BuiltinFd::Dir {
            of: Builtin::Null,
            preopen: true,
        };
        assert!(matches!(
            dev.open("null", 0),
            Ok(BuiltinFd::File {
                of: Builtin::Null,
                ..
            })
        ));
        assert!(matches!(dev.open("./null", 0), Ok(BuiltinFd::File { .. })));
        assert_eq!(dev.open("sda", 0).err(), Some(Errno::Noent));
        assert_eq!(dev.open("x", 1).err(), Some(Errno::Acces));
        assert_eq!(dev.open("../etc/passwd", 0).err(), Some(Errno::Noent));
        assert_eq!(dev.open("null", 1 | 4).err(), Some(Errno::Exist));
        let etc = BuiltinFd::Dir {
            of: Builtin::Hosts,
            preopen: true,
        };
        assert_eq!(etc.open("hosts", 8).err(), Some(Errno::Acces));
        let hosts = etc.open("hosts", 0).unwrap();
        assert_eq!(hosts.write(&[(0, 3)]), Err(Errno::Badf));
        assert_eq!(dev.open("null", 0).unwrap().write(&[(0, 3), (9, 4)]), Ok(7));
    }
}

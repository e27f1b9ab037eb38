//! [`Sandbox`]: one tenant's view of the filesystem — its mounts, its
//! working directory and its open files — and every operation the guest's
//! `fs` object offers.
//!
//! # How paths stay inside
//!
//! A guest path is made absolute and folded lexically
//! ([`guest_path::normalize`]), then matched against the mounts by longest
//! prefix. The rest of the path is opened by the kernel with `openat2`
//! beneath the mount's directory handle (`RESOLVE_BENEATH`): symbolic links
//! are followed only while they stay below the mount, and an absolute link
//! or one that climbs out fails (`EXDEV`, reported to the guest as
//! `EACCES`). Operations on a last component (`mkdir`, `unlink`, `rename`,
//! `lstat`, ...) open its parent that way and then use the `*at` call on the
//! name, which never follows a final symbolic link. Operations that must
//! follow one and have no fd form for a path-only handle (`chmod`,
//! `utimes`) go through `/proc/self/fd`, which names the file already
//! resolved beneath the mount.
//!
//! Paths above the mounts (`/`, and `/srv` when `/srv/site` is mounted)
//! exist as read-only directories that list the mount points below them.
//! Anything else does not exist.
//!
//! The calls are synchronous: local files answer in microseconds, and the
//! guest is waiting for the answer anyway. (A slow network filesystem would
//! hold up the tenant's thread for as long as it takes.)

use std::fs::{File, Permissions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use slab::Slab;

use crate::error::FsError;
use crate::guest_path::{components, fold, normalize, split_last, strip};
use crate::mount::{Mount, MountError};
use crate::stat::FileStat;

/// The first descriptor number the sandbox hands out (0, 1 and 2 are the
/// standard streams, which the embedder serves).
pub const FIRST_FD: u32 = 3;

/// Open flags, with Linux's values (which Node.js reports in
/// `fs.constants`, and Go maps its own flags onto).
pub mod flags {
    /// Open for reading only.
    pub const O_RDONLY: u32 = 0;
    /// Open for writing only.
    pub const O_WRONLY: u32 = 0o1;
    /// Open for reading and writing.
    pub const O_RDWR: u32 = 0o2;
    /// Create the file if it does not exist.
    pub const O_CREAT: u32 = 0o100;
    /// With `O_CREAT`: fail if it exists.
    pub const O_EXCL: u32 = 0o200;
    /// Truncate to length 0.
    pub const O_TRUNC: u32 = 0o1000;
    /// Every write appends.
    pub const O_APPEND: u32 = 0o2000;
    /// Fail unless it is a directory.
    pub const O_DIRECTORY: u32 = 0o200_000;
    /// Every flag the sandbox accepts, with its name.
    pub const ALL: [(&str, u32); 8] = [
        ("O_RDONLY", O_RDONLY),
        ("O_WRONLY", O_WRONLY),
        ("O_RDWR", O_RDWR),
        ("O_CREAT", O_CREAT),
        ("O_EXCL", O_EXCL),
        ("O_TRUNC", O_TRUNC),
        ("O_APPEND", O_APPEND),
        ("O_DIRECTORY", O_DIRECTORY),
    ];
}

/// A file every guest sees unless a mount covers it: what programs take
/// for granted on any system, and that reveals nothing of the host.
#[derive(Debug)]
struct Builtin {
    path: &'static str,
    /// `None` for `/dev/null` (empty; writes vanish), else the read-only content.
    content: Option<&'static [u8]>,
}

const BUILTINS: [Builtin; 2] = [
    Builtin {
        path: "/dev/null",
        content: None,
    },
    // Go's resolver reads it: `localhost` resolves with no DNS.
    Builtin {
        path: "/etc/hosts",
        content: Some(ETC_HOSTS),
    },
];

/// The `/etc/hosts` every guest sees unless a mount covers it (js guests
/// here, WASI guests in `wasabi-wasi`): `localhost` resolves with no DNS.
pub const ETC_HOSTS: &[u8] = b"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";

impl Builtin {
    fn stat(&self) -> FileStat {
        match self.content {
            None => FileStat::char_device(),
            Some(bytes) => FileStat {
                mode: 0o100_444,
                nlink: 1,
                size: bytes.len() as i64,
                ..FileStat::virtual_dir(self.path)
            },
        }
    }
}

/// An open file of the guest.
#[derive(Debug)]
enum OpenFile {
    /// One of the [`BUILTINS`], with its read offset.
    Builtin {
        builtin: &'static Builtin,
        offset: std::cell::Cell<u64>,
    },
    /// A file or directory inside a mount.
    Host { file: File, read_only: bool },
    /// A directory of the guest's view above the mounts.
    Virtual { guest: String },
}

/// Where a guest path leads.
enum Place<'a> {
    /// Inside `mount`, at `rel` (`.` for the mount's own directory).
    Mounted { mount: &'a Mount, rel: String },
    /// A directory above the mounts (or above a builtin file).
    Virtual,
    /// A builtin file.
    Builtin(&'static Builtin),
}

/// What a tenant's filesystem is made of, before anything is opened: its
/// mounts and working directory. Configuration (flags, manifests) produces
/// one; [`open`](SandboxSpec::open) turns it into a [`Sandbox`] for each run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The mounts, in the order given (the first is the default working
    /// directory).
    pub mounts: Vec<crate::MountSpec>,
    /// The working directory (a guest path); by default the first mount's.
    pub cwd: Option<String>,
}

impl SandboxSpec {
    /// Opens every mount (relative host paths against `base`) and checks
    /// the working directory.
    pub fn open(&self, base: &std::path::Path) -> Result<Sandbox, MountError> {
        let mounts = self
            .mounts
            .iter()
            .map(|m| Mount::open(m, base))
            .collect::<Result<Vec<_>, _>>()?;
        Sandbox::new(mounts, self.cwd.as_deref())
    }
}

/// One tenant's filesystem: nothing but its mounts.
///
/// ```
/// use wasabi_fs::Sandbox;
///
/// // With nothing mounted, nothing exists but a read-only root holding
/// // /dev/null and an /etc/hosts that names localhost.
/// let fs = Sandbox::empty();
/// assert_eq!(fs.stat("/etc/passwd").unwrap_err().code(), "ENOENT");
/// assert_eq!(fs.readdir("/").unwrap(), ["dev", "etc"]);
/// ```
#[derive(Debug)]
pub struct Sandbox {
    /// Longest guest path first, so the first match is the deepest mount.
    mounts: Vec<Mount>,
    cwd: String,
    files: Slab<OpenFile>,
    max_files: usize,
    /// The key that hides host device and inode numbers (see
    /// [`FileStat::from_host`]).
    ids: std::hash::RandomState,
}

impl Sandbox {
    /// A sandbox with nothing mounted; the working directory is `/`.
    pub fn empty() -> Sandbox {
        Sandbox {
            mounts: Vec::new(),
            cwd: "/".into(),
            files: Slab::new(),
            max_files: wasabi_limits::DEFAULT_MAX_OPEN_FILES,
            ids: std::hash::RandomState::new(),
        }
    }

    /// A sandbox of `mounts`, working in `cwd` (a guest path; by default the
    /// first mount's directory, or `/` without mounts).
    pub fn new(mounts: Vec<Mount>, cwd: Option<&str>) -> Result<Sandbox, MountError> {
        let default_cwd = mounts
            .first()
            .map_or_else(|| "/".to_string(), |m| m.guest.clone());
        let mut sorted = mounts;
        sorted.sort_by_key(|m| std::cmp::Reverse(m.guest.len()));
        for pair in sorted.windows(2) {
            if pair[0].guest == pair[1].guest {
                return Err(MountError::Duplicate(pair[0].guest.clone()));
            }
        }
        refuse_read_only_inside_writable(&sorted)?;
        let mut sandbox = Sandbox {
            mounts: sorted,
            cwd: default_cwd,
            ..Sandbox::empty()
        };
        if let Some(cwd) = cwd {
            let cwd = normalize("/", cwd);
            sandbox
                .chdir(&cwd)
                .map_err(|_| MountError::BadCwd(cwd.clone()))?;
        }
        Ok(sandbox)
    }

    /// Caps how many files the guest may hold open at once.
    pub fn with_max_files(mut self, max: usize) -> Sandbox {
        self.max_files = max;
        self
    }

    /// The mounts, deepest guest path first.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The guest's working directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Number of files the guest holds open.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// `path` as an absolute, folded guest path.
    pub fn absolute(&self, path: &str) -> String {
        normalize(&self.cwd, path)
    }

    /// Changes the working directory.
    pub fn chdir(&mut self, path: &str) -> Result<(), FsError> {
        let guest = self.absolute(path);
        if !self.stat(&guest)?.is_dir() {
            return Err(FsError::new("ENOTDIR", format!("{guest}: not a directory")));
        }
        self.cwd = guest;
        Ok(())
    }

    fn locate(&self, path: &str) -> Result<(String, Place<'_>), FsError> {
        if path.is_empty() || path.contains('\0') {
            return Err(FsError::new("EINVAL", "the path is empty or contains NUL"));
        }
        let raw = components(&self.cwd, path);
        let guest = fold(&raw);
        for mount in &self.mounts {
            if let Some(folded) = strip(&guest, &mount.guest) {
                let rel = within(path, &raw, &mount.guest).unwrap_or(folded);
                return Ok((guest, Place::Mounted { mount, rel }));
            }
        }
        if let Some(builtin) = BUILTINS.iter().find(|b| b.path == guest) {
            return Ok((guest, Place::Builtin(builtin)));
        }
        let above = guest == "/"
            || self
                .mounts
                .iter()
                .map(|m| m.guest.as_str())
                .chain(BUILTINS.iter().map(|b| b.path))
                .any(|p| strip(p, &guest).is_some());
        if above {
            Ok((guest, Place::Virtual))
        } else {
            Err(FsError::not_found(&guest))
        }
    }

    /// Like `locate`, for an operation that changes the place: refuses
    /// read-only mounts and the directories above the mounts.
    fn locate_writable(&self, path: &str) -> Result<(String, &Mount, String), FsError> {
        writable(self.locate(path)?)
    }

    /// The names in a directory above the mounts: the next component of
    /// every mount below it.
    fn mount_points_below(&self, guest: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .mounts
            .iter()
            .map(|m| m.guest.as_str())
            .chain(BUILTINS.iter().map(|b| b.path))
            .filter_map(|p| strip(p, guest))
            .filter(|rel| rel != ".")
            .map(|rel| split_first(&rel).to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    // ---- by path ----

    /// Opens `path` with [`flags`] and, when creating, permission `mode`.
    /// Returns the guest's descriptor.
    pub fn open(&mut self, path: &str, flags: u32, mode: u32) -> Result<u32, FsError> {
        let oflags = open_flags(flags)?;
        let writes =
            oflags.intersects(OFlags::WRONLY | OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC);
        if self.files.len() >= self.max_files {
            return Err(FsError::new(
                "EMFILE",
                format!(
                    "too many open files: this tenant may hold {}",
                    self.max_files
                ),
            ));
        }
        let (guest, place) = self.locate(path)?;
        let file = match place {
            Place::Virtual if writes => {
                return Err(FsError::new("EISDIR", format!("{guest}: is a directory")));
            }
            Place::Virtual => OpenFile::Virtual { guest },
            Place::Builtin(builtin) if writes && builtin.content.is_some() => {
                return Err(FsError::read_only(&guest));
            }
            Place::Builtin(builtin) => OpenFile::Builtin {
                builtin,
                offset: std::cell::Cell::new(0),
            },
            Place::Mounted { mount, .. } if writes && mount.read_only => {
                return Err(FsError::read_only(&guest));
            }
            Place::Mounted { mount, rel } => {
                // openat2 refuses a mode unless it creates.
                let mode = if oflags.contains(OFlags::CREATE) {
                    Mode::from_raw_mode(mode & 0o7777)
                } else {
                    Mode::empty()
                };
                let fd = beneath(mount, &rel, oflags, mode, &guest)?;
                OpenFile::Host {
                    file: File::from(fd),
                    read_only: mount.read_only,
                }
            }
        };
        let key = self.files.insert(file);
        Ok(FIRST_FD + key as u32)
    }

    /// What the guest sees of a host file's status.
    fn host_stat(&self, st: &rustix::fs::Stat) -> FileStat {
        FileStat::from_host(st, &self.ids)
    }

    /// Status of `path`, following a final symbolic link.
    pub fn stat(&self, path: &str) -> Result<FileStat, FsError> {
        match self.locate(path)? {
            (guest, Place::Virtual) => Ok(FileStat::virtual_dir(&guest)),
            (_, Place::Builtin(b)) => Ok(b.stat()),
            (guest, Place::Mounted { mount, rel }) => {
                let fd = beneath(mount, &rel, OFlags::PATH, Mode::empty(), &guest)?;
                Ok(self.host_stat(&rustix::fs::fstat(&fd)?))
            }
        }
    }

    /// Status of `path` itself, even when it is a symbolic link.
    pub fn lstat(&self, path: &str) -> Result<FileStat, FsError> {
        match self.locate(path)? {
            (guest, Place::Virtual) => Ok(FileStat::virtual_dir(&guest)),
            (_, Place::Builtin(b)) => Ok(b.stat()),
            (guest, Place::Mounted { mount, rel }) => {
                let Some((parent, name)) = parent_of(mount, &rel, &guest)? else {
                    return Ok(self.host_stat(&rustix::fs::fstat(&*mount.dir)?));
                };
                rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| self.host_stat(&st))
                    .map_err(|e| FsError::os(e.into(), &guest))
            }
        }
    }

    /// The names in directory `path` (without `.` and `..`), in the host's
    /// order. Names that are not UTF-8 are left out.
    pub fn readdir(&self, path: &str) -> Result<Vec<String>, FsError> {
        let (guest, place) = self.locate(path)?;
        let (mount, rel) = match place {
            Place::Mounted { mount, rel } => (mount, rel),
            Place::Virtual => return Ok(self.mount_points_below(&guest)),
            Place::Builtin(_) => {
                return Err(FsError::new("ENOTDIR", format!("{guest}: not a directory")));
            }
        };
        let fd = beneath(
            mount,
            &rel,
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
            &guest,
        )?;
        let dir = rustix::fs::Dir::new(fd).map_err(|e| FsError::os(e.into(), &guest))?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| FsError::os(e.into(), &guest))?;
            // A name that is not UTF-8 has no faithful JS string: made lossy,
            // two such names would read alike and the guest would open the
            // wrong one (or none). Such names are not listed.
            let Ok(name) = entry.file_name().to_str() else {
                tracing::debug!(dir = %guest, "a name that is not UTF-8 is not listed");
                continue;
            };
            if name != "." && name != ".." {
                names.push(name.to_string());
            }
        }
        // A mount inside a mounted directory shows up in it.
        for name in self.mount_points_below(&guest) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Creates directory `path` with permission `mode`.
    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), FsError> {
        let located = self.locate(path)?;
        if let (guest, Place::Virtual | Place::Builtin(_)) = &located {
            return Err(FsError::new("EEXIST", format!("{guest}: file exists")));
        }
        let (guest, mount, rel) = writable(located)?;
        let Some((parent, name)) = parent_of(mount, &rel, &guest)? else {
            return Err(FsError::new("EEXIST", format!("{guest}: file exists")));
        };
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode & 0o7777))
            .map_err(|e| FsError::os(e.into(), &guest))
    }

    /// Removes the empty directory `path`.
    pub fn rmdir(&self, path: &str) -> Result<(), FsError> {
        self.remove(path, AtFlags::REMOVEDIR)
    }

    /// Removes the file (or symbolic link) `path`.
    pub fn unlink(&self, path: &str) -> Result<(), FsError> {
        self.remove(path, AtFlags::empty())
    }

    fn remove(&self, path: &str, flags: AtFlags) -> Result<(), FsError> {
        let (guest, mount, rel) = self.locate_writable(path)?;
        let (parent, name) = parent_of(mount, &rel, &guest)?.ok_or_else(|| busy(&guest))?;
        rustix::fs::unlinkat(&parent, name, flags).map_err(|e| FsError::os(e.into(), &guest))
    }

    /// Renames `from` to `to`, within one mount.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FsError> {
        self.between(from, to, |sp, sn, dp, dn| {
            rustix::fs::renameat(sp, sn, dp, dn)
        })
    }

    /// Makes `new` a hard link to `existing`, within one mount.
    pub fn link(&self, existing: &str, new: &str) -> Result<(), FsError> {
        self.between(existing, new, |sp, sn, dp, dn| {
            rustix::fs::linkat(sp, sn, dp, dn, AtFlags::empty())
        })
    }

    /// Runs `call` on the parents and names of two writable places in one
    /// mount (`rename`, `link`). A symbolic link that climbs (a host-made
    /// one: the guest cannot make such links) is not moved or linked
    /// elsewhere, where it could lead out.
    fn between(
        &self,
        a: &str,
        b: &str,
        call: impl FnOnce(&OwnedFd, &str, &OwnedFd, &str) -> rustix::io::Result<()>,
    ) -> Result<(), FsError> {
        let (ga, ma, ra) = self.locate_writable(a)?;
        let (gb, mb, rb) = self.locate_writable(b)?;
        if !Arc::ptr_eq(&ma.dir, &mb.dir) {
            return Err(FsError::new(
                "EXDEV",
                format!("{ga} -> {gb}: they are in different mounts"),
            ));
        }
        let (pa, na) = parent_of(ma, &ra, &ga)?.ok_or_else(|| busy(&ga))?;
        let (pb, nb) = parent_of(mb, &rb, &gb)?.ok_or_else(|| busy(&gb))?;
        if let Ok(target) = rustix::fs::readlinkat(&pa, na, Vec::new()) {
            let target = target.to_string_lossy();
            if !leads_down(&target) {
                return Err(FsError::new(
                    "EPERM",
                    format!(
                        "{ga} -> {gb}: {ga} is a symbolic link to {target}, which climbs out of its directory; moved, it could lead outside the mount"
                    ),
                ));
            }
        }
        call(&pa, na, &pb, nb).map_err(|e| FsError::os(e.into(), &format!("{ga} -> {gb}")))
    }

    /// Creates the symbolic link `link` pointing at `target`.
    ///
    /// A link the guest makes may only lead *down* from its own directory:
    /// a relative target with no `..` (an absolute target beneath the
    /// link's directory is stored that way, so `readlink` returns the
    /// relative form). Such a link resolves inside the directory it is in
    /// wherever it is moved, and a chain of them cannot climb, so no
    /// sequence of guest operations leaves a link on the host that leads out
    /// of the mount. (A target that is only checked when the link is made
    /// could climb out later, after a rename, or through a chain of `..`
    /// links resolved physically by whoever reads them.)
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), FsError> {
        let (guest, mount, rel) = self.locate_writable(link)?;
        if target.is_empty() || target.contains('\0') {
            return Err(FsError::new(
                "EINVAL",
                "the symlink target is empty or contains NUL",
            ));
        }
        let (dir, _) = split_last(&guest);
        let dir = if dir.is_empty() { "/" } else { dir };
        let resolved = normalize(dir, target);
        if strip(&resolved, &mount.guest).is_none() {
            return Err(FsError::new(
                "EPERM",
                format!("{guest} -> {target}: the target is outside the mounted directory"),
            ));
        }
        let stored = if target.starts_with('/') {
            relative_to(dir, &resolved)
        } else {
            target.to_string()
        };
        if !leads_down(&stored) {
            return Err(FsError::new(
                "EPERM",
                format!(
                    "{guest} -> {target}: a symbolic link may only lead down from its own directory (no `..`), so that no move can make it lead outside the mount"
                ),
            ));
        }
        let (parent, name) = parent_of(mount, &rel, &guest)?
            .ok_or_else(|| FsError::new("EEXIST", format!("{guest}: file exists")))?;
        rustix::fs::symlinkat(stored.as_str(), &parent, name)
            .map_err(|e| FsError::os(e.into(), &guest))
    }

    /// The target of the symbolic link `path`.
    pub fn readlink(&self, path: &str) -> Result<String, FsError> {
        let not_link =
            |guest: &str| FsError::new("EINVAL", format!("{guest}: not a symbolic link"));
        match self.locate(path)? {
            (guest, Place::Virtual | Place::Builtin(_)) => Err(not_link(&guest)),
            (guest, Place::Mounted { mount, rel }) => {
                let (parent, name) =
                    parent_of(mount, &rel, &guest)?.ok_or_else(|| not_link(&guest))?;
                let target = rustix::fs::readlinkat(&parent, name, Vec::new())
                    .map_err(|e| FsError::os(e.into(), &guest))?;
                Ok(target.to_string_lossy().into_owned())
            }
        }
    }

    /// Sets the length of `path`.
    pub fn truncate(&self, path: &str, len: u64) -> Result<(), FsError> {
        let (guest, mount, rel) = self.locate_writable(path)?;
        let fd = beneath(mount, &rel, OFlags::WRONLY, Mode::empty(), &guest)?;
        File::from(fd)
            .set_len(len)
            .map_err(|e| FsError::os(e, &guest))
    }

    /// Sets the permission bits of `path` (following a symbolic link).
    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), FsError> {
        let (guest, mount, rel) = self.locate_writable(path)?;
        let fd = beneath(mount, &rel, OFlags::PATH, Mode::empty(), &guest)?;
        std::fs::set_permissions(proc_path(&fd), Permissions::from_mode(mode & 0o7777))
            .map_err(|e| FsError::os(e, &guest))
    }

    /// Sets the access and modification times of `path`, in seconds since
    /// the Unix epoch (following a symbolic link).
    pub fn utimes(&self, path: &str, atime: f64, mtime: f64) -> Result<(), FsError> {
        let (guest, mount, rel) = self.locate_writable(path)?;
        let fd = beneath(mount, &rel, OFlags::PATH, Mode::empty(), &guest)?;
        let times = Timestamps {
            last_access: timespec(atime)?,
            last_modification: timespec(mtime)?,
        };
        rustix::fs::utimensat(rustix::fs::CWD, proc_path(&fd), &times, AtFlags::empty())
            .map_err(|e| FsError::os(e.into(), &guest))
    }

    // ---- by descriptor ----

    fn file(&self, fd: u32) -> Result<&OpenFile, FsError> {
        fd.checked_sub(FIRST_FD)
            .and_then(|k| self.files.get(k as usize))
            .ok_or(FsError::bad_fd(fd))
    }

    fn host_file(&self, fd: u32) -> Result<(&File, bool), FsError> {
        match self.file(fd)? {
            OpenFile::Host { file, read_only } => Ok((file, *read_only)),
            OpenFile::Virtual { guest } => {
                Err(FsError::new("EISDIR", format!("{guest}: is a directory")))
            }
            OpenFile::Builtin { builtin, .. } => Err(FsError::read_only(builtin.path)),
        }
    }

    /// Closes `fd`.
    pub fn close(&mut self, fd: u32) -> Result<(), FsError> {
        self.file(fd)?;
        self.files.remove((fd - FIRST_FD) as usize);
        Ok(())
    }

    /// Reads into `buf` at `position`, or at the file offset (advancing it)
    /// when `None`. Returns the count; 0 at the end.
    pub fn read(&self, fd: u32, buf: &mut [u8], position: Option<u64>) -> Result<usize, FsError> {
        if let OpenFile::Builtin { builtin, offset } = self.file(fd)? {
            let content = builtin.content.unwrap_or_default();
            let at = position.unwrap_or(offset.get()).min(content.len() as u64) as usize;
            let n = buf.len().min(content.len() - at);
            buf[..n].copy_from_slice(&content[at..at + n]);
            if position.is_none() {
                offset.set((at + n) as u64);
            }
            return Ok(n);
        }
        let (mut file, _) = self.host_file(fd)?;
        let what = format!("read from descriptor {fd}");
        match position {
            Some(at) => file.read_at(buf, at),
            None => file.read(buf),
        }
        .map_err(|e| FsError::os(e, &what))
    }

    /// Writes `buf` at `position`, or at the file offset when `None`.
    /// Returns the count.
    pub fn write(&self, fd: u32, buf: &[u8], position: Option<u64>) -> Result<usize, FsError> {
        if let OpenFile::Builtin { builtin, .. } = self.file(fd)? {
            return match builtin.content {
                None => Ok(buf.len()),
                Some(_) => Err(FsError::bad_fd(fd)),
            };
        }
        let (mut file, _) = self.host_file(fd)?;
        let what = format!("write to descriptor {fd}");
        match position {
            Some(at) => file.write_at(buf, at),
            None => file.write(buf),
        }
        .map_err(|e| FsError::os(e, &what))
    }

    /// Status of the open file `fd`.
    pub fn fstat(&self, fd: u32) -> Result<FileStat, FsError> {
        match self.file(fd)? {
            OpenFile::Host { file, .. } => Ok(self.host_stat(&rustix::fs::fstat(file)?)),
            OpenFile::Virtual { guest } => Ok(FileStat::virtual_dir(guest)),
            OpenFile::Builtin { builtin, .. } => Ok(builtin.stat()),
        }
    }

    /// Sets the length of the open file `fd`.
    pub fn ftruncate(&self, fd: u32, len: u64) -> Result<(), FsError> {
        let (file, _) = self.host_file(fd)?;
        file.set_len(len)
            .map_err(|e| FsError::os(e, &format!("truncate descriptor {fd}")))
    }

    /// Flushes the open file `fd` to stable storage.
    pub fn fsync(&self, fd: u32) -> Result<(), FsError> {
        match self.file(fd)? {
            OpenFile::Host { file, .. } => file
                .sync_all()
                .map_err(|e| FsError::os(e, &format!("fsync descriptor {fd}"))),
            OpenFile::Virtual { .. } | OpenFile::Builtin { .. } => Ok(()),
        }
    }

    /// Sets the permission bits of the open file `fd`.
    pub fn fchmod(&self, fd: u32, mode: u32) -> Result<(), FsError> {
        let (file, read_only) = self.host_file(fd)?;
        if read_only {
            return Err(FsError::read_only(&format!("descriptor {fd}")));
        }
        file.set_permissions(Permissions::from_mode(mode & 0o7777))
            .map_err(|e| FsError::os(e, &format!("chmod descriptor {fd}")))
    }
}

/// The part of `path` (as `raw` components) below `mount` as written, with
/// its `..` and a trailing `/` or `/.` kept for the kernel to resolve (POSIX
/// resolves `a/..` from where the link `a` leads, and `file/` is not a
/// directory) — when the path reaches the mount without `..` and never
/// climbs above it. Otherwise the caller uses the lexically folded form.
fn within(path: &str, raw: &[&str], mount: &str) -> Option<String> {
    let root: Vec<&str> = mount.split('/').filter(|c| !c.is_empty()).collect();
    let rest = raw.strip_prefix(root.as_slice())?;
    let mut depth = 0usize;
    for c in rest {
        depth = if *c == ".." {
            depth.checked_sub(1)?
        } else {
            depth + 1
        };
    }
    if rest.is_empty() {
        return Some(".".into());
    }
    let mut rel = rest.join("/");
    let last = path.trim_end_matches('/').rsplit('/').next();
    if last == Some(".") {
        // `dir/.` is the directory itself, which cannot be renamed or
        // removed under that name.
        rel.push_str("/.");
    } else if path.ends_with('/') {
        rel.push('/');
    }
    Some(rel)
}

/// A located place the guest may change: inside a mount that is not
/// read-only.
fn writable((guest, place): (String, Place<'_>)) -> Result<(String, &Mount, String), FsError> {
    match place {
        Place::Mounted { mount, rel } if !mount.read_only => Ok((guest, mount, rel)),
        _ => Err(FsError::read_only(&guest)),
    }
}

/// Opens `rel` beneath `mount`'s directory: symbolic links are followed
/// only while they stay below it.
fn beneath(
    mount: &Mount,
    rel: &str,
    oflags: OFlags,
    mode: Mode,
    guest: &str,
) -> Result<OwnedFd, FsError> {
    // openat2 refuses flags that mean nothing with O_PATH.
    let extra = if oflags.contains(OFlags::PATH) {
        OFlags::CLOEXEC
    } else {
        OFlags::CLOEXEC | OFlags::NOCTTY
    };
    rustix::fs::openat2(
        &*mount.dir,
        rel,
        oflags | extra,
        mode,
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::XDEV => FsError::escape(guest),
        rustix::io::Errno::NOSYS => FsError::new(
            "ENOSYS",
            "this host's kernel lacks openat2 (Linux 5.6 or later is needed for mounts)",
        ),
        e => FsError::os(e.into(), guest),
    })
}

/// The parent directory of `rel` (opened beneath the mount) and the last
/// component's name, or `None` for the mount's own directory.
fn parent_of<'r>(
    mount: &Mount,
    rel: &'r str,
    guest: &str,
) -> Result<Option<(OwnedFd, &'r str)>, FsError> {
    if rel == "." {
        return Ok(None);
    }
    let (parent, name) = split_last(rel);
    let fd = beneath(
        mount,
        parent,
        OFlags::PATH | OFlags::DIRECTORY,
        Mode::empty(),
        guest,
    )?;
    Ok(Some((fd, name)))
}

/// `/proc/self/fd/N`: the file already resolved behind `fd`.
fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

fn busy(guest: &str) -> FsError {
    FsError::new(
        "EBUSY",
        format!("{guest}: a mount point cannot be removed or renamed"),
    )
}

/// The relative path from directory `from` to `to` (both normalized guest
/// paths).
fn relative_to(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Refuses a read-only mount whose host directory is a read-write mount's
/// directory or lies inside it: a `:ro` there would be a promise the
/// sandbox cannot keep, since the guest reaches the same files read-write
/// through the other mount (by name, by a link it makes, or by a hard
/// link). The check follows the host directories' real parents (by device
/// and inode, with `..` from the opened handles), so symbolic links in the
/// host paths do not hide an overlap.
fn refuse_read_only_inside_writable(mounts: &[Mount]) -> Result<(), MountError> {
    let identity = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|st| (st.st_dev, st.st_ino));
    let os = |host: &std::path::Path, e: rustix::io::Errno| MountError::Open {
        host: host.to_path_buf(),
        source: e.into(),
    };
    let writable: Vec<((u64, u64), &Mount)> = mounts
        .iter()
        .filter(|m| !m.read_only)
        .map(|m| {
            identity(&m.dir)
                .map(|id| (id, m))
                .map_err(|e| os(&m.host, e))
        })
        .collect::<Result<_, _>>()?;
    if writable.is_empty() {
        return Ok(());
    }
    for ro in mounts.iter().filter(|m| m.read_only) {
        let mut dir = rustix::fs::openat(
            &*ro.dir,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os(&ro.host, e))?;
        // Walk up to the host's root (whose parent is itself).
        for _ in 0..4096 {
            let here = identity(&dir).map_err(|e| os(&ro.host, e))?;
            if let Some((_, rw)) = writable.iter().find(|(id, _)| *id == here) {
                return Err(MountError::ReadOnlyInsideWritable {
                    read_only: ro.guest.clone(),
                    writable: rw.guest.clone(),
                });
            }
            let parent = rustix::fs::openat(
                &dir,
                "..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| os(&ro.host, e))?;
            if identity(&parent).map_err(|e| os(&ro.host, e))? == here {
                break;
            }
            dir = parent;
        }
    }
    Ok(())
}

/// `true` for a link target that leads only down from the link's
/// directory: relative, with no `..` component.
fn leads_down(target: &str) -> bool {
    !target.starts_with('/') && target.split('/').all(|c| c != "..")
}

/// The first component of a relative path.
fn split_first(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel)
}

/// Seconds since the epoch as a timespec.
fn timespec(seconds: f64) -> Result<Timespec, FsError> {
    if !seconds.is_finite() || seconds.abs() > 1e15 {
        return Err(FsError::new("EINVAL", format!("{seconds} is not a time")));
    }
    let whole = seconds.floor();
    Ok(Timespec {
        tv_sec: whole as i64,
        tv_nsec: ((seconds - whole) * 1e9) as _,
    })
}

/// Translates the guest's open flags, refusing any it does not know.
fn open_flags(bits: u32) -> Result<OFlags, FsError> {
    use flags::*;
    let known = flags::ALL.iter().fold(0, |acc, (_, v)| acc | v);
    if bits & !known != 0 || bits & 3 == 3 {
        return Err(FsError::new(
            "EINVAL",
            format!("unsupported open flags {bits:#o}"),
        ));
    }
    let mut o = match bits & 3 {
        O_WRONLY => OFlags::WRONLY,
        O_RDWR => OFlags::RDWR,
        _ => OFlags::RDONLY,
    };
    for (bit, flag) in [
        (O_CREAT, OFlags::CREATE),
        (O_EXCL, OFlags::EXCL),
        (O_TRUNC, OFlags::TRUNC),
        (O_APPEND, OFlags::APPEND),
        (O_DIRECTORY, OFlags::DIRECTORY),
    ] {
        if bits & bit != 0 {
            o |= flag;
        }
    }
    Ok(o)
}

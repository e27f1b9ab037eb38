//! [`FileStat`]: what `stat` reports, in the shape Node.js's `fs.Stats` has.

/// The user id the guest runs as, and owns its files as, when Wasabi does
/// not run as root: a fixed value, so the host's real ids do not show
/// through.
pub const GUEST_UID: u32 = 1000;
/// The group id the guest runs as, likewise.
pub const GUEST_GID: u32 = 1000;
/// The owner shown for a file some other host user owns (`nobody`).
pub const OTHER_ID: u32 = 65534;

/// The uid the guest sees: [`GUEST_UID`], or 0 when Wasabi runs as root.
/// Root's file permission checks always pass, and programs (Go's own tests
/// among them) ask `os.Getuid() == 0` to know whether they will: a fixed
/// non-zero id would tell them wrong.
pub fn guest_uid() -> u32 {
    if rustix::process::geteuid().is_root() {
        0
    } else {
        GUEST_UID
    }
}

/// The gid the guest sees: [`GUEST_GID`], or 0 when Wasabi runs as root.
pub fn guest_gid() -> u32 {
    if rustix::process::geteuid().is_root() {
        0
    } else {
        GUEST_GID
    }
}

/// File type bits of `mode`.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// The status of a file (`fs.Stats`): sizes, mode, owner and times.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    /// File type and permission bits, as in `st_mode`.
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    /// Last access, in milliseconds since the Unix epoch.
    pub atime_ms: f64,
    /// Last modification, in milliseconds since the Unix epoch.
    pub mtime_ms: f64,
    /// Last status change, in milliseconds since the Unix epoch.
    pub ctime_ms: f64,
}

impl FileStat {
    /// `true` for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// `true` for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// `true` for a symbolic link (only `lstat` reports one).
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// A directory that exists only in the guest's view: `/`, and every
    /// directory above a mount point. It is read-only and owned by root.
    pub(crate) fn virtual_dir(guest: &str) -> FileStat {
        // A stable inode number per path, away from small real ones.
        let ino = guest.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) >> 12;
        FileStat {
            dev: 0,
            ino,
            mode: S_IFDIR | 0o555,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 0,
            blksize: 4096,
            blocks: 0,
            atime_ms: 0.0,
            mtime_ms: 0.0,
            ctime_ms: 0.0,
        }
    }

    /// A character device, for the standard streams.
    pub fn char_device() -> FileStat {
        FileStat {
            mode: 0o020_620,
            nlink: 1,
            ..FileStat::virtual_dir("")
        }
    }
}

impl FileStat {
    /// What the guest sees of a host file's status. The owner is the guest
    /// ([`guest_uid`], [`guest_gid`]) when it is the host process's, and
    /// [`OTHER_ID`] otherwise; the device and inode numbers are a keyed hash
    /// of the real ones (`ids` holds this sandbox's random key): stable and
    /// distinct, so `os.SameFile` and hard links work, but they say nothing
    /// of the host's devices and inodes.
    // The field types of `struct stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn from_host(s: &rustix::fs::Stat, ids: &std::hash::RandomState) -> FileStat {
        use std::hash::BuildHasher;
        let ms = |sec: i64, nsec: u64| sec as f64 * 1000.0 + nsec as f64 / 1e6;
        let dev = s.st_dev as u64;
        let owner = |id: u32, host: u32, guest: u32| if id == host { guest } else { OTHER_ID };
        FileStat {
            // Small, like device numbers; JS numbers hold 53 bits exactly.
            dev: 1 + (ids.hash_one(("dev", dev)) & 0xffff),
            ino: ids.hash_one(("ino", dev, s.st_ino as u64)) >> 11,
            mode: s.st_mode as u32,
            nlink: s.st_nlink as u64,
            uid: owner(s.st_uid, rustix::process::geteuid().as_raw(), guest_uid()),
            gid: owner(s.st_gid, rustix::process::getegid().as_raw(), guest_gid()),
            rdev: 0,
            size: s.st_size as i64,
            blksize: s.st_blksize as i64,
            blocks: s.st_blocks as i64,
            atime_ms: ms(s.st_atime as i64, s.st_atime_nsec as u64),
            mtime_ms: ms(s.st_mtime as i64, s.st_mtime_nsec as u64),
            ctime_ms: ms(s.st_ctime as i64, s.st_ctime_nsec as u64),
        }
    }
}

//! [`FsError`]: why a filesystem call failed, as the POSIX error code a Go
//! guest maps to a `syscall.Errno`, plus words for the host's logs.

use std::io;

/// A failed filesystem call. [`code`](FsError::code) is what the guest
/// sees (Node.js puts the same names in `err.code`); the message explains it
/// to whoever reads the host's logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FsError {
    code: &'static str,
    message: String,
}

impl FsError {
    /// An error with a POSIX `code` (such as `"ENOENT"`) and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> FsError {
        FsError {
            code,
            message: message.into(),
        }
    }

    /// The POSIX error name, such as `"ENOENT"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What went wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error the host's kernel gave for `what`.
    pub(crate) fn os(err: io::Error, what: &str) -> FsError {
        let code = err.raw_os_error().map_or("EIO", errno_name);
        FsError::new(code, format!("{what}: {err}"))
    }

    pub(crate) fn not_found(guest: &str) -> FsError {
        FsError::new(
            "ENOENT",
            format!("{guest}: no such file or directory (it is outside every mounted directory)"),
        )
    }

    pub(crate) fn read_only(guest: &str) -> FsError {
        FsError::new(
            "EROFS",
            format!("{guest}: read-only (mounted with :ro, or not inside a mounted directory)"),
        )
    }

    pub(crate) fn escape(guest: &str) -> FsError {
        FsError::new(
            "EACCES",
            format!("{guest}: permission denied: it leads outside its mounted directory"),
        )
    }

    pub(crate) fn bad_fd(fd: u32) -> FsError {
        FsError::new("EBADF", format!("file descriptor {fd} is not open"))
    }
}

impl From<rustix::io::Errno> for FsError {
    fn from(e: rustix::io::Errno) -> FsError {
        FsError::os(io::Error::from(e), "host call")
    }
}

/// The name of a Linux errno, restricted to the names Go's js/wasm `syscall`
/// package knows (an unknown name would make it panic).
fn errno_name(errno: i32) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        6 => "ENXIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        16 | 26 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        25 => "ENOTTY",
        27 => "EFBIG",
        28 => "ENOSPC",
        29 => "ESPIPE",
        30 => "EROFS",
        31 => "EMLINK",
        32 => "EPIPE",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        61 => "ENODATA",
        75 => "EOVERFLOW",
        95 => "EOPNOTSUPP",
        122 => "EDQUOT",
        _ => "EIO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_keep_their_posix_name() {
        let e = FsError::os(io::Error::from_raw_os_error(2), "/data/x");
        assert_eq!(e.code(), "ENOENT");
        assert!(e.message().starts_with("/data/x: "));
        assert_eq!(FsError::os(io::Error::other("odd"), "x").code(), "EIO");
        assert_eq!(errno_name(26), "EBUSY");
    }
}

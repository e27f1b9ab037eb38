//! The filesystem of a Wasabi tenant: host directories mounted where the
//! guest sees them, and nothing else.
//!
//! Nothing is visible by default. A [`MountSpec`] (`HOST[:GUEST][:ro]`)
//! names a host directory; [`Mount::open`] takes a handle on it; a
//! [`Sandbox`] holds a tenant's mounts, working directory and open files,
//! and offers every operation Node.js's `fs` does that a Go program uses.
//! Errors are [`FsError`]s with the POSIX code the guest sees.
//!
//! This crate knows nothing of JS; `wasabi-gojs` exposes it as the `fs`
//! object a Go js/wasm program calls.
//!
//! ```no_run
//! use std::path::Path;
//! use wasabi_fs::{Mount, Sandbox, flags};
//!
//! let site = Mount::open(&"./site:/srv:ro".parse()?, Path::new("."))?;
//! let mut fs = Sandbox::new(vec![site], None)?;
//! let fd = fs.open("/srv/index.html", flags::O_RDONLY, 0)?;
//! let mut buf = [0u8; 512];
//! let n = fs.read(fd, &mut buf, None)?;
//! // Escapes fail: `..` folds to a path outside every mount...
//! assert_eq!(fs.stat("/srv/../etc/passwd").unwrap_err().code(), "ENOENT");
//! // ... and a read-only mount refuses changes.
//! assert_eq!(fs.unlink("/srv/index.html").unwrap_err().code(), "EROFS");
//! # let _ = n; Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod error;
pub mod guest_path;
mod mount;
mod sandbox;
pub mod stat;

pub use error::FsError;
pub use mount::{Mount, MountError, MountSpec};
pub use sandbox::{ETC_HOSTS, FIRST_FD, Sandbox, SandboxSpec, flags};
pub use stat::FileStat;

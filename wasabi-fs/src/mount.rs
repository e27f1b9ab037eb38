//! Mounts: which host directory appears where in the guest, and whether the
//! guest may change it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use crate::guest_path::normalize;

/// A mount as written on the command line or in a manifest:
/// `HOST[:GUEST][:ro]`.
///
/// ```
/// use wasabi_fs::MountSpec;
///
/// let m: MountSpec = "./site:/srv/site:ro".parse()?;
/// assert_eq!(m.host, std::path::PathBuf::from("./site"));
/// assert_eq!(m.guest.as_deref(), Some("/srv/site"));
/// assert!(m.read_only);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The host directory (relative paths are relative to whoever opens it).
    pub host: PathBuf,
    /// Where the guest sees it (absolute); by default at the host
    /// directory's own absolute path.
    pub guest: Option<String>,
    /// `true` to refuse every change (`:ro`).
    pub read_only: bool,
}

impl FromStr for MountSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<MountSpec, String> {
        let mut parts: Vec<&str> = text.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() > 1 => {
                parts.pop();
                true
            }
            Some(&"rw") if parts.len() > 1 => {
                parts.pop();
                false
            }
            _ => false,
        };
        let (host, guest) = match parts.as_slice() {
            [host] => (*host, None),
            [host, guest] => (*host, Some(*guest)),
            _ => {
                return Err(format!(
                    "`{text}` is not HOST[:GUEST][:ro] (host paths with `:` cannot be mounted)"
                ));
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}`: the host directory is empty"));
        }
        let guest = match guest {
            Some(g) if !g.starts_with('/') => {
                return Err(format!(
                    "`{text}`: the guest path `{g}` must be absolute, such as /data"
                ));
            }
            Some(g) => Some(normalize("/", g)),
            None => None,
        };
        Ok(MountSpec {
            host: host.into(),
            guest,
            read_only,
        })
    }
}

impl std::fmt::Display for MountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.host.display())?;
        if let Some(g) = &self.guest {
            write!(f, ":{g}")?;
        }
        if self.read_only {
            write!(f, ":ro")?;
        }
        Ok(())
    }
}

/// Why a mount could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The host directory cannot be opened.
    #[error("cannot mount {}: {source}", .host.display())]
    Open {
        /// The host directory.
        host: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The host directory's path is not UTF-8, so it has no default guest path.
    #[error("cannot mount {}: its path is not UTF-8; give a guest path (HOST:GUEST)", .0.display())]
    NotUtf8(PathBuf),
    /// Two mounts at one guest path.
    #[error("two directories are mounted at {0}")]
    Duplicate(String),
    /// The working directory is not inside the guest's tree.
    #[error("the working directory {0} is neither mounted nor above a mount")]
    BadCwd(String),
    /// A read-only mount lies inside a read-write one on the host, so the
    /// guest could change its files through the other.
    #[error(
        "{read_only} is mounted read-only, but its host directory is inside the read-write mount at {writable}, through which the guest could change it: mount a directory outside it, or make {writable} read-only"
    )]
    ReadOnlyInsideWritable {
        /// The read-only mount's guest path.
        read_only: String,
        /// The read-write mount's guest path.
        writable: String,
    },
}

/// An opened mount: a handle on the host directory, held for the tenant's
/// whole life, so renaming or replacing the host path later changes nothing
/// the guest sees. Cheap to clone (restarts share the handle).
#[derive(Debug, Clone)]
pub struct Mount {
    pub(crate) guest: String,
    pub(crate) host: PathBuf,
    pub(crate) dir: Arc<OwnedFd>,
    pub(crate) read_only: bool,
}

impl Mount {
    /// Opens the host directory of `spec`, relative to `base` when the
    /// spec's host path is relative.
    pub fn open(spec: &MountSpec, base: &Path) -> Result<Mount, MountError> {
        let joined = base.join(&spec.host);
        let host = std::path::absolute(&joined).map_err(|source| MountError::Open {
            host: joined.clone(),
            source,
        })?;
        let dir = rustix::fs::open(
            &host,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| MountError::Open {
            host: host.clone(),
            source: e.into(),
        })?;
        let guest = match &spec.guest {
            Some(g) => g.clone(),
            None => normalize(
                "/",
                host.to_str()
                    .ok_or_else(|| MountError::NotUtf8(host.clone()))?,
            ),
        };
        Ok(Mount {
            guest,
            host,
            dir: Arc::new(dir),
            read_only: spec.read_only,
        })
    }

    /// Where the guest sees this directory.
    pub fn guest_path(&self) -> &str {
        &self.guest
    }

    /// The host directory.
    pub fn host_path(&self) -> &Path {
        &self.host
    }

    /// `true` when the guest may not change anything in it.
    pub fn read_only(&self) -> bool {
        self.read_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_optional_guest_and_ro() {
        let m: MountSpec = "data".parse().unwrap();
        assert_eq!(
            (m.host.to_str(), m.guest, m.read_only),
            (Some("data"), None, false)
        );
        let m: MountSpec = "/srv/x:ro".parse().unwrap();
        assert_eq!((m.guest, m.read_only), (None, true));
        let m: MountSpec = "a:/g/../h/:rw".parse().unwrap();
        assert_eq!((m.guest.as_deref(), m.read_only), (Some("/h"), false));
        assert!("a:relative".parse::<MountSpec>().is_err());
        assert!("a:/b:/c:ro".parse::<MountSpec>().is_err());
        assert!(":/b".parse::<MountSpec>().is_err());
        assert_eq!(
            "a:/b:ro".parse::<MountSpec>().unwrap().to_string(),
            "a:/b:ro"
        );
    }

    #[test]
    fn opening_a_missing_directory_says_which() {
        let spec: MountSpec = "/no/such/dir/for/wasabi".parse().unwrap();
        let err = Mount::open(&spec, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("/no/such/dir/for/wasabi"), "{err}");
    }
}

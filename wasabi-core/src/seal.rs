//! Proof that compiled machine code was made by this installation.
//!
//! Deserializing a compiled module runs its machine code: wasmtime checks
//! that the artifact's format, version and CPU features match, not that its
//! code is what Cranelift produced. Anyone who can hand Wasabi such a file (a
//! `.cwasm` saved under any name, an entry dropped into a shared cache
//! folder) could otherwise run native code outside the sandbox. So every
//! artifact Wasabi writes is *sealed*: a MAC over its bytes (BLAKE3 in its
//! keyed mode), keyed with a secret that only this user's Wasabi directory
//! holds, is appended to it. Nothing is deserialized unless its seal checks
//! out under that key. (BLAKE3 rather than HMAC-SHA-256: checking the seal
//! of a 6 MB entry is on every warm start's path, and took a third of it.)
//!
//! The key is 32 random bytes in `install.key` inside the Wasabi directory
//! (`$WASABI_HOME`, else `$XDG_CONFIG_HOME/wasabi`, else
//! `~/.config/wasabi`), created on first use with mode 0600. It is never in
//! the cache folder, so a cache copied from elsewhere brings no key that
//! would vouch for its entries. A key file others may read is refused:
//! whoever can read it can forge seals.
//!
//! A sealed file is `artifact ‖ mac (32 bytes) ‖ "wasabi-sealed-v2"`.
//!
//! ```
//! use wasabi_core::seal::InstallKey;
//!
//! let dir = std::env::temp_dir().join(format!("wasabi-seal-doc-{}", std::process::id()));
//! let key = InstallKey::load_or_create(&dir.join("install.key")).unwrap();
//! let sealed = key.seal(b"machine code");
//! assert_eq!(key.open(&sealed).unwrap(), b"machine code");
//! let mut forged = sealed.clone();
//! forged[0] ^= 1;
//! assert!(key.open(&forged).is_err());
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The last bytes of every sealed file.
const TRAILER: &[u8; 16] = b"wasabi-sealed-v2";
/// Length of the MAC.
const MAC_LEN: usize = 32;
/// The key file's name inside the Wasabi directory.
pub const KEY_FILE_NAME: &str = "install.key";

/// The secret this installation seals its compiled code with.
#[derive(Clone)]
pub struct InstallKey {
    key: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for InstallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key itself.
        f.debug_struct("InstallKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a sealed file was refused, or the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The file carries no seal at all (for example, a module serialized by
    /// another wasmtime embedder).
    #[error("it carries no seal of this installation")]
    Unsealed,
    /// The seal does not match: the file was changed, or another
    /// installation (another key) sealed it.
    #[error("its seal does not match this installation's key ({}): it was changed, or made elsewhere", .key.display())]
    Mismatch {
        /// The key file the seal was checked against.
        key: PathBuf,
    },
    /// No Wasabi directory can be found for the key.
    #[error("no place for the installation key: set WASABI_HOME, XDG_CONFIG_HOME or HOME")]
    NoHome,
    /// The key file could not be read or created.
    #[error("installation key {}: {source}", .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file is unfit: wrong size, or readable by others.
    #[error("installation key {}: {reason}", .path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The user's Wasabi directory: `$WASABI_HOME`, else
/// `$XDG_CONFIG_HOME/wasabi`, else `$HOME/.config/wasabi`.
pub fn default_home() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(home) = var("WASABI_HOME") {
        return Some(home.into());
    }
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("wasabi"))
}

/// The default key file: [`KEY_FILE_NAME`] in [`default_home`].
pub fn default_key_path() -> Option<PathBuf> {
    default_home().map(|h| h.join(KEY_FILE_NAME))
}

impl InstallKey {
    /// Reads the key at `path`, or creates it (and its folder, mode 0700)
    /// with 32 fresh random bytes if there is none. Two processes creating it
    /// at once agree on one key: it is written to a temporary file and linked
    /// into place, and the loser reads the winner's.
    pub fn load_or_create(path: &Path) -> Result<InstallKey, SealError> {
        let io = |source| SealError::Io {
            path: path.to_path_buf(),
            source,
        };
        match read_key(path) {
            Ok(key) => return Ok(key),
            Err(SealError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| io(std::io::Error::other(e)))?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{KEY_FILE_NAME}.{}", hex(&nonce)));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&key)?;
            file.sync_all()?;
            // A hard link fails if the name exists: the first writer wins.
            match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        written.map_err(io)?;
        read_key(path)
    }

    /// The file the key lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A short name for this key that reveals nothing of it: two places
    /// that print the same fingerprint seal with the same key.
    pub fn fingerprint(&self) -> String {
        hex(&blake3::keyed_hash(&self.key, b"wasabi key fingerprint").as_bytes()[..8])
    }

    fn mac(&self, artifact: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.key, artifact)
    }

    /// `artifact` with this installation's seal appended.
    pub fn seal(&self, artifact: &[u8]) -> Vec<u8> {
        let tag = self.mac(artifact);
        let mut out = Vec::with_capacity(artifact.len() + MAC_LEN + TRAILER.len());
        out.extend_from_slice(artifact);
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(TRAILER);
        out
    }

    /// The artifact inside `sealed`, if this installation sealed it and it
    /// is unchanged. The comparison takes constant time.
    pub fn open<'a>(&self, sealed: &'a [u8]) -> Result<&'a [u8], SealError> {
        let body_len = sealed
            .len()
            .checked_sub(MAC_LEN + TRAILER.len())
            .filter(|_| sealed.ends_with(TRAILER))
            .ok_or(SealError::Unsealed)?;
        let (artifact, rest) = sealed.split_at(body_len);
        let tag: [u8; MAC_LEN] = rest[..MAC_LEN].try_into().expect("MAC_LEN bytes");
        // `blake3::Hash`'s equality takes constant time.
        if self.mac(artifact) != blake3::Hash::from(tag) {
            return Err(SealError::Mismatch {
                key: self.path.clone(),
            });
        }
        Ok(artifact)
    }
}

/// Whether `bytes` end like a sealed file (says nothing of whose seal).
pub fn looks_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= MAC_LEN + TRAILER.len() && bytes.ends_with(TRAILER)
}

fn read_key(path: &Path) -> Result<InstallKey, SealError> {
    let io = |source| SealError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SealError::BadKey {
            path: path.to_path_buf(),
            reason: "others may read or change it (make it mode 0600, or delete it to make a new one)",
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey {
        path: path.to_path_buf(),
        reason: "it is not 32 bytes long (delete it to make a new one)",
    })?;
    Ok(InstallKey {
        key,
        path: path.to_path_buf(),
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasabi-seal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_key_is_made_once_and_kept_private() {
        let dir = scratch("once");
        let path = dir.join(KEY_FILE_NAME);
        let a = InstallKey::load_or_create(&path).unwrap();
        let b = InstallKey::load_or_create(&path).unwrap();
        assert_eq!(a.key, b.key);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = a.seal(b"code");
        assert_eq!(b.open(&sealed).unwrap(), b"code");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_creators_agree_on_one_key() {
        let dir = scratch("race");
        let path = dir.join(KEY_FILE_NAME);
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| InstallKey::load_or_create(&path).unwrap().key))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forged_foreign_and_unsealed_files_are_refused() {
        let dir = scratch("forge");
        let ours = InstallKey::load_or_create(&dir.join("a").join(KEY_FILE_NAME)).unwrap();
        let theirs = InstallKey::load_or_create(&dir.join("b").join(KEY_FILE_NAME)).unwrap();
        let sealed = ours.seal(b"machine code");
        // Another installation's seal.
        assert!(matches!(
            theirs.open(&sealed),
            Err(SealError::Mismatch { .. })
        ));
        // One flipped bit anywhere in the artifact or the tag.
        for i in 0..sealed.len() - TRAILER.len() {
            let mut forged = sealed.clone();
            forged[i] ^= 0x01;
            assert!(ours.open(&forged).is_err(), "bit flip at {i} accepted");
        }
        // Bytes appended or cut away.
        let mut longer = sealed.clone();
        longer.insert(0, 0);
        assert!(ours.open(&longer).is_err());
        assert!(ours.open(&sealed[1..]).is_err());
        // No seal, and files too short to hold one.
        assert!(matches!(
            ours.open(b"machine code"),
            Err(SealError::Unsealed)
        ));
        assert!(matches!(ours.open(TRAILER), Err(SealError::Unsealed)));
        assert!(matches!(ours.open(b""), Err(SealError::Unsealed)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unfit_key_file_is_refused() {
        let dir = scratch("unfit");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(KEY_FILE_NAME);
        std::fs::write(&path, [7u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = InstallKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("others may read"), "{err}");
        std::fs::write(&path, [7u8; 5]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = InstallKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("not 32 bytes"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

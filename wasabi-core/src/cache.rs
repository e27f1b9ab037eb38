//! The on-disk cache of compiled modules.
//!
//! Compiling a Go module takes seconds (they are 2–8 MB of wasm); loading a
//! compiled one takes milliseconds. Entries are keyed by the SHA-256 of the
//! module's bytes and the engine's compatibility hash (wasmtime version,
//! target CPU features, compiler settings), so a module compiled by another
//! build or for another machine is never picked up. Each entry is sealed
//! with this installation's key ([`crate::seal`]): a truncated, corrupted,
//! planted or foreign entry is refused before wasmtime sees it, and the
//! module is recompiled. Entries are written to a temporary file and renamed
//! into place, so a reader never sees half an entry.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::seal::{InstallKey, hex};

/// Bumped when the layout of the cache changes.
const FORMAT: &str = "wasabi-cache-v2";

/// The on-disk compiled-module cache.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    key: InstallKey,
}

/// The default cache folder: `$XDG_CACHE_HOME/wasabi`, else
/// `$HOME/.cache/wasabi`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasabi"))
}

impl ModuleCache {
    /// A cache in `dir` (created on first write) whose entries are sealed,
    /// and checked, with `key`.
    pub fn new(dir: impl Into<PathBuf>, key: InstallKey) -> ModuleCache {
        ModuleCache {
            dir: dir.into(),
            key,
        }
    }

    /// The folder entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `wasm` compiled by `engine`.
    pub fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut compat = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let mut h = Sha256::new();
        h.update(FORMAT.as_bytes());
        h.update(compat.finish().to_le_bytes());
        h.update(Sha256::digest(wasm));
        hex(&h.finalize())
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// Loads the entry for `key`, if there is a sound one. A missing entry is
    /// `None`; so is one this installation did not seal (damaged, truncated,
    /// planted, or from another installation), after a warning.
    pub fn get(&self, engine: &Engine, key: &str) -> Option<Module> {
        let entry = self.entry_path(key);
        let bytes = std::fs::read(&entry).ok()?;
        let artifact = match self.key.open(&bytes) {
            Ok(artifact) => artifact,
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "cache entry refused: {e}; recompiling");
                return None;
            }
        };
        // SAFETY: the bytes are exactly what this installation sealed after
        // wasmtime serialized a module it compiled: the seal is an HMAC under
        // a key only this user's Wasabi directory holds, checked over the
        // very bytes handed to wasmtime (read once, so the file cannot change
        // in between). wasmtime still checks version and CPU features.
        match unsafe { Module::deserialize(engine, artifact) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "cache entry unusable ({e}); recompiling");
                None
            }
        }
    }

    /// Stores `module` under `key`. Failures are logged, not fatal: a
    /// read-only cache only costs speed.
    pub fn put(&self, key: &str, module: &Module) {
        if let Err(e) = self.try_put(key, module) {
            tracing::warn!(dir = %self.dir.display(), "could not write the module cache: {e}");
        }
    }

    fn try_put(&self, key: &str, module: &Module) -> std::io::Result<()> {
        let bytes = module.serialize().map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(&self.entry_path(key), &self.key.seal(&bytes))
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp-{}", hex(&nonce)));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

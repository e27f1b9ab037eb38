//! The on-disk cache of compiled modules.
//!
//! Compiling a Go module takes seconds (they are 2–8 MB of wasm); loading a
//! compiled one takes milliseconds. Entries are keyed by the SHA-256 of the
//! module's bytes and the engine's compatibility hash (wasmtime version,
//! target CPU features, compiler settings), so a module compiled by another
//! build or for another machine is never picked up. Each entry carries a
//! checksum beside it: a truncated, corrupted or foreign file is detected
//! before wasmtime sees it, and the module is recompiled. Entries are
//! written to a temporary file and renamed into place, so a reader never
//! sees half an entry.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Bumped when the layout of the cache changes.
const FORMAT: &str = "wasabi-cache-v1";

/// The on-disk compiled-module cache.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModuleCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> ModuleCache {
        ModuleCache { dir: dir.into() }
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

    fn entry_paths(&self, key: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{key}.cwasm")),
            self.dir.join(format!("{key}.sha256")),
        )
    }

    /// Loads the entry for `key`, if there is a sound one. A missing entry is
    /// `None`; so is a damaged one, after a warning.
    pub fn get(&self, engine: &Engine, key: &str) -> Option<Module> {
        let (artifact, checksum) = self.entry_paths(key);
        let expected = std::fs::read_to_string(&checksum).ok()?;
        let bytes = std::fs::read(&artifact).ok()?;
        if hex(&Sha256::digest(&bytes)) != expected.trim() {
            tracing::warn!(entry = %artifact.display(), "cache entry is damaged; recompiling");
            return None;
        }
        drop(bytes);
        // SAFETY: the file is one this cache wrote for an engine with the same
        // compatibility hash, and its checksum matches what was written, so it
        // is the artifact wasmtime produced. Mapping it (rather than copying)
        // lets memory images be shared copy-on-write.
        match unsafe { Module::deserialize_file(engine, &artifact) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(entry = %artifact.display(), "cache entry unusable ({e}); recompiling");
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
        let (artifact, checksum) = self.entry_paths(key);
        write_atomically(&artifact, &bytes)?;
        write_atomically(&checksum, hex(&Sha256::digest(&bytes)).as_bytes())
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

//! The on-disk cache of compiled modules, which manages its own size.
//!
//! Compiling a Go module takes seconds (they are 2–11 MB of wasm); loading a
//! compiled one takes milliseconds. Entries are keyed by the BLAKE3 hash of
//! the module's bytes, the compiler [`Tier`] and the engine's compatibility hash
//! (wasmtime version, target CPU features, compiler settings), so code from
//! another tier, build or machine is never picked up.
//!
//! Each entry is sealed with this installation's key ([`crate::seal`]): a
//! truncated, corrupted, planted or foreign entry is refused before
//! wasmtime sees it, and the module is recompiled. Inside the seal, a small
//! header names the module, its tier and when it was made; an entry whose
//! header names another tier than the one asked for is refused too (and
//! wasmtime refuses Winch code in a Cranelift engine on its own). Entries
//! are written to a temporary file and renamed into place, so a reader never
//! sees half an entry, and two writers of one entry leave one good entry.
//!
//! The cache keeps itself under a size cap ([`DEFAULT_MAX_BYTES`] unless
//! configured): each write evicts the least recently used entries (an
//! entry's modification time is its last use: loading it touches it) until
//! the rest fit.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasmtime::{Engine, Module};

use crate::engine::Tier;
use crate::seal::{InstallKey, hex};

/// Bumped when the layout of the cache changes.
const FORMAT: &str = "wasabi-cache-v3";
/// What an entry's file name ends with.
const ENTRY_SUFFIX: &str = "cwasm";
/// What the header of an entry starts with.
const HEADER_MAGIC: &[u8; 8] = b"wasabi\x01h";
/// Most bytes an entry's header may take.
const MAX_HEADER: usize = 4096;
/// A temporary file older than this is left over from a writer that died.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Background compiles that may run into one cache at once.
pub const BACKGROUND_SLOTS: usize = 2;

/// The cache's size cap unless configured: 1 GiB, about 40 large Go
/// modules (a Cranelift entry is 2–3 times its module's size).
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The on-disk compiled-module cache.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    key: InstallKey,
    max_bytes: u64,
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

/// What an entry says of itself: read from its header, for listing.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    /// Its cache key (the file name without `.cwasm`).
    pub key: String,
    /// The file name of the module it was compiled from, as its header
    /// says; a header is only checked when the entry is loaded.
    pub module: String,
    /// Which compiler made it; `None` when the header cannot be read (a
    /// damaged or foreign file, which a load refuses).
    pub tier: Option<Tier>,
    /// Size on disk, in bytes.
    pub bytes: u64,
    /// When it was last loaded or written.
    pub last_used: SystemTime,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed.
    pub entries: usize,
    /// Bytes freed (entries and leftover temporary files).
    pub bytes: u64,
}

/// The sealed header of an entry: what `wasabi cache list` shows, and the
/// tier a load checks.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    module: String,
    tier: String,
}

/// A hold on compiling one entry (see [`ModuleCache::lock_fill`]); released
/// when dropped, or when the holding process dies.
#[derive(Debug)]
pub struct FillLock {
    file: std::fs::File,
    /// The lock file to remove on release, if it is one per entry.
    path: Option<PathBuf>,
}

impl Drop for FillLock {
    fn drop(&mut self) {
        // Unlinked while still held, so no later filler waits on a stale
        // file; the lock itself goes with the descriptor.
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
        let _ = &self.file;
    }
}

impl ModuleCache {
    /// A cache in `dir` (created on first write) whose entries are sealed,
    /// and checked, with `key`, and which evicts entries past `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, key: InstallKey, max_bytes: u64) -> ModuleCache {
        ModuleCache {
            dir: dir.into(),
            key,
            max_bytes,
        }
    }

    /// The folder entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The key of `wasm` compiled by `engine`, an engine of `tier`.
    pub fn key(engine: &Engine, tier: Tier, wasm: &[u8]) -> String {
        let mut compat = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let mut h = blake3::Hasher::new();
        h.update(FORMAT.as_bytes());
        h.update(tier.name().as_bytes());
        h.update(&compat.finish().to_le_bytes());
        h.update(blake3::hash(wasm).as_bytes());
        hex(h.finalize().as_bytes())
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{ENTRY_SUFFIX}"))
    }

    /// Whether an entry for `key` exists (sound or not).
    pub fn contains(&self, key: &str) -> bool {
        self.entry_path(key).is_file()
    }

    /// Loads the entry for `key`, made by `tier`, if there is a sound one,
    /// and marks it used. A missing entry is `None`; so is one this
    /// installation did not seal (damaged, truncated, planted, or from
    /// another installation) or of another tier, after a warning.
    pub fn get(&self, engine: &Engine, tier: Tier, key: &str) -> Option<Module> {
        let entry = self.entry_path(key);
        // Non-blocking open, then a regular file only: a FIFO or device
        // planted under an entry's name would otherwise hang the run.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&entry)
            .ok()?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            tracing::warn!(entry = %entry.display(), "cache entry refused: not a regular file; recompiling");
            return None;
        }
        let mut bytes = Vec::new();
        if let Err(e) = file.read_to_end(&mut bytes) {
            tracing::warn!(entry = %entry.display(), "cache entry unreadable: {e}; recompiling");
            return None;
        }
        let refuse = |why: String| {
            tracing::warn!(entry = %entry.display(), "cache entry refused: {why}; recompiling");
            None
        };
        let body = match self.key.open(&bytes) {
            Ok(body) => body,
            Err(e) => return refuse(e.to_string()),
        };
        let (header, artifact) = match split_header(body) {
            Some(parts) => parts,
            None => return refuse("its header is damaged".into()),
        };
        if header.tier != tier.name() {
            return refuse(format!(
                "it holds {} code, not {tier} code",
                header.tier.escape_debug()
            ));
        }
        // SAFETY: the bytes are exactly what this installation sealed after
        // wasmtime serialized a module it compiled: the seal is a keyed BLAKE3 MAC under
        // a key only this user's Wasabi directory holds, checked over the
        // very bytes handed to wasmtime (read once, so the file cannot change
        // in between). wasmtime still checks version, compiler and CPU
        // features.
        match unsafe { Module::deserialize(engine, artifact) } {
            Ok(module) => {
                // Its last use, for eviction; a read-only cache keeps the
                // old time, which only costs eviction order.
                let _ = file.set_modified(SystemTime::now());
                Some(module)
            }
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "cache entry unusable ({e}); recompiling");
                None
            }
        }
    }

    /// Stores `module`, compiled from the module named `name` by `tier`,
    /// under `key`, then evicts least recently used entries past the size
    /// cap. Failures are logged, not fatal: a read-only cache only costs
    /// speed.
    pub fn put(&self, key: &str, tier: Tier, name: &str, module: &Module) {
        if let Err(e) = self.try_put(key, tier, name, module) {
            tracing::warn!(dir = %self.dir.display(), "could not write the module cache: {e}");
            return;
        }
        if let Err(e) = self.evict(Some(key)) {
            tracing::warn!(dir = %self.dir.display(), "could not prune the module cache: {e}");
        }
    }

    fn try_put(&self, key: &str, tier: Tier, name: &str, module: &Module) -> std::io::Result<()> {
        let artifact = module.serialize().map_err(std::io::Error::other)?;
        let header = serde_json::to_vec(&Header {
            module: name.chars().take(256).collect(),
            tier: tier.name().into(),
        })
        .map_err(std::io::Error::other)?;
        let mut body = Vec::with_capacity(HEADER_MAGIC.len() + 4 + header.len() + artifact.len());
        body.extend_from_slice(HEADER_MAGIC);
        body.extend_from_slice(&(header.len() as u32).to_le_bytes());
        body.extend_from_slice(&header);
        body.extend_from_slice(&artifact);
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(&self.entry_path(key), &self.key.seal(&body))
    }

    /// Takes the hold on compiling the entry `key`, so that of several
    /// processes about to compile the same module in the background, one
    /// does. `None` when another process holds it. The hold is an advisory
    /// lock (`flock`) on a file beside the entries, released when the
    /// [`FillLock`] drops or its process dies.
    pub fn lock_fill(&self, key: &str) -> std::io::Result<Option<FillLock>> {
        let path = self.dir.join(format!("{key}.lock"));
        Ok(try_lock(&self.dir, &path)?.map(|file| FillLock {
            file,
            path: Some(path),
        }))
    }

    /// One of [`BACKGROUND_SLOTS`] holds on running a background compile
    /// into this cache, or `None` when all are taken: a burst of new
    /// modules (`go test ./...` runs a new test binary per package) must
    /// not start a compiler per module, each holding hundreds of MiB while
    /// it waits for idle CPU. A module turned away now is compiled by a
    /// later run's background compile.
    pub fn background_slot(&self) -> std::io::Result<Option<FillLock>> {
        for slot in 0..BACKGROUND_SLOTS {
            let path = self.dir.join(format!("background-{slot}.lock"));
            // Kept in place on release: another process may be about to
            // open it.
            if let Some(file) = try_lock(&self.dir, &path)? {
                return Ok(Some(FillLock { file, path: None }));
            }
        }
        Ok(None)
    }

    /// Every entry, most recently used first.
    pub fn entries(&self) -> std::io::Result<Vec<CacheEntry>> {
        list(&self.dir)
    }

    /// Removes least recently used entries until the rest take at most
    /// `max_bytes`, and temporary files left by writers that died.
    pub fn prune(&self, max_bytes: u64) -> std::io::Result<Pruned> {
        self.evict_to(max_bytes, None)
    }

    /// Removes every entry (and leftover temporary file).
    pub fn clear(&self) -> std::io::Result<Pruned> {
        self.evict_to(0, None)
    }

    /// [`ModuleCache::prune`] to the cap, keeping `keep` (just written).
    fn evict(&self, keep: Option<&str>) -> std::io::Result<Pruned> {
        self.evict_to(self.max_bytes, keep)
    }

    fn evict_to(&self, max_bytes: u64, keep: Option<&str>) -> std::io::Result<Pruned> {
        let mut pruned = Pruned::default();
        if let Ok(listing) = std::fs::read_dir(&self.dir) {
            for item in listing.flatten() {
                let path = item.path();
                let stale = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.starts_with("tmp-"))
                    && item
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_TEMP || max_bytes == 0);
                if stale {
                    let size = item.metadata().map(|m| m.len()).unwrap_or(0);
                    if std::fs::remove_file(&path).is_ok() {
                        pruned.bytes += size;
                    }
                }
            }
        }
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        // Oldest last use first.
        for entry in entries.iter().rev() {
            if total <= max_bytes {
                break;
            }
            if keep == Some(entry.key.as_str()) {
                continue;
            }
            match std::fs::remove_file(self.entry_path(&entry.key)) {
                Ok(()) => {
                    total -= entry.bytes;
                    pruned.entries += 1;
                    pruned.bytes += entry.bytes;
                }
                // Another process removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= entry.bytes,
                Err(e) => return Err(e),
            }
        }
        Ok(pruned)
    }
}

/// Every entry of the cache in `dir`, most recently used first, as their
/// headers describe them (read without a key: nothing is loaded).
pub fn list(dir: &Path) -> std::io::Result<Vec<CacheEntry>> {
    let mut entries = Vec::new();
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(e),
    };
    for item in listing {
        let item = item?;
        let path = item.path();
        let Some(key) = entry_key(&path) else {
            continue;
        };
        let Ok(meta) = item.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let header = read_header(&path);
        entries.push(CacheEntry {
            key: key.to_string(),
            module: header
                .as_ref()
                .map(|h| h.module.clone())
                .unwrap_or_else(|| "?".into()),
            tier: header.and_then(|h| Tier::from_name(&h.tier)),
            bytes: meta.len(),
            last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    entries.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.key.cmp(&b.key)));
    Ok(entries)
}

/// The lock file `path` in the cache folder `dir`, opened (made if need
/// be) and locked with `flock`, or `None` when another process holds it.
/// A symbolic link planted under its name is not followed.
fn try_lock(dir: &Path, path: &Path) -> std::io::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The key of the entry file at `path`, if it is one.
fn entry_key(path: &Path) -> Option<&str> {
    if path.extension()? != ENTRY_SUFFIX {
        return None;
    }
    let key = path.file_stem()?.to_str()?;
    (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then_some(key)
}

/// The header of a sealed entry's body and the artifact after it.
fn split_header(body: &[u8]) -> Option<(Header, &[u8])> {
    let rest = body.strip_prefix(HEADER_MAGIC)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    if len > MAX_HEADER {
        return None;
    }
    let header = serde_json::from_slice(rest.get(4..4 + len)?).ok()?;
    Some((header, &rest[4 + len..]))
}

/// The header at the start of the entry file `path`, read without checking
/// the seal (for listing only: a load checks everything).
fn read_header(path: &Path) -> Option<Header> {
    let mut head = Vec::with_capacity(HEADER_MAGIC.len() + 4 + MAX_HEADER);
    std::fs::File::open(path)
        .ok()?
        .take((HEADER_MAGIC.len() + 4 + MAX_HEADER) as u64)
        .read_to_end(&mut head)
        .ok()?;
    let rest = head.strip_prefix(HEADER_MAGIC)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    serde_json::from_slice(rest.get(4..4 + len.min(MAX_HEADER))?).ok()
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

//! Loading a guest module from a file: recognising what the file is and
//! which kind of guest it is (Go js/wasm, or a WASI preview-1 command), and
//! compiling it (or taking it from the cache, or, only when the caller
//! allows it, deserializing a `.cwasm` this installation sealed).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasabi_gojs::Abi;
use wasmtime::{Engine, InstancePre, Module, Precompiled};

use crate::engine::Tier;
use crate::seal::{InstallKey, SealError};
use crate::store::TenantData;

/// Where a loaded module's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModuleOrigin {
    /// Compiled now, taking this long.
    Compiled(Duration),
    /// Loaded from the compiled-module cache.
    Cached,
    /// Deserialized from a `.cwasm` file made by `wasabi compile`.
    Precompiled,
}

/// Whether a file of precompiled machine code may be loaded. Loading one runs
/// its code natively, so it is refused unless the user asked for it, and even
/// then only this installation's own sealed output is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrecompiledCode {
    /// Only WebAssembly (`\0asm`) is loaded; anything else is "not a
    /// WebAssembly module".
    #[default]
    Refused,
    /// A `.cwasm` sealed by this installation is loaded too.
    Allowed,
}

/// What kind of guest a module is, read from its imports: it decides
/// which world a tenant of the module gets (see
/// [`Runtime::run`](crate::Runtime::run)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// A Go program built with `GOOS=js GOARCH=wasm`, importing module
    /// `gojs` (Go 1.21 and later) or `go` (Go 1.20 and earlier).
    GoJs(Abi),
    /// A WASI preview-1 command: it imports `wasi_snapshot_preview1` (or
    /// nothing) and exports `_start` — Rust, C, AssemblyScript, Go with
    /// `GOOS=wasip1`.
    WasiP1,
}

impl GuestKind {
    /// The kind of a module with these import modules and exports, or why
    /// it is none that Wasabi runs.
    fn of<'a>(
        imports: impl IntoIterator<Item = &'a str>,
        exports: impl IntoIterator<Item = &'a str>,
    ) -> Result<GuestKind, NotAGuest> {
        let imports: Vec<&str> = imports.into_iter().collect();
        if let Some(abi) = Abi::from_import_modules(imports.iter().copied()) {
            return Ok(GuestKind::GoJs(abi));
        }
        let exports: Vec<&str> = exports.into_iter().collect();
        let wasi = imports.iter().all(|m| *m == WASI_P1);
        match (
            wasi,
            exports.contains(&"_start"),
            exports.contains(&"_initialize"),
        ) {
            (true, true, _) => Ok(GuestKind::WasiP1),
            (true, false, true) => Err(NotAGuest::Reactor),
            (true, false, false) if !imports.is_empty() => Err(NotAGuest::NoStart),
            _ => Err(NotAGuest::Unknown(
                imports
                    .iter()
                    .find(|m| **m != WASI_P1)
                    .map(|m| m.to_string()),
            )),
        }
    }
}

/// The import module of WASI preview 1.
const WASI_P1: &str = "wasi_snapshot_preview1";

/// Why a valid module is no guest Wasabi runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAGuest {
    /// A WASI reactor (a library: `_initialize`, no `_start`).
    Reactor,
    /// A WASI module without `_start`.
    NoStart,
    /// Neither Go js/wasm nor WASI; the first import module that is not
    /// WASI, if any.
    Unknown(Option<String>),
}

impl std::fmt::Display for NotAGuest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAGuest::Reactor => f.write_str(
                "a WASI reactor (it exports `_initialize` and no `_start`): Wasabi runs WASI \
                 commands, which start at `_start`; build it as a command (for Rust, a `bin` \
                 crate; for C, without `-mexec-model=reactor`)",
            ),
            NotAGuest::NoStart => f.write_str(
                "a WASI module without `_start`: Wasabi runs WASI commands, which start there",
            ),
            NotAGuest::Unknown(module) => {
                f.write_str("not a module Wasabi runs: ")?;
                match module {
                    Some(m) => write!(f, "it imports from `{m}`, which is ")?,
                    None => f.write_str("it imports nothing and exports no `_start`, so it is ")?,
                }
                f.write_str(
                    "neither Go js/wasm (imports from `gojs`, or `go` before Go 1.21; \
                     GOOS=js GOARCH=wasm) nor a WASI preview-1 command (imports from \
                     `wasi_snapshot_preview1` and exports `_start`; GOOS=wasip1, \
                     wasm32-wasip1)",
                )
            }
        }
    }
}

/// A compiled module, ready to instantiate as many tenants as wanted.
#[derive(Clone)]
pub struct GuestModule {
    pub(crate) module: Module,
    pub(crate) kind: GuestKind,
    pub(crate) path: PathBuf,
    pub(crate) origin: ModuleOrigin,
    pub(crate) tier: Tier,
    /// For Winch code of a module whose Cranelift code is being made in
    /// the background: where the later tenants find it.
    pub(crate) upgrade: Option<Arc<Upgrade>>,
    /// The module with its imports resolved, set by
    /// [`Runtime::load`](crate::Runtime::load): every tenant of the module
    /// instantiates from it without linking again.
    pub(crate) pre: Option<Pre>,
}

/// How tenants of a module running on Winch code move to Cranelift code:
/// the cache key the Cranelift code is stored under (by a background
/// compile, in this process or a helper), and the loaded result, kept
/// once found.
#[derive(Debug)]
pub(crate) struct Upgrade {
    pub(crate) cranelift_key: Option<String>,
    pub(crate) ready: Mutex<Option<GuestModule>>,
}

/// A module with its imports resolved, for the store of its kind.
#[derive(Clone)]
pub(crate) enum Pre {
    Go(InstancePre<TenantData<wasabi_gojs::GoHost>>),
    Wasi(InstancePre<TenantData<wasabi_wasi::WasiHost>>),
}

impl std::fmt::Debug for GuestModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestModule")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("origin", &self.origin)
            .field("tier", &self.tier)
            .finish_non_exhaustive()
    }
}

impl GuestModule {
    /// What kind of guest it is.
    pub fn kind(&self) -> GuestKind {
        self.kind
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where its machine code came from.
    pub fn origin(&self) -> ModuleOrigin {
        self.origin
    }

    /// Which compiler made its machine code.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The compiled wasmtime module.
    pub fn module(&self) -> &Module {
        &self.module
    }
}

/// Why a file could not be loaded as a guest module. Every message names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is neither WebAssembly nor a precompiled module.
    #[error("{}: not a WebAssembly file (no `\\0asm` header){hint}", .path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
        /// A hint about what it looks like instead.
        hint: &'static str,
    },
    /// The file ends before its sections do.
    #[error("{}: truncated module: {reason}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where it ends.
        reason: String,
    },
    /// The bytes are not a valid module.
    #[error("{}: invalid WebAssembly module: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A valid module of no kind Wasabi runs.
    #[error("{}: {why}", .path.display())]
    NotAGuest {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        why: NotAGuest,
    },
    /// Precompiled machine code, which was not allowed.
    #[error(
        "{}: not a WebAssembly module: it is precompiled machine code, which is loaded only when explicitly allowed",
        .path.display()
    )]
    PrecompiledRefused {
        /// The file.
        path: PathBuf,
    },
    /// A precompiled module this installation cannot load: not sealed by
    /// it, changed since, or made for another build or CPU.
    #[error(
        "{}: precompiled module is not usable here ({reason}); recompile it with `wasabi compile`",
        .path.display()
    )]
    Precompiled {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A compiler's engine could not be built.
    #[error("{0}")]
    Engine(String),
    /// Writing a compiled module failed.
    #[error("{}: {source}", .path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// What a file turned out to be, with its bytes (read once: what was
/// checked is what is compiled or deserialized).
pub(crate) enum Inspected {
    Wasm { bytes: Vec<u8>, kind: GuestKind },
    Precompiled { bytes: Vec<u8> },
}

/// Checks `bytes`, read from `path` (or held in memory under that name): a
/// guest module (Go js/wasm or a WASI command), or, when `precompiled`
/// allows it, what looks like precompiled code (its seal is checked when it
/// is loaded).
pub(crate) fn inspect(
    path: &Path,
    bytes: Vec<u8>,
    precompiled: PrecompiledCode,
) -> Result<Inspected, LoadError> {
    if !bytes.starts_with(WASM_MAGIC) {
        let machine_code = Engine::detect_precompiled(&bytes) == Some(Precompiled::Module)
            || crate::seal::looks_sealed(&bytes);
        // When precompiled code is allowed, any ELF file is a candidate: its
        // seal decides, and says why it is refused.
        if machine_code
            || (precompiled == PrecompiledCode::Allowed && bytes.starts_with(b"\x7fELF"))
        {
            return match precompiled {
                PrecompiledCode::Allowed => Ok(Inspected::Precompiled { bytes }),
                PrecompiledCode::Refused => Err(LoadError::PrecompiledRefused {
                    path: path.to_path_buf(),
                }),
            };
        }
        let hint = if bytes.starts_with(b"\x7fELF") {
            "; it looks like a native executable"
        } else if bytes.is_empty() {
            "; the file is empty"
        } else if bytes.starts_with(b"(module") {
            "; it looks like WebAssembly text, which Wasabi does not run"
        } else {
            ""
        };
        return Err(LoadError::NotWasm {
            path: path.to_path_buf(),
            hint,
        });
    }
    let kind = guest_kind(path, &bytes)?;
    Ok(Inspected::Wasm { bytes, kind })
}

/// Scans the module's sections (without compiling) for its import modules
/// and exports: which kind of guest it is.
fn guest_kind(path: &Path, bytes: &[u8]) -> Result<GuestKind, LoadError> {
    let mut modules: Vec<String> = Vec::new();
    let mut exports: Vec<String> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| classify(path, e))? {
            wasmparser::Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err(LoadError::Invalid {
                    path: path.to_path_buf(),
                    reason: "this is a WebAssembly component, not a core module".into(),
                });
            }
            wasmparser::Payload::ImportSection(reader) => {
                for group in reader {
                    for import in group.map_err(|e| classify(path, e))? {
                        let (_, import) = import.map_err(|e| classify(path, e))?;
                        modules.push(import.module.to_string());
                    }
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    exports.push(export.map_err(|e| classify(path, e))?.name.to_string());
                }
            }
            _ => {}
        }
    }
    GuestKind::of(
        modules.iter().map(String::as_str),
        exports.iter().map(String::as_str),
    )
    .map_err(|why| LoadError::NotAGuest {
        path: path.to_path_buf(),
        why,
    })
}

fn classify(path: &Path, e: wasmparser::BinaryReaderError) -> LoadError {
    let reason = format!("{} (at byte {})", e.message(), e.offset());
    if e.message().contains("unexpected end") {
        LoadError::Truncated {
            path: path.to_path_buf(),
            reason,
        }
    } else {
        LoadError::Invalid {
            path: path.to_path_buf(),
            reason,
        }
    }
}

/// Compiles `bytes` with `engine`, an engine of `tier`.
pub(crate) fn compile(
    engine: &Engine,
    tier: Tier,
    path: &Path,
    bytes: &[u8],
) -> Result<(Module, Duration), LoadError> {
    let started = Instant::now();
    let module = Module::new(engine, bytes).map_err(|e| LoadError::Invalid {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    })?;
    let took = started.elapsed();
    tracing::info!(module = %path.display(), ms = took.as_millis() as u64, "compiled with {tier}");
    // A compile's working memory (tens of MiB for a large module) is freed
    // now; returned to the system, it is not counted against a container
    // or a process whose guest runs next.
    crate::release::return_freed_memory();
    Ok((module, took))
}

/// Deserializes `bytes`, a `.cwasm` made by `wasabi compile`, once its seal
/// proves this installation made it.
pub(crate) fn load_precompiled(
    engine: &Engine,
    key: Result<&InstallKey, &SealError>,
    path: &Path,
    bytes: &[u8],
) -> Result<GuestModule, LoadError> {
    let refused = |reason: String| LoadError::Precompiled {
        path: path.to_path_buf(),
        reason,
    };
    let artifact = key
        .map_err(|e| refused(format!("cannot check its seal: {e}")))?
        .open(bytes)
        .map_err(|e| refused(e.to_string()))?;
    // SAFETY: deserializing runs the artifact's machine code. These bytes
    // carry this installation's seal, a keyed BLAKE3 MAC under a key only the user's
    // Wasabi directory holds, checked over exactly the bytes handed to
    // wasmtime: `wasabi compile` made them here from WebAssembly. wasmtime
    // still checks the version, settings and CPU features.
    let module =
        unsafe { Module::deserialize(engine, artifact) }.map_err(|e| refused(format!("{e:#}")))?;
    let kind = GuestKind::of(
        module.imports().map(|i| i.module()),
        module.exports().map(|e| e.name()),
    )
    .map_err(|why| LoadError::NotAGuest {
        path: path.to_path_buf(),
        why,
    })?;
    Ok(GuestModule {
        module,
        kind,
        path: path.to_path_buf(),
        pre: None,
        origin: ModuleOrigin::Precompiled,
        tier: Tier::Cranelift,
        upgrade: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_read_from_imports_and_exports() {
        let kind = |imports: &[&str], exports: &[&str]| {
            GuestKind::of(imports.iter().copied(), exports.iter().copied())
        };
        assert_eq!(
            kind(&["gojs"], &["run", "resume"]),
            Ok(GuestKind::GoJs(Abi::Gojs))
        );
        assert_eq!(kind(&["go"], &["run"]), Ok(GuestKind::GoJs(Abi::Legacy)));
        // Go js/wasm wins even beside WASI imports.
        assert_eq!(
            kind(&[WASI_P1, "gojs"], &["_start"]),
            Ok(GuestKind::GoJs(Abi::Gojs))
        );
        assert_eq!(
            kind(&[WASI_P1], &["_start", "memory"]),
            Ok(GuestKind::WasiP1)
        );
        // A command that needs nothing from the host is a WASI command too.
        assert_eq!(kind(&[], &["_start"]), Ok(GuestKind::WasiP1));
        assert_eq!(kind(&[WASI_P1], &["_initialize"]), Err(NotAGuest::Reactor));
        assert_eq!(kind(&[WASI_P1], &["memory"]), Err(NotAGuest::NoStart));
        assert_eq!(kind(&[], &[]), Err(NotAGuest::Unknown(None)));
        assert_eq!(
            kind(&[WASI_P1, "wasi_unstable"], &["_start"]),
            Err(NotAGuest::Unknown(Some("wasi_unstable".into())))
        );
    }
}

//! The world of a WASI preview-1 guest (`wasi_snapshot_preview1`): a Rust,
//! C, AssemblyScript or Go `wasip1` command.
//!
//! The system interface itself is wasmtime-wasi's preview-1 implementation
//! (`wasmtime_wasi::p1`), the one wasmtime's own CLI runs: it is complete and
//! passes the official test suite, and a second implementation would only be
//! a second place for bugs. This crate decides what a guest is given:
//!
//! * its arguments and exactly the environment it was granted — nothing is
//!   inherited from the host;
//! * its standard output and error, written to the tenant's sinks (tagged
//!   per tenant under `wasabi serve`); standard input is empty;
//! * its directories: each mount becomes a preopen, opened by an absolute
//!   host path; a read-only mount gives read-only descriptors. Resolution
//!   below a preopen is wasmtime-wasi's, on `cap-std`, which refuses `..`,
//!   absolute paths and symbolic links that lead outside it, checked at each
//!   step of each path (so a rename cannot move a link out after a check);
//! * clocks and randomness from the host.
//!
//! [`run`] calls the command's `_start`; `proc_exit(n)` ends it with code
//! `n`.

#![deny(missing_docs)]

#[cfg(test)]
mod tests {
    use super::climbs_out;

    #[test]
    fn links_that_climb_out_of_their_preopen_are_seen() {
        for (target, link) in [
            ("/etc/passwd", "l"),
            ("..", "l"),
            ("../x", "l"),
            ("a/../../x", "l"),
            ("../../x", "d/l"),
            ("./../x", "l"),
        ] {
            assert!(climbs_out(target, link), "{target} from {link}");
        }
        for (target, link) in [
            ("x", "l"),
            ("../x", "d/l"),
            ("a/../b", "l"),
            (".", "l"),
            ("d/../../x", "e/l"),
        ] {
            assert!(!climbs_out(target, link), "{target} from {link}");
        }
    }
}

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::{AsContextMut, Instance, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

pub use wasmtime_wasi::p1::WasiP1Ctx as WasiCtx;

/// Where a guest's standard output or error goes.
pub type OutputSink = Box<dyn Write + Send>;

/// A directory of the host the guest sees at `guest`.
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The host directory: an absolute path.
    pub host: PathBuf,
    /// Where the guest finds it (`/`, `/data`, `.`).
    pub guest: String,
    /// Only reading is allowed.
    pub read_only: bool,
}

/// What a WASI guest is given.
pub struct WasiWorld {
    /// `argv`, the program's name first.
    pub args: Vec<String>,
    /// The environment it was granted.
    pub env: Vec<(String, String)>,
    /// Its directories.
    pub preopens: Vec<Preopen>,
    /// Its standard output.
    pub stdout: OutputSink,
    /// Its standard error.
    pub stderr: OutputSink,
    /// The most files and directories it may hold open at once.
    pub max_open_files: usize,
}

/// Descriptors a guest holds beyond its open files: standard streams,
/// preopens, and the streams a call makes for a moment.
const RESERVED_DESCRIPTORS: usize = 16;

/// Why a guest's world could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A mount names a relative host directory.
    #[error("the mount of {0} names a relative host directory; give an absolute path")]
    RelativeMount(PathBuf),
    /// A mount's host directory cannot be opened.
    #[error("cannot open {}: {message}", .host.display())]
    Mount {
        /// The directory.
        host: PathBuf,
        /// Why.
        message: String,
    },
}

/// Why a guest did not run to an exit.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The module exports no `_start`: it is not a WASI command.
    #[error("not a WASI command: it exports no `_start`")]
    NoStart,
    /// The guest trapped (or a limit ended it).
    #[error("{0:?}")]
    Trap(wasmtime::Error),
}

impl WasiWorld {
    /// Builds the guest's context.
    pub fn build(self) -> Result<WasiP1Ctx, WorldError> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args);
        for (k, v) in &self.env {
            b.env(k, v);
        }
        b.stdout(Sink::new(self.stdout));
        b.stderr(Sink::new(self.stderr));
        for p in &self.preopens {
            if p.host.is_relative() {
                return Err(WorldError::RelativeMount(p.host.clone()));
            }
            let perms = if p.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&p.host, &p.guest, perms)
                .map_err(|e| WorldError::Mount {
                    host: p.host.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        let preopens = self.preopens.len();
        let mut ctx = b.build_p1();
        // Every descriptor is an entry of the context's resource table: its
        // capacity is the open-files cap. A guest past it traps (wasmtime-
        // wasi reports a full table as a trap, not as EMFILE) and only it
        // ends: no other tenant's descriptors are touched.
        wasmtime_wasi::WasiView::ctx(&mut ctx)
            .table
            .set_max_capacity(self.max_open_files + preopens + RESERVED_DESCRIPTORS);
        Ok(ctx)
    }
}

/// Defines `wasi_snapshot_preview1` on `linker`, for a store whose data
/// `project` leads to the guest's context.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    project: fn(&mut T) -> &mut WasiP1Ctx,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, project)?;
    // One rule of the sandbox wasmtime-wasi does not keep: it refuses to
    // follow a link out of a preopen, but lets a guest plant one (a link
    // whose target climbs above its mount). The host, or anything else
    // that walks the directory, would follow it; Go js guests are refused
    // such links, and so are WASI guests.
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "path_symlink",
        move |mut caller: wasmtime::Caller<'_, T>,
              (target, target_len, dirfd, link, link_len): (i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let Some(wasmtime::Extern::Memory(memory)) = caller.get_export("memory") else {
                    return Err(wasmtime::Error::msg(
                        "path_symlink: the module exports no memory",
                    ));
                };
                let (bytes, data) = memory.data_and_store_mut(&mut caller);
                let read = |ptr: i32, len: i32| -> wasmtime::Result<String> {
                    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
                    let slice = ptr
                        .checked_add(len)
                        .and_then(|end| bytes.get(ptr..end))
                        .ok_or_else(|| {
                            wasmtime::Error::msg("path_symlink: pointer out of bounds")
                        })?;
                    Ok(String::from_utf8_lossy(slice).into_owned())
                };
                if climbs_out(&read(target, target_len)?, &read(link, link_len)?) {
                    return Ok(wasmtime_wasi::p1::types::Errno::Perm as i32);
                }
                let mut memory = wiggle::GuestMemory::Unshared(bytes);
                let result =
                    wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1::path_symlink(
                        project(data),
                        &mut memory,
                        wiggle::GuestPtr::new((target as u32, target_len as u32)),
                        wasmtime_wasi::p1::types::Fd::from(dirfd as u32),
                        wiggle::GuestPtr::new((link as u32, link_len as u32)),
                    )
                    .await;
                match result {
                    Ok(()) => Ok(0),
                    Err(e) => Ok(e.downcast()? as i32),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Whether a link at `link` (relative to a preopen: wasi-libc and Go
/// resolve every path to a preopen and a path below it) pointing to
/// `target` would lead out of the preopen: an absolute target, or one whose
/// `..` climb above the preopen from the link's directory.
fn climbs_out(target: &str, link: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    // The depth of the link's directory below the preopen.
    let mut depth: i64 = 0;
    let parents = link.rsplit_once('/').map_or("", |(dir, _)| dir);
    for part in parents.split('/').chain(target.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Runs the command `instance` to its end: its exit code (0 when `_start`
/// returns).
pub async fn run<T: Send>(
    mut store: impl AsContextMut<Data = T>,
    instance: &Instance,
) -> Result<i32, RunError> {
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|_| RunError::NoStart)?;
    match start.call_async(&mut store, ()).await {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => Err(RunError::Trap(e)),
        },
    }
}

/// A tenant's output sink as a WASI output stream. Writes go straight to
/// the sink, which buffers or tags them itself.
struct Sink(Arc<Mutex<OutputSink>>);

impl Sink {
    fn new(sink: OutputSink) -> Sink {
        Sink(Arc::new(Mutex::new(sink)))
    }
}

impl IsTerminal for Sink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Sink {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(SinkWriter(Arc::clone(&self.0)))
    }
}

struct SinkWriter(Arc<Mutex<OutputSink>>);

impl tokio::io::AsyncWrite for SinkWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut sink = self.0.lock().map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Poll::Ready(sink.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut sink = self.0.lock().map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Poll::Ready(sink.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

//! The world of a WASI preview-1 guest (`wasi_snapshot_preview1`): a Rust,
//! C, AssemblyScript or Go `wasip1` command.
//!
//! The system interface itself is wasmtime-wasi's preview-1 implementation
//! (`wasmtime_wasi::p1`), the one wasmtime's own CLI runs: it is complete and
//! passes the official test suite, and a second implementation would only be
//! a second place for bugs. This crate decides what a guest is given, and
//! adds what wasmtime-wasi does not have:
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
//!   planting a link that leads out is refused here;
//! * clocks and randomness from the host;
//! * sockets, which wasmtime-wasi's preview 1 lacks ([`socket`]): listeners
//!   opened before the guest starts, numbered right after the preopened
//!   directories, with preview 1's `sock_accept`/`sock_recv`/`sock_send`/
//!   `sock_shutdown`; and the WasmEdge extension for opening, binding,
//!   listening and connecting ([`wasmedge`]) — all under the tenant's
//!   network policy and socket cap, through `wasabi-net`. The guest's
//!   descriptor numbers are therefore this crate's ([`fds`]).
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

mod abi;
mod builtin;
mod fds;
mod poll;
mod shadow;
mod socket;
mod wasmedge;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasabi_limits::SharedAdvice;
use wasabi_net::{Doorbell, DrainSignal, NetPolicy, NetStats, SocketQuota, Sockets};
use wasmtime::{AsContextMut, Instance, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::fds::{FdTable, Target};
use crate::socket::{Net, SocketFd};

/// The guest's world: wasmtime-wasi's context, the guest's descriptor
/// numbers, and its network.
pub struct WasiHost {
    p1: WasiP1Ctx,
    fds: FdTable,
    net: Net,
}

impl WasiHost {
    /// Live counts of the guest's sockets, for a supervisor's metrics.
    pub fn net_stats(&self) -> Arc<NetStats> {
        self.net.sockets.stats()
    }
}

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
    /// What it may do on the network.
    pub net: NetPolicy,
    /// The most sockets it may hold open at once.
    pub max_sockets: usize,
    /// Addresses to listen on before it starts, each a descriptor after
    /// the preopened directories, in this order (see
    /// [`NetPolicy::listen_addresses`]).
    pub listeners: Vec<SocketAddr>,
    /// How a denial is worded for the tenant's owner.
    pub advice: SharedAdvice,
    /// Whether it sees `/dev/null` and `/etc/hosts` where no mount covers
    /// them, as js guests always do ([`builtin`]). Other WASI runtimes give
    /// a program exactly its mounts, and the official suite expects no
    /// preopen when none is given, so this is for `go test -exec`, whose
    /// own runner gives a wasip1 test binary the host's whole file system.
    pub builtins: bool,
    /// The supervisor's request to drain: the guest's listeners stop, and
    /// once its last connection has closed, it ends ([`Ending::Drained`]).
    /// It is seen while the guest waits on the network or polls.
    pub drain: DrainSignal,
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
    /// A listener cannot be opened before the guest starts.
    #[error("cannot listen on {addr} for the guest: {message}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
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
    /// Builds the guest's world. Listeners are opened here, so this runs
    /// within a tokio runtime.
    pub fn build(self) -> Result<WasiHost, WorldError> {
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
        let mut p1 = b.build_p1();
        // The open-files cap is kept by the descriptor table (`EMFILE`, as
        // POSIX says). wasmtime-wasi's resource table, whose entries are
        // descriptors and the streams a call makes for a moment, is capped
        // a little above it as a backstop: past it wasmtime-wasi traps.
        wasmtime_wasi::WasiView::ctx(&mut p1)
            .table
            .set_max_capacity(self.max_open_files + preopens + RESERVED_DESCRIPTORS);
        let doorbell = Arc::new(Doorbell::default());
        let mut net = Net {
            sockets: Sockets::new(
                self.net,
                SocketQuota::new(self.max_sockets),
                Arc::clone(&doorbell),
            ),
            doorbell,
            advice: self.advice,
            warned: Default::default(),
            drain: self.drain,
        };
        // Standard streams, then the preopened directories, under
        // wasmtime-wasi's own numbers; then, when asked, the made-up
        // directories of `/dev/null` and `/etc/hosts` that no mount covers;
        // then the listeners, right after the mounts where other runtimes
        // put them (fd 3 with no mount, as programs written for wazero or
        // wasmtime's old `--tcplisten` expect). A preopened directory must
        // come before the first descriptor that is not one: C and Rust
        // programs stop looking for preopens there.
        let mut fds = FdTable::new(3 + preopens as u32, self.max_sockets);
        for (builtin, _) in builtin::Builtin::ALL {
            if self.builtins && !self.preopens.iter().any(|p| builtin.covered_by(&p.guest)) {
                fds.insert(Target::Builtin(builtin::BuiltinFd::Dir {
                    of: builtin,
                    preopen: true,
                }))
                .map_err(|_| WorldError::Mount {
                    host: PathBuf::from(builtin.dir()),
                    message: "no descriptor left".into(),
                })?;
            }
        }
        fds.cap_files(self.max_open_files);
        for addr in self.listeners {
            let network = if addr.is_ipv6() { "tcp6" } else { "tcp4" };
            let id = net
                .sockets
                .listen(network, &addr.to_string())
                .map_err(|e| WorldError::Listen {
                    addr,
                    message: e.advised(&*net.advice),
                })?;
            fds.insert(Target::Socket(SocketFd::preopened(id, addr)))
                .map_err(|_| WorldError::Listen {
                    addr,
                    message: format!("more listeners than the socket cap ({})", self.max_sockets),
                })?;
        }
        Ok(WasiHost { p1, fds, net })
    }
}

/// Defines `wasi_snapshot_preview1` on `linker` (with the WasmEdge socket
/// extension), for a store whose data `project` leads to the guest's world.
///
/// wasmtime-wasi defines every import first; the ones that take or return
/// a descriptor are then redefined over it ([`shadow`]), and the socket
/// extension added ([`wasmedge`]).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    project: fn(&mut T) -> &mut WasiHost,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, move |t| &mut project(t).p1)?;
    linker.allow_shadowing(true);
    let result = shadow::add_to_linker(linker, project)
        .and_then(|()| wasmedge::add_to_linker(linker, project));
    linker.allow_shadowing(false);
    result
}

/// Whether a link at `link` (relative to a preopen: wasi-libc and Go
/// resolve every path to a preopen and a path below it) pointing to
/// `target` would lead out of the preopen: an absolute target, or one whose
/// `..` climb above the preopen from the link's directory.
pub(crate) fn climbs_out(target: &str, link: &str) -> bool {
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

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code (0 when `_start` returned).
    Exited(i32),
    /// It was asked to drain, and did.
    Drained,
}

/// Runs the command `instance` to its end.
pub async fn run<T: Send>(
    mut store: impl AsContextMut<Data = T>,
    instance: &Instance,
) -> Result<Ending, RunError> {
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|_| RunError::NoStart)?;
    match start.call_async(&mut store, ()).await {
        Ok(()) => Ok(Ending::Exited(0)),
        Err(e) => {
            if let Some(I32Exit(code)) = e.downcast_ref::<I32Exit>() {
                return Ok(Ending::Exited(*code));
            }
            if e.downcast_ref::<socket::Drained>().is_some() {
                return Ok(Ending::Drained);
            }
            Err(RunError::Trap(e))
        }
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

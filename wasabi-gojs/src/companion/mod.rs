//! The Go companion module's own imports (module `wasabi`): its sockets and
//! the data path of the host's HTTP server, without `syscall/js`.
//!
//! The companion declares these with `//go:wasmimport wasabi <name>`, so Go
//! calls them directly with integer arguments: ids, addresses and lengths
//! in linear memory. Nothing crosses as a JS value, and no reference is
//! made or finalized per call. The host copies bytes straight between
//! linear memory and the kernel's or hyper's buffers during the call, which
//! is sound because no Go code runs until it returns.
//!
//! Nothing here blocks. A call that cannot go on yet returns [`AGAIN`] and
//! arms a wait; when it is over, the instance's doorbell rings a token
//! (`wasabi_net::token`: the kind in the upper 32 bits, the socket or request
//! id in the lower). The event loop then calls the callback the guest
//! registered with `wasabi.net.setWake` — with no arguments, once per batch
//! — and the guest takes the tokens with `poll` and wakes the goroutines
//! that wait for them. A token waits at most once, so however busy its
//! sockets, a guest's tokens are bounded by what it holds.
//!
//! | import | result |
//! |---|---|
//! | `poll(buf, cap) -> i32` | tokens (`u64` each) copied to `buf`: what woke the guest |
//! | `last_error(buf, cap) -> i32` | the length of the last failure's message, written at `buf` if it fits |
//!
//! The sockets' imports are in [`sockets`], the HTTP server's in [`http`].
//!
//! A bad address or length traps, as in every import. A bad id is a failed
//! call: it can only concern the guest's own sockets and requests.

mod http;
mod sockets;

use wasmtime::{AsContextMut, Caller, Linker};

use crate::GoView;
use crate::calling::{HostError, import_error};
use crate::guest_memory::GuestMemory;
use crate::host::GoHost;

pub use http::{FAILED, GONE, TOO_LARGE};
pub use sockets::ERRNO_BASE;

/// The import module's name.
pub const MODULE: &str = "wasabi";

/// Nothing yet; the token comes when there may be.
pub const AGAIN: i32 = -1;

/// Runs `f` with the host and linear memory of `caller`.
fn with_host<T: GoView, R>(
    caller: &mut Caller<'_, T>,
    import: &'static str,
    f: impl FnOnce(&mut GoHost, &mut GuestMemory<'_>) -> Result<R, HostError>,
) -> wasmtime::Result<R> {
    let memory = match &caller.data_mut().go().exports {
        Some(e) => e.memory,
        None => return Err(import_error(import, HostError::NotStarted)),
    };
    let (bytes, data) = memory.data_and_store_mut(caller.as_context_mut());
    let mut mem = GuestMemory::new(bytes);
    f(data.go(), &mut mem).map_err(|kind| import_error(import, kind))
}

/// Addresses and lengths come as `i32`; wasm32 addresses are unsigned.
fn addr(v: i32) -> u64 {
    u64::from(v as u32)
}

/// The most bytes one call moves, so that a count fits its `i32` result.
const MAX_TRANSFER: u64 = 1 << 30;

/// Defines the `wasabi` imports on `linker`.
pub(crate) fn add_to_linker<T: GoView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "poll",
        |mut caller: Caller<'_, T>, buf: i32, cap: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.poll", |host, mem| {
                host.network.polled = true;
                let cap = (cap.max(0) as usize).min(4096);
                let mut tokens = [0u64; 256];
                let mut taken = 0;
                while taken < cap {
                    let want = (cap - taken).min(tokens.len());
                    let n = host.network.doorbell.take(&mut tokens[..want]);
                    if n == 0 {
                        break;
                    }
                    for (i, t) in tokens[..n].iter().enumerate() {
                        mem.write_u64(addr(buf) + 8 * (taken + i) as u64, *t)?;
                    }
                    taken += n;
                }
                tracing::trace!(taken, "tokens polled");
                Ok(taken as i32)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "last_error",
        |mut caller: Caller<'_, T>, buf: i32, cap: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.last_error", |host, mem| {
                let msg = host.network.last_error.as_deref().unwrap_or("");
                if msg.len() as u64 <= addr(cap) {
                    mem.write(addr(buf), msg.as_bytes())?;
                }
                Ok(msg.len() as i32)
            })
        },
    )?;
    http::add_to_linker(linker)?;
    sockets::add_to_linker(linker)
}

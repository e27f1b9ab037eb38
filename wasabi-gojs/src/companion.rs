//! The Go companion module's own imports (module `wasabi`): the data path
//! of the host's HTTP server without `syscall/js`.
//!
//! The companion declares these with `//go:wasmimport wasabi <name>`, so Go
//! calls them directly with integer arguments: request ids, addresses and
//! lengths in linear memory. Nothing crosses as a JS value, and no
//! reference is made or finalized per request. The host copies bytes
//! straight between linear memory and hyper's buffers during the call,
//! which is sound because no Go code runs until it returns.
//!
//! | import | result |
//! |---|---|
//! | `http_serve(listener) -> i32` | 0; the host serves HTTP on the `wasabi.net` listener from now on |
//! | `http_next(buf, cap) -> i64` | `id << 32 \| len` of the next request, its head written at `buf` when `len <= cap` (else fetch it with `http_head`); 0 when none waits |
//! | `http_head(id, buf, cap) -> i32` | the length of the held head of `id`, written at `buf` if it fits |
//! | `http_read(id, buf, cap) -> i32` | bytes of the request body copied to `buf`, 0 at its end |
//! | `http_respond(id, status, head, head_len, body, body_len, end) -> i32` | 0; sends the status and headers, and with `end` the whole body |
//! | `http_write(id, buf, len) -> i32` | response body bytes taken (maybe fewer than `len`) |
//! | `http_finish(id, trailers, len) -> i32` | 0; ends the response, with trailers |
//! | `http_abort(id) -> i32` | 0; gives the request up (the connection closes or the stream resets) |
//! | `poll(buf, cap) -> i32` | tokens (`u64` each) copied to `buf`: what woke the guest |
//! | `last_error(buf, cap) -> i32` | the length of the last failure's message, written at `buf` if it fits |
//!
//! Negative results: [`AGAIN`] (nothing yet: the guest parks until the
//! request's token comes through `poll`), [`GONE`] (the client went away),
//! [`TOO_LARGE`] (the request body is over the tenant's limit), [`FAILED`]
//! (anything else; `last_error` says what). The layouts of heads are in
//! `wasabi_net`'s ingress. The guest is woken to call `poll` by the
//! callback it registered with `wasabi.net.setWake`, called with no
//! arguments once per batch of tokens.
//!
//! A bad address or length traps, as in every import. A bad request id is a
//! [`FAILED`] result: it can only concern the guest's own requests.

use wasmtime::{AsContextMut, Caller, Linker};

use wasabi_net::{BodyRead, IngressError};

use crate::GoView;
use crate::calling::{HostError, import_error};
use crate::guest_memory::GuestMemory;
use crate::host::GoHost;

/// The import module's name.
pub const MODULE: &str = "wasabi";

/// Nothing yet; the request's token comes when there is.
pub const AGAIN: i32 = -1;
/// The client went away.
pub const GONE: i32 = -2;
/// The request body is larger than the tenant's limit.
pub const TOO_LARGE: i32 = -3;
/// Any other failure; `last_error` has the message.
pub const FAILED: i32 = -4;

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

/// The result code of a failed ingress call, keeping its message.
fn failed(host: &mut GoHost, e: IngressError) -> Result<i32, HostError> {
    Ok(match e {
        IngressError::Gone => GONE,
        IngressError::BodyTooLarge(_) => {
            host.network.last_error = Some(e.to_string());
            TOO_LARGE
        }
        IngressError::Memory => {
            return Err(HostError::MemoryLimit(host.memory.exceeded()));
        }
        e => {
            host.network.last_error = Some(e.to_string());
            FAILED
        }
    })
}

/// Defines the `wasabi` imports on `linker`.
pub(crate) fn add_to_linker<T: GoView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "http_serve",
        |mut caller: Caller<'_, T>, listener: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_serve", |host, _| {
                let network = &mut host.network;
                match network
                    .sockets
                    .serve_http(listener as u32, &mut network.ingress)
                {
                    Ok(()) => Ok(0),
                    Err(e) => {
                        network.last_error = Some(e.to_string());
                        Ok(FAILED)
                    }
                }
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_next",
        |mut caller: Caller<'_, T>, buf: i32, cap: i32| -> wasmtime::Result<i64> {
            with_host(&mut caller, "wasabi.http_next", |host, mem| {
                let Some((id, head)) = host.network.ingress.take_request() else {
                    return Ok(0);
                };
                let len = head.len() as u64;
                if len <= addr(cap) {
                    mem.write(addr(buf), &head)?;
                } else {
                    host.network.pending_head = Some((id, head));
                }
                Ok((i64::from(id) << 32) | len as i64)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_head",
        |mut caller: Caller<'_, T>, id: i32, buf: i32, cap: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_head", |host, mem| {
                let Some((held, head)) = &host.network.pending_head else {
                    host.network.last_error = Some(format!("no request head of {id} is held"));
                    return Ok(FAILED);
                };
                if *held != id as u32 {
                    host.network.last_error = Some(format!("no request head of {id} is held"));
                    return Ok(FAILED);
                }
                let len = head.len();
                if len as u64 <= addr(cap) {
                    mem.write(addr(buf), head)?;
                    host.network.pending_head = None;
                }
                Ok(len as i32)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_read",
        |mut caller: Caller<'_, T>, id: i32, buf: i32, cap: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_read", |host, mem| {
                // At most 1 GiB a call, so the count fits the result.
                let cap = addr(cap).min(1 << 30);
                let dst = mem.slice_mut(addr(buf), cap)?;
                match host.network.ingress.read(id as u32, dst) {
                    Ok(BodyRead::Data(n)) => Ok(n as i32),
                    Ok(BodyRead::End) => Ok(0),
                    Ok(BodyRead::WouldBlock) => Ok(AGAIN),
                    Err(e) => failed(host, e),
                }
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_respond",
        |mut caller: Caller<'_, T>,
         id: i32,
         status: i32,
         head: i32,
         head_len: i32,
         body: i32,
         body_len: i32,
         end: i32|
         -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_respond", |host, mem| {
                let head = mem.slice(addr(head), addr(head_len))?;
                let body = mem.slice(addr(body), addr(body_len))?;
                match host
                    .network
                    .ingress
                    .respond(id as u32, status as u32, head, body, end != 0)
                {
                    Ok(()) => Ok(0),
                    Err(e) => failed(host, e),
                }
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_write",
        |mut caller: Caller<'_, T>, id: i32, buf: i32, len: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_write", |host, mem| {
                let data = mem.slice(addr(buf), addr(len).min(1 << 30))?;
                match host.network.ingress.write(id as u32, data) {
                    Ok(Some(n)) => Ok(n as i32),
                    Ok(None) => Ok(AGAIN),
                    Err(e) => failed(host, e),
                }
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_finish",
        |mut caller: Caller<'_, T>, id: i32, trailers: i32, len: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_finish", |host, mem| {
                let trailers = mem.slice(addr(trailers), addr(len))?;
                match host.network.ingress.finish(id as u32, trailers) {
                    Ok(()) => Ok(0),
                    Err(e) => failed(host, e),
                }
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "http_abort",
        |mut caller: Caller<'_, T>, id: i32| -> wasmtime::Result<i32> {
            with_host(&mut caller, "wasabi.http_abort", |host, _| {
                match host.network.ingress.abort(id as u32) {
                    Ok(()) => Ok(0),
                    Err(e) => failed(host, e),
                }
            })
        },
    )?;
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
                    let n = host.network.ingress.take_tokens(&mut tokens[..want]);
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
    Ok(())
}

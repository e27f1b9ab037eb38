//! The imports of the host's HTTP server (see `wasabi_net`'s ingress for the
//! layouts of heads).
//!
//! | import | result |
//! |---|---|
//! | `http_serve(listener) -> i32` | 0; the host serves HTTP on the companion's listener from now on |
//! | `http_next(buf, cap) -> i64` | `id << 32 \| len` of the next request, its head written at `buf` when `len <= cap` (else fetch it with `http_head`); 0 when none waits |
//! | `http_head(id, buf, cap) -> i32` | the length of the held head of `id`, written at `buf` if it fits |
//! | `http_read(id, buf, cap) -> i32` | bytes of the request body copied to `buf`, 0 at its end |
//! | `http_respond(id, status, head, head_len, body, body_len, end) -> i32` | 0; sends the status and headers, and with `end` the whole body |
//! | `http_write(id, buf, len) -> i32` | response body bytes taken (maybe fewer than `len`) |
//! | `http_finish(id, trailers, len) -> i32` | 0; ends the response, with trailers |
//! | `http_abort(id) -> i32` | 0; gives the request up (the connection closes or the stream resets) |
//!
//! Negative results: [`AGAIN`] (nothing yet: the guest parks until the
//! request's token comes through `poll`), [`GONE`] (the client went away),
//! [`TOO_LARGE`] (the request body is over the tenant's limit), [`FAILED`]
//! (anything else; `last_error` says what).

use wasmtime::{Caller, Linker};

use wasabi_net::{BodyRead, IngressError};

use super::{AGAIN, MAX_TRANSFER, MODULE, addr, with_host};
use crate::GoView;
use crate::calling::HostError;
use crate::host::GoHost;

/// The client went away.
pub const GONE: i32 = -2;
/// The request body is larger than the tenant's limit.
pub const TOO_LARGE: i32 = -3;
/// Any other failure; `last_error` has the message.
pub const FAILED: i32 = -4;

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

/// Defines the HTTP server's imports on `linker`.
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
                let cap = addr(cap).min(MAX_TRANSFER);
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
                let data = mem.slice(addr(buf), addr(len).min(MAX_TRANSFER))?;
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
    Ok(())
}

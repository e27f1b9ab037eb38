//! `globalThis.wasabi.net`: the instance's [`NetContext`] as JS functions,
//! the host side of the Go companion module (`wasabi.dev/go`).
//!
//! The interface is readiness-based and never blocks:
//!
//! | call | result |
//! |------|--------|
//! | `listen(network, address)` | listener id |
//! | `accept(listener)` | connection id, or `null` when none is waiting |
//! | `dial(network, address, token)` | connection id (usable once `token` fires) |
//! | `read(id, ptr, len)` | bytes read into guest memory at `ptr`, `0` at end of stream, `null` when nothing is there yet |
//! | `write(id, ptr, len)` | bytes written from guest memory, `null` when the send buffer is full |
//! | `wait(id, "read" \| "write", token)` | arms one notification |
//! | `closeWrite(id)`, `close(id)` | `undefined` |
//! | `localAddr(id)`, `remoteAddr(id)` | `"ip:port"` |
//! | `setNotify(fn)` | registers `fn(token, error, id)`, called for every completed wait or dial |
//!
//! Failures throw an `Error` whose `code` is a POSIX name (`ECONNREFUSED`,
//! `EACCES` for a policy denial, `EMFILE` at the socket cap) and whose
//! message says what happened.
//!
//! `read` and `write` take a guest address and length rather than a
//! `Uint8Array`: the bytes move once, between the kernel's socket buffer and
//! linear memory. That is sound because the call is synchronous: no Go code
//! runs, and so nothing can move or free the buffer, until it returns.

use wasabi_net::{Event, Interest, NetError, SocketId};

use crate::guest_memory::GuestMemory;
use crate::heap::to_number;
use crate::host::GoHost;
use crate::natives::{Completion, NativeResult, is_callable, to_js_string};
use crate::value::Value;

/// A method of `wasabi.net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum NetOp {
    SetNotify,
    Listen,
    Accept,
    Dial,
    Read,
    Write,
    Wait,
    CloseWrite,
    Close,
    LocalAddr,
    RemoteAddr,
}

impl NetOp {
    /// Every method with its JS name.
    pub const ALL: [(&'static str, NetOp); 11] = [
        ("setNotify", NetOp::SetNotify),
        ("listen", NetOp::Listen),
        ("accept", NetOp::Accept),
        ("dial", NetOp::Dial),
        ("read", NetOp::Read),
        ("write", NetOp::Write),
        ("wait", NetOp::Wait),
        ("closeWrite", NetOp::CloseWrite),
        ("close", NetOp::Close),
        ("localAddr", NetOp::LocalAddr),
        ("remoteAddr", NetOp::RemoteAddr),
    ];

    fn name(self) -> &'static str {
        NetOp::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(name, _)| name)
    }
}

/// Calls a `wasabi.net` method.
pub(crate) fn call(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    op: NetOp,
    args: &[Value],
) -> NativeResult {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    let result = match op {
        NetOp::SetNotify => {
            let f = arg(0);
            if !is_callable(host, &f) {
                return Err(
                    host.type_error("wasabi.net.setNotify: the argument must be a function")
                );
            }
            host.net_notify = Some(f);
            Ok(Value::Undefined)
        }
        NetOp::Listen => {
            let (network, address) = (to_js_string(host, &arg(0)), to_js_string(host, &arg(1)));
            host.net.listen(&network, &address).map(id_value)
        }
        NetOp::Accept => {
            let id = socket_id(host, op, &arg(0))?;
            host.net.accept(id).map(|c| c.map_or(Value::Null, id_value))
        }
        NetOp::Dial => {
            let (network, address) = (to_js_string(host, &arg(0)), to_js_string(host, &arg(1)));
            let token = token(host, op, &arg(2))?;
            host.net.dial(&network, &address, token).map(id_value)
        }
        NetOp::Read | NetOp::Write => {
            let id = socket_id(host, op, &arg(0))?;
            let (addr, len) = (
                integer(host, op, "ptr", &arg(1))?,
                integer(host, op, "len", &arg(2))?,
            );
            let done = match op {
                NetOp::Read => match mem.slice_mut(addr, len) {
                    Ok(buf) => host.net.read(id, buf),
                    Err(e) => return Err(host.range_error(&e.to_string())),
                },
                _ => match mem.slice(addr, len) {
                    Ok(buf) => host.net.write(id, buf),
                    Err(e) => return Err(host.range_error(&e.to_string())),
                },
            };
            done.map(|n| n.map_or(Value::Null, |n| Value::Number(n as f64)))
        }
        NetOp::Wait => {
            let id = socket_id(host, op, &arg(0))?;
            let interest = match to_js_string(host, &arg(1)).as_str() {
                "read" => Interest::Read,
                "write" => Interest::Write,
                other => {
                    let msg = format!("wasabi.net.wait: unknown interest {other:?}");
                    return Err(host.type_error(&msg));
                }
            };
            let token = token(host, op, &arg(2))?;
            host.net
                .wait(id, interest, token)
                .map(|()| Value::Undefined)
        }
        NetOp::CloseWrite | NetOp::Close => {
            let id = socket_id(host, op, &arg(0))?;
            match op {
                NetOp::Close => host.net.close(id),
                _ => host.net.close_write(id),
            }
            .map(|()| Value::Undefined)
        }
        NetOp::LocalAddr | NetOp::RemoteAddr => {
            let id = socket_id(host, op, &arg(0))?;
            match op {
                NetOp::LocalAddr => host.net.local_addr(id),
                _ => host.net.peer_addr(id),
            }
            .map(|a| Value::string(a.to_string()))
        }
    };
    match result {
        Ok(v) => Ok(Completion::Return(v)),
        Err(e) => Err(net_error(host, &e)),
    }
}

/// The JS value for a socket id.
fn id_value(id: SocketId) -> Value {
    Value::Number(f64::from(id))
}

/// A JS `Error` for a failed operation, with the POSIX `code`.
pub(crate) fn net_error(host: &mut GoHost, e: &NetError) -> Value {
    host.system_error(e.code(), &e.to_string())
}

fn integer(host: &mut GoHost, op: NetOp, what: &str, v: &Value) -> Result<u64, Value> {
    let n = to_number(v);
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= (1u64 << 53) as f64 {
        Ok(n as u64)
    } else {
        let msg = format!(
            "wasabi.net.{}: {what} must be a non-negative integer, not {}",
            op.name(),
            to_js_string(host, v)
        );
        Err(host.type_error(&msg))
    }
}

fn socket_id(host: &mut GoHost, op: NetOp, v: &Value) -> Result<SocketId, Value> {
    let n = integer(host, op, "the socket id", v)?;
    SocketId::try_from(n).map_err(|_| {
        let msg = format!("wasabi.net.{}: {n} is not a socket id", op.name());
        host.type_error(&msg)
    })
}

fn token(host: &mut GoHost, op: NetOp, v: &Value) -> Result<u64, Value> {
    integer(host, op, "the token", v)
}

/// The arguments of the notify callback for `event`: `(token, error, id)`.
pub(crate) fn notify_args(host: &mut GoHost, event: Event) -> Vec<Value> {
    let token = Value::Number(event.token as f64);
    match event.result {
        Ok(Some(id)) => vec![token, Value::Null, id_value(id)],
        Ok(None) => vec![token, Value::Null, Value::Undefined],
        Err(e) => {
            let err = net_error(host, &e);
            vec![token, err, Value::Undefined]
        }
    }
}

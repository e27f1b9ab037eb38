//! `globalThis.wasabi.net`: the instance's [`Sockets`] as JS functions,
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
//! | `setWake(fn)` | registers `fn()`, called with no arguments when the companion's own imports (module `wasabi`, see `companion.rs`) have tokens for it |
//! | `setNotify(fn)` | registers `fn(token, error, id, ...)`, called with one `(token, error, id)` triple per completed wait or dial — every event ready at that moment in one call |
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

use super::{Completion, NativeResult, is_callable};
use crate::guest_memory::GuestMemory;
use crate::heap::to_number;
use crate::js::Js;
use crate::strings::to_js_string;
use crate::value::Value;

/// What `wasabi.net` works with: the JS world and the tenant's sockets.
pub(crate) struct NetHost<'a> {
    pub(crate) js: &'a mut Js,
    pub(crate) network: &'a mut Network,
}

/// The tenant's sockets, the guest's callback for their events
/// (`wasabi.net.setNotify`), and the HTTP server the host runs for it with
/// the callback that wakes it (`wasabi.net.setWake`, see
/// [`crate::companion`]).
pub(crate) struct Network {
    pub(crate) sockets: wasabi_net::Sockets,
    pub(crate) notify: Option<Value>,
    pub(crate) ingress: wasabi_net::Ingress,
    pub(crate) wake: Option<Value>,
    /// A request head too large for the guest's buffer, kept until the
    /// guest fetches it with a larger one.
    pub(crate) pending_head: Option<(wasabi_net::RequestId, Vec<u8>)>,
    /// Whether the guest called `poll` since it was last woken.
    pub(crate) polled: bool,
    /// The message of the last failed companion call (`last_error`).
    pub(crate) last_error: Option<String>,
}

/// A method of `wasabi.net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum NetOp {
    SetNotify,
    SetWake,
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
    pub const ALL: [(&'static str, NetOp); 12] = [
        ("setNotify", NetOp::SetNotify),
        ("setWake", NetOp::SetWake),
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
/// Binds Wasabi's own global, `wasabi` (`version`, and `net`): its presence
/// tells a guest it runs on Wasabi.
pub(crate) fn install(b: &mut super::Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let wasabi = b.plain()?;
    b.heap
        .define(wasabi, "version", env!("CARGO_PKG_VERSION").into());
    let net = b.plain()?;
    for (name, op) in NetOp::ALL {
        b.method(net, name, super::Native::Net(op))?;
    }
    b.heap.define(wasabi, "net", Value::Object(net));
    b.heap.define(b.global, "wasabi", Value::Object(wasabi));
    Ok(())
}

pub(crate) fn call(
    host: &mut NetHost<'_>,
    mem: &mut GuestMemory<'_>,
    op: NetOp,
    args: &[Value],
) -> NativeResult {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    let result = match op {
        NetOp::SetNotify | NetOp::SetWake => {
            let f = arg(0);
            if !is_callable(&host.js.heap, &f) {
                let message = format!("wasabi.net.{}: the argument must be a function", op.name());
                return Err(host.js.type_error(&message));
            }
            let slot = if op == NetOp::SetNotify {
                &mut host.network.notify
            } else {
                &mut host.network.wake
            };
            *slot = Some(f);
            Ok(Value::Undefined)
        }
        NetOp::Listen => {
            let (network, address) = (
                to_js_string(&host.js.heap, &arg(0)),
                to_js_string(&host.js.heap, &arg(1)),
            );
            host.network
                .sockets
                .listen(&network, &address)
                .map(id_value)
        }
        NetOp::Accept => {
            let id = socket_id(host, op, &arg(0))?;
            host.network
                .sockets
                .accept(id)
                .map(|c| c.map_or(Value::Null, id_value))
        }
        NetOp::Dial => {
            let (network, address) = (
                to_js_string(&host.js.heap, &arg(0)),
                to_js_string(&host.js.heap, &arg(1)),
            );
            let token = token(host, op, &arg(2))?;
            host.network
                .sockets
                .dial(&network, &address, token)
                .map(id_value)
        }
        NetOp::Read | NetOp::Write => transfer(host, mem, op, args)?,
        NetOp::Wait => wait(host, args)?,
        NetOp::CloseWrite | NetOp::Close => {
            let id = socket_id(host, op, &arg(0))?;
            match op {
                NetOp::Close => host.network.sockets.close(id),
                _ => host.network.sockets.close_write(id),
            }
            .map(|()| Value::Undefined)
        }
        NetOp::LocalAddr | NetOp::RemoteAddr => {
            let id = socket_id(host, op, &arg(0))?;
            match op {
                NetOp::LocalAddr => host.network.sockets.local_addr(id),
                _ => host.network.sockets.peer_addr(id),
            }
            .map(|a| Value::string(a.to_string()))
        }
    };
    match result {
        Ok(v) => Ok(Completion::Return(v)),
        Err(e) => Err(net_error(host.js, &e)),
    }
}

/// The outcome of a socket operation, or the value it throws.
type SocketResult = Result<Result<Value, NetError>, Value>;

/// `read(id, ptr, len)` or `write(id, ptr, len)`: straight between the
/// socket and the guest's linear memory.
fn transfer(
    host: &mut NetHost<'_>,
    mem: &mut GuestMemory<'_>,
    op: NetOp,
    args: &[Value],
) -> SocketResult {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    let id = socket_id(host, op, &arg(0))?;
    let (addr, len) = (
        integer(host, op, "ptr", &arg(1))?,
        integer(host, op, "len", &arg(2))?,
    );
    let done = match op {
        NetOp::Read => match mem.slice_mut(addr, len) {
            Ok(buf) => host.network.sockets.read(id, buf),
            Err(e) => return Err(host.js.range_error(&e.to_string())),
        },
        _ => match mem.slice(addr, len) {
            Ok(buf) => host.network.sockets.write(id, buf),
            Err(e) => return Err(host.js.range_error(&e.to_string())),
        },
    };
    Ok(done.map(|n| n.map_or(Value::Null, |n| Value::Number(n as f64))))
}

/// `wait(id, "read" | "write", token)`: a one-shot readiness notification.
fn wait(host: &mut NetHost<'_>, args: &[Value]) -> SocketResult {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    let op = NetOp::Wait;
    let id = socket_id(host, op, &arg(0))?;
    let interest = match to_js_string(&host.js.heap, &arg(1)).as_str() {
        "read" => Interest::Read,
        "write" => Interest::Write,
        other => {
            let msg = format!("wasabi.net.wait: unknown interest {other:?}");
            return Err(host.js.type_error(&msg));
        }
    };
    let token = token(host, op, &arg(2))?;
    Ok(host
        .network
        .sockets
        .wait(id, interest, token)
        .map(|()| Value::Undefined))
}

/// The JS value for a socket id.
fn id_value(id: SocketId) -> Value {
    Value::Number(f64::from(id))
}

/// A JS `Error` for a failed operation, with the POSIX `code`.
pub(crate) fn net_error(js: &mut Js, e: &NetError) -> Value {
    let message = js.network_message(e);
    js.system_error(e.code(), &message)
}

fn integer(host: &mut NetHost<'_>, op: NetOp, what: &str, v: &Value) -> Result<u64, Value> {
    let n = to_number(v);
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= (1u64 << 53) as f64 {
        Ok(n as u64)
    } else {
        let msg = format!(
            "wasabi.net.{}: {what} must be a non-negative integer, not {}",
            op.name(),
            to_js_string(&host.js.heap, v)
        );
        Err(host.js.type_error(&msg))
    }
}

fn socket_id(host: &mut NetHost<'_>, op: NetOp, v: &Value) -> Result<SocketId, Value> {
    let n = integer(host, op, "the socket id", v)?;
    SocketId::try_from(n).map_err(|_| {
        let msg = format!("wasabi.net.{}: {n} is not a socket id", op.name());
        host.js.type_error(&msg)
    })
}

fn token(host: &mut NetHost<'_>, op: NetOp, v: &Value) -> Result<u64, Value> {
    integer(host, op, "the token", v)
}

/// The arguments of the notify callback for `event`: `(token, error, id)`.
pub(crate) fn notify_args(host: &mut NetHost<'_>, event: Event) -> Vec<Value> {
    let token = Value::Number(event.token as f64);
    match event.result {
        Ok(Some(id)) => vec![token, Value::Null, id_value(id)],
        Ok(None) => vec![token, Value::Null, Value::Undefined],
        Err(e) => {
            let err = net_error(host.js, &e);
            vec![token, err, Value::Undefined]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHost;
    use crate::GoHostBuilder;
    use crate::heap::Key;
    use wasabi_net::{AddressRule, NetPolicy};

    fn loopback_host() -> GoHost {
        let mut policy = NetPolicy::deny_all();
        let rule: AddressRule = "127.0.0.1".parse().unwrap();
        policy.allow_listen(rule.clone()).allow_connect(rule);
        GoHostBuilder::new()
            .net_policy(policy)
            .advice(std::sync::Arc::new(AskFor))
            .build()
            .unwrap()
    }

    /// An embedder's advice, to see that it reaches the guest's errors.
    #[derive(Debug)]
    struct AskFor;

    impl wasabi_limits::Advice for AskFor {
        fn grant(&self, grant: &wasabi_limits::Grant<'_>) -> Option<String> {
            Some(format!("ask for {grant}"))
        }
    }

    /// Calls `op` with `args` against `mem`; `Ok` is the returned value,
    /// `Err` the thrown one.
    fn net_call(
        host: &mut GoHost,
        mem: &mut [u8],
        op: NetOp,
        args: &[Value],
    ) -> Result<Value, Value> {
        match call(&mut host.net_host(), &mut GuestMemory::new(mem), op, args)? {
            Completion::Return(v) => Ok(v),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn code(host: &GoHost, thrown: &Value) -> String {
        to_js_string(
            &host.js.heap,
            &host
                .js
                .heap
                .get_property(thrown, Key::Name("code"))
                .unwrap_or(Value::Undefined),
        )
    }

    #[tokio::test]
    async fn hostile_arguments_throw_instead_of_touching_anything() {
        let mut host = loopback_host();
        let mut mem = vec![0u8; 64];
        let l = net_call(
            &mut host,
            &mut mem,
            NetOp::Listen,
            &["tcp".into(), "127.0.0.1:0".into()],
        )
        .unwrap();
        let accepted =
            net_call(&mut host, &mut mem, NetOp::Accept, std::slice::from_ref(&l)).unwrap();
        assert_eq!(accepted, Value::Null, "nobody connected yet");
        // Reading a listener, or a socket that does not exist.
        for (id, expected) in [(l.clone(), "EINVAL"), (Value::Number(99.0), "EBADF")] {
            let args = [id, 0.0.into(), 8.0.into()];
            let thrown = net_call(&mut host, &mut mem, NetOp::Read, &args).unwrap_err();
            assert_eq!(code(&host, &thrown), expected);
        }
        // Ids, pointers and lengths that are not small non-negative integers.
        for bad in [
            Value::Number(-1.0),
            Value::Number(0.5),
            Value::Number(f64::NAN),
            "x".into(),
        ] {
            let thrown = net_call(
                &mut host,
                &mut mem,
                NetOp::Close,
                std::slice::from_ref(&bad),
            )
            .unwrap_err();
            assert!(
                to_js_string(&host.js.heap, &thrown).starts_with("TypeError"),
                "{bad:?}"
            );
            let args = [l.clone(), bad.clone(), 1.0.into()];
            assert!(net_call(&mut host, &mut mem, NetOp::Write, &args).is_err());
        }
        assert!(net_call(&mut host, &mut mem, NetOp::Close, &[Value::Number(1e12)]).is_err());
        // A buffer past the end of linear memory.
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let c = net_call(
            &mut host,
            &mut mem,
            NetOp::Dial,
            &["tcp".into(), Value::string(addr), 1.0.into()],
        )
        .unwrap();
        let event = host.network.sockets.next_event().await;
        assert!(event.result.is_ok());
        for (ptr, len) in [(60.0, 8.0), (0.0, 65.0), (1e15, 1.0)] {
            let args = [c.clone(), ptr.into(), len.into()];
            let thrown = net_call(&mut host, &mut mem, NetOp::Write, &args).unwrap_err();
            assert!(to_js_string(&host.js.heap, &thrown).starts_with("RangeError"));
        }
        // An unknown interest, and a notify that is not a function.
        let args = [c.clone(), "sideways".into(), 1.0.into()];
        assert!(net_call(&mut host, &mut mem, NetOp::Wait, &args).is_err());
        assert!(net_call(&mut host, &mut mem, NetOp::SetNotify, &[1.0.into()]).is_err());
        // Denied by the policy: EACCES, with the embedder's advice in the
        // message.
        let args = ["tcp".into(), "10.0.0.1:80".into(), 2.0.into()];
        let thrown = net_call(&mut host, &mut mem, NetOp::Dial, &args).unwrap_err();
        assert_eq!(code(&host, &thrown), "EACCES");
        assert!(to_js_string(&host.js.heap, &thrown).ends_with(
            "connecting to 10.0.0.1:80 is not allowed: ask for connecting to 10.0.0.1:80"
        ));
        // Closing twice: the second is EBADF.
        net_call(&mut host, &mut mem, NetOp::Close, std::slice::from_ref(&c)).unwrap();
        let thrown = net_call(&mut host, &mut mem, NetOp::Close, &[c]).unwrap_err();
        assert_eq!(code(&host, &thrown), "EBADF");
    }

    #[tokio::test]
    async fn bytes_move_between_the_socket_and_linear_memory() {
        use std::io::{Read, Write};
        let mut host = loopback_host();
        let mut mem = vec![0u8; 64];
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let args = ["tcp".into(), Value::string(addr.clone()), 5.0.into()];
        let c = net_call(&mut host, &mut mem, NetOp::Dial, &args).unwrap();
        let event = host.network.sockets.next_event().await;
        assert_eq!(event.token, 5);
        let (mut peer, _) = server.accept().unwrap();
        mem[10..15].copy_from_slice(b"hello");
        let args = [c.clone(), 10.0.into(), 5.0.into()];
        let n = net_call(&mut host, &mut mem, NetOp::Write, &args).unwrap();
        assert_eq!(n, Value::Number(5.0));
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        peer.write_all(b"world").unwrap();
        let args = [c.clone(), 32.0.into(), 16.0.into()];
        let n = loop {
            match net_call(&mut host, &mut mem, NetOp::Read, &args).unwrap() {
                Value::Null => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                n => break n,
            }
        };
        assert_eq!(n, Value::Number(5.0));
        assert_eq!(&mem[32..37], b"world");
        let local = net_call(
            &mut host,
            &mut mem,
            NetOp::LocalAddr,
            std::slice::from_ref(&c),
        )
        .unwrap();
        assert_eq!(
            to_js_string(&host.js.heap, &local),
            peer.peer_addr().unwrap().to_string()
        );
        let remote = net_call(&mut host, &mut mem, NetOp::RemoteAddr, &[c]).unwrap();
        assert_eq!(to_js_string(&host.js.heap, &remote), addr);
    }
}

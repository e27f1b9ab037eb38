//! `globalThis.wasabi`: Wasabi's own global, whose presence tells a guest it
//! runs on Wasabi (`version`), and `wasabi.net.setWake`, the one JS call of
//! the Go companion module (`wasabi.dev/go`).
//!
//! Everything else the companion does — sockets, the host's HTTP server —
//! goes through its own wasm imports (module `wasabi`, see
//! [`crate::companion`]) with integer arguments, never through JS values.
//! What those imports wait for rings the instance's doorbell; the event loop
//! then calls the function the guest registered with `setWake(fn)`, with no
//! arguments, once per batch of tokens, and the guest takes the tokens with
//! the `poll` import. A JS callback is the only way into a Go js/wasm
//! program from outside (it resumes the Go scheduler), so this one stays JS.

use std::sync::Arc;

use super::{Completion, NativeResult, is_callable};
use crate::js::Js;
use crate::value::Value;

/// The tenant's sockets, the HTTP server the host runs for it, the doorbell
/// both ring, and the guest's callback that is told when they do
/// (`wasabi.net.setWake`, see [`crate::companion`]).
pub(crate) struct Network {
    pub(crate) sockets: wasabi_net::Sockets,
    pub(crate) ingress: wasabi_net::Ingress,
    pub(crate) doorbell: Arc<wasabi_net::Doorbell>,
    pub(crate) wake: Option<Value>,
    /// A request head too large for the guest's buffer, kept until the
    /// guest fetches it with a larger one.
    pub(crate) pending_head: Option<(wasabi_net::RequestId, Vec<u8>)>,
    /// Whether the guest called `poll` since it was last woken.
    pub(crate) polled: bool,
    /// The message of the last failed companion call (`last_error`).
    pub(crate) last_error: Option<String>,
}

impl Network {
    /// Whether anything may still ring the doorbell (an armed socket wait,
    /// a dial, a served listener) or has rung and waits to be delivered.
    pub(crate) fn waiting(&self) -> bool {
        self.doorbell.may_wake() || self.ingress.is_serving()
    }
}

/// A method of `wasabi.net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    /// `setWake(fn)`: registers the callback told of rung tokens.
    SetWake,
}

/// Binds Wasabi's own global, `wasabi` (`version`, and `net.setWake`).
pub(crate) fn install(b: &mut super::Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let wasabi = b.plain()?;
    b.heap
        .define(wasabi, "version", env!("CARGO_PKG_VERSION").into());
    let net = b.plain()?;
    b.method(net, "setWake", super::Native::Net(NetOp::SetWake))?;
    b.heap.define(wasabi, "net", Value::Object(net));
    b.heap.define(b.global, "wasabi", Value::Object(wasabi));
    Ok(())
}

/// Calls a `wasabi.net` method.
pub(crate) fn call(js: &mut Js, network: &mut Network, op: NetOp, args: &[Value]) -> NativeResult {
    match op {
        NetOp::SetWake => {
            let f = super::arg(args, 0);
            if !is_callable(&js.heap, &f) {
                return Err(js.type_error("wasabi.net.setWake: the argument must be a function"));
            }
            network.wake = Some(f);
            Ok(Completion::Return(Value::Undefined))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHostBuilder;
    use crate::strings::to_js_string;

    #[tokio::test]
    async fn set_wake_takes_only_a_function() {
        let mut host = GoHostBuilder::new().build().unwrap();
        for bad in [Value::Number(1.0), Value::Undefined, "f".into()] {
            let thrown = call(
                &mut host.js,
                &mut host.network,
                NetOp::SetWake,
                std::slice::from_ref(&bad),
            )
            .unwrap_err();
            assert!(
                to_js_string(&host.js.heap, &thrown).starts_with("TypeError"),
                "{bad:?}"
            );
        }
        assert!(host.network.wake.is_none());
    }
}

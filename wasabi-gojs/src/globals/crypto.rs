//! `crypto.getRandomValues`, from the js's random source, at most 65,536 bytes a call as in browsers.

use super::{Binder, Native, NativeResult, arg, ret};
use crate::heap::ObjectKind;
use crate::js::Js;
use crate::value::Value;

/// The largest `getRandomValues` request, as in browsers.
const MAX_RANDOM_BYTES: usize = 65536;

/// crypto methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    GetRandomValues,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let crypto = b.plain()?;
    b.method(
        crypto,
        "getRandomValues",
        Native::Crypto(Op::GetRandomValues),
    )?;
    b.heap.define(b.global, "crypto", Value::Object(crypto));
    Ok(())
}

pub(crate) fn call(js: &mut Js, op: Op, args: &[Value]) -> NativeResult {
    match op {
        Op::GetRandomValues => {
            let target = arg(args, 0);
            let Value::Object(id) = target else {
                return Err(js.type_error("crypto.getRandomValues: argument is not a typed array"));
            };
            let ObjectKind::Bytes(bytes) = &mut js.heap.get_mut(id).kind else {
                return Err(js.type_error("crypto.getRandomValues: argument is not a Uint8Array"));
            };
            if bytes.len() > MAX_RANDOM_BYTES {
                let msg = format!(
                    "crypto.getRandomValues: the requested length ({}) exceeds the maximum of {MAX_RANDOM_BYTES} bytes",
                    bytes.len()
                );
                return Err(js.system_error("QuotaExceededError", &msg));
            }
            if getrandom::fill(bytes).is_err() {
                return Err(js.system_error("EIO", "the js's random source failed"));
            }
            ret(target)
        }
    }
}

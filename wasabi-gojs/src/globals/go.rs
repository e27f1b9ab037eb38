//! The Go object of `wasm_exec.js` (`_pendingEvent`, `_makeFuncWrapper`), through which Go's `js.FuncOf` callbacks become JS functions.

use super::{Binder, Native, NativeResult, arg, ret};
use crate::heap::{Callable, ObjectKind, to_number};
use crate::js::Js;
use crate::value::{ObjectId, Value};

/// Go object methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    MakeFuncWrapper,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<ObjectId, crate::heap::HeapError> {
    let go = b.plain()?;
    b.heap.define(go, "_pendingEvent", Value::Null);
    b.method(go, "_makeFuncWrapper", Native::Go(Op::MakeFuncWrapper))?;
    Ok(go)
}

pub(crate) fn call(js: &mut Js, op: Op, args: &[Value]) -> NativeResult {
    let realm = js.realm;
    match op {
        Op::MakeFuncWrapper => {
            let id = to_number(&arg(args, 0));
            if !(0.0..=f64::from(u32::MAX)).contains(&id) || id.fract() != 0.0 {
                return Err(js.type_error("_makeFuncWrapper: invalid function id"));
            }
            let f = js
                .heap
                .alloc(crate::heap::Object::new(
                    ObjectKind::Function(Callable::Go(id as u32)),
                    Some(realm.function_proto),
                ))
                .map_err(|e| js.heap_error(e))?;
            ret(Value::Object(f))
        }
    }
}

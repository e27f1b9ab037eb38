//! `Error`, `TypeError` and `RangeError`, and `Error.prototype.toString`.

/// The prototypes of the error constructors.
pub(crate) struct ErrorProtos {
    pub(crate) error: ObjectId,
    pub(crate) type_error: ObjectId,
    pub(crate) range_error: ObjectId,
}

use super::{Binder, Native, NativeResult, arg, ret};
use crate::js::Js;
use crate::strings::{js_string, to_js_string};
use crate::value::{ObjectId, Value};

/// Error constructors and methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    ErrorCtor,
    TypeErrorCtor,
    RangeErrorCtor,
    ToString,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<ErrorProtos, crate::heap::HeapError> {
    let error = b.plain()?;
    b.heap.define(error, "name", "Error".into());
    b.heap.define(error, "message", "".into());
    b.method(error, "toString", Native::Error(Op::ToString))?;
    b.class(b.global, "Error", Native::Error(Op::ErrorCtor), error)?;
    let type_error = b.object(Some(error))?;
    b.heap.define(type_error, "name", "TypeError".into());
    b.class(
        b.global,
        "TypeError",
        Native::Error(Op::TypeErrorCtor),
        type_error,
    )?;
    let range_error = b.object(Some(error))?;
    b.heap.define(range_error, "name", "RangeError".into());
    b.class(
        b.global,
        "RangeError",
        Native::Error(Op::RangeErrorCtor),
        range_error,
    )?;
    Ok(ErrorProtos {
        error,
        type_error,
        range_error,
    })
}

pub(crate) fn call(js: &mut Js, op: Op, this: &Value, args: &[Value]) -> NativeResult {
    let realm = js.realm;
    match op {
        Op::ErrorCtor | Op::TypeErrorCtor | Op::RangeErrorCtor => {
            let proto = match op {
                Op::TypeErrorCtor => realm.type_error_proto,
                Op::RangeErrorCtor => realm.range_error_proto,
                _ => realm.error_proto,
            };
            let message = match arg(args, 0) {
                Value::Undefined => String::new(),
                v => to_js_string(&js.heap, &v),
            };
            ret(js.new_error(proto, &message))
        }
        Op::ToString => match js_string(&js.heap, this) {
            Ok(text) => ret(Value::string(text)),
            Err(e) => Err(js.heap_error(e)),
        },
    }
}

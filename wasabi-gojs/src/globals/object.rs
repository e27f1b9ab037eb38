//! `Object` and `Function`: `Object.prototype.toString` and `hasOwnProperty`, `Object.keys`, and a `Function` constructor that refuses to compile code.

use super::{Binder, Native, NativeResult, arg, ret};
use crate::heap::ObjectKind;
use crate::js::Js;
use crate::strings::to_js_string;
use crate::value::Value;

/// Object and Function methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ctor,
    Keys,
    ToString,
    HasOwnProperty,
    FunctionCtor,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let (object_proto, function_proto, global) = (b.object_proto, b.function_proto, b.global);
    b.method(object_proto, "toString", Native::Object(Op::ToString))?;
    b.method(
        object_proto,
        "hasOwnProperty",
        Native::Object(Op::HasOwnProperty),
    )?;
    let object_ctor = b.class(global, "Object", Native::Object(Op::Ctor), object_proto)?;
    b.method(object_ctor, "keys", Native::Object(Op::Keys))?;
    b.class(
        global,
        "Function",
        Native::Object(Op::FunctionCtor),
        function_proto,
    )?;
    Ok(())
}

pub(crate) fn call(js: &mut Js, op: Op, this: &Value, args: &[Value]) -> NativeResult {
    match op {
        Op::Ctor => match arg(args, 0) {
            v @ Value::Object(_) => ret(v),
            _ => {
                let id = js.new_object().map_err(|e| js.heap_error(e))?;
                ret(Value::Object(id))
            }
        },
        Op::Keys => {
            let Value::Object(id) = arg(args, 0) else {
                return Err(js.type_error("Cannot convert undefined or null to object"));
            };
            let object = js.heap.get(id);
            let mut keys: Vec<Value> = match &object.kind {
                ObjectKind::Array(items) => (0..items.len())
                    .map(|i| Value::string(i.to_string()))
                    .collect(),
                ObjectKind::Bytes(b) => {
                    (0..b.len()).map(|i| Value::string(i.to_string())).collect()
                }
                _ => Vec::new(),
            };
            keys.extend(object.keys().map(|k| Value::String(k.clone())));
            let arr = js.new_array(keys).map_err(|e| js.heap_error(e))?;
            ret(Value::Object(arr))
        }
        Op::ToString => {
            let tag = match this {
                Value::Undefined => "Undefined",
                Value::Null => "Null",
                Value::Object(id) => match js.heap.get(*id).kind {
                    ObjectKind::Array(_) => "Array",
                    ObjectKind::Bytes(_) => "Uint8Array",
                    ObjectKind::Function(_) => "Function",
                    ObjectKind::Error => "Error",
                    ObjectKind::Date(_) => "Date",
                    ObjectKind::Promise(_) => "Promise",
                    ObjectKind::Headers(_) => "Headers",
                    ObjectKind::Ordinary | ObjectKind::Iterator { .. } | ObjectKind::Body(_) => {
                        "Object"
                    }
                },
                Value::String(_) => "String",
                Value::Number(_) => "Number",
                Value::Bool(_) => "Boolean",
            };
            ret(Value::string(format!("[object {tag}]")))
        }
        Op::HasOwnProperty => {
            let key = to_js_string(&js.heap, &arg(args, 0));
            let has = match this {
                Value::Object(id) => {
                    let o = js.heap.get(*id);
                    o.own(&key).is_some()
                        || match &o.kind {
                            ObjectKind::Array(items) => {
                                key.parse::<usize>().is_ok_and(|i| i < items.len())
                            }
                            _ => false,
                        }
                }
                _ => false,
            };
            ret(has)
        }
        Op::FunctionCtor => {
            Err(js
                .type_error("Code generation from strings is not supported (Function constructor)"))
        }
    }
}

//! `Array`: the constructor, `Array.isArray`, `push` and `join`.

use super::{Binder, Native, NativeResult, arg, ret};
use crate::heap::{Key, ObjectKind};
use crate::js::Js;
use crate::strings::{js_join, js_string};
use crate::value::{ObjectId, Value};

/// Array methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ctor,
    IsArray,
    Push,
    Join,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<ObjectId, crate::heap::HeapError> {
    let array_proto = b.plain()?;
    b.method(array_proto, "push", Native::Array(Op::Push))?;
    b.method(array_proto, "join", Native::Array(Op::Join))?;
    let array_ctor = b.class(b.global, "Array", Native::Array(Op::Ctor), array_proto)?;
    b.method(array_ctor, "isArray", Native::Array(Op::IsArray))?;
    Ok(array_proto)
}

pub(crate) fn call(js: &mut Js, op: Op, this: &Value, args: &[Value]) -> NativeResult {
    match op {
        Op::Ctor => {
            let items = match args {
                [Value::Number(n)] => {
                    if *n < 0.0 || n.fract() != 0.0 || *n > 1e7 {
                        return Err(js.range_error("Invalid array length"));
                    }
                    vec![Value::Undefined; *n as usize]
                }
                _ => args.to_vec(),
            };
            let arr = js.new_array(items).map_err(|e| js.heap_error(e))?;
            ret(Value::Object(arr))
        }
        Op::IsArray => {
            let is = matches!(arg(args, 0), Value::Object(id) if matches!(js.heap.get(id).kind, ObjectKind::Array(_)));
            ret(is)
        }
        Op::Push => {
            let Value::Object(id) = this else {
                return Err(js.type_error("Array.prototype.push called on non-object"));
            };
            let len = match &js.heap.get(*id).kind {
                ObjectKind::Array(items) => items.len(),
                _ => return Err(js.type_error("Array.prototype.push called on a non-array")),
            };
            for (i, v) in args.iter().enumerate() {
                js.heap
                    .set_property(this, Key::Index((len + i) as i64), v.clone())
                    .map_err(|e| js.heap_error(e))?;
            }
            ret(Value::Number((len + args.len()) as f64))
        }
        Op::Join => {
            let sep = match arg(args, 0) {
                Value::Undefined => Ok(",".to_string()),
                v => js_string(&js.heap, &v),
            };
            let joined = sep.and_then(|sep| match this {
                Value::Object(id) => match &js.heap.get(*id).kind {
                    ObjectKind::Array(items) => js_join(&js.heap, Some(*id), items, &sep),
                    _ => Ok(String::new()),
                },
                _ => Ok(String::new()),
            });
            match joined {
                Ok(text) => ret(Value::string(text)),
                Err(e) => Err(js.heap_error(e)),
            }
        }
    }
}

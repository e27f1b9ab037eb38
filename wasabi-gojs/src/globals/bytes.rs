//! `Uint8Array`: the constructor and `set` (element access is the heap's).

use super::{Binder, Native, NativeResult, arg, ret};
use crate::heap::{Custody, ObjectKind, to_number};
use crate::js::Js;
use crate::value::{ObjectId, Value};

/// Uint8Array methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ctor,
    Set,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<ObjectId, crate::heap::HeapError> {
    let bytes_proto = b.plain()?;
    b.method(bytes_proto, "set", Native::Bytes(Op::Set))?;
    b.class(b.global, "Uint8Array", Native::Bytes(Op::Ctor), bytes_proto)?;
    Ok(bytes_proto)
}

pub(crate) fn call(
    js: &mut Js,
    op: Op,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> NativeResult {
    let realm = js.realm;
    match op {
        Op::Ctor => {
            if !construct {
                return Err(js.type_error("Constructor Uint8Array requires 'new'"));
            }
            let source = arg(args, 0);
            let bytes: Vec<u8> = match &source {
                Value::Undefined => Vec::new(),
                Value::Number(n) => {
                    if *n < 0.0 || n.fract() != 0.0 || !n.is_finite() {
                        return Err(js.range_error("Invalid typed array length"));
                    }
                    let id = js
                        .heap
                        .alloc_bytes(*n as usize, realm.bytes_proto)
                        .map_err(|e| js.heap_error(e))?;
                    // Only Go holds it, until it is stored somewhere.
                    js.heap.get_mut(id).custody = Custody::GoOnly;
                    return ret(Value::Object(id));
                }
                Value::Object(id) => match &js.heap.get(*id).kind {
                    ObjectKind::Bytes(b) => b.clone(),
                    ObjectKind::Array(items) => {
                        items.iter().map(|v| to_number(v) as i64 as u8).collect()
                    }
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let id = js
                .heap
                .alloc_bytes(bytes.len(), realm.bytes_proto)
                .map_err(|e| js.heap_error(e))?;
            if let ObjectKind::Bytes(dst) = &mut js.heap.get_mut(id).kind {
                dst.copy_from_slice(&bytes);
            }
            ret(Value::Object(id))
        }
        Op::Set => {
            let offset = to_number(&arg(args, 1));
            let offset = if offset.is_nan() { 0.0 } else { offset };
            let source: Vec<u8> = match arg(args, 0) {
                Value::Object(id) => match &js.heap.get(id).kind {
                    ObjectKind::Bytes(b) => b.clone(),
                    ObjectKind::Array(items) => {
                        items.iter().map(|v| to_number(v) as i64 as u8).collect()
                    }
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let Value::Object(id) = this else {
                return Err(js.type_error("Uint8Array.prototype.set called on a non-typed-array"));
            };
            let ObjectKind::Bytes(dst) = &mut js.heap.get_mut(*id).kind else {
                return Err(js.type_error("Uint8Array.prototype.set called on a non-typed-array"));
            };
            let start = offset as usize;
            if offset < 0.0
                || start
                    .checked_add(source.len())
                    .is_none_or(|end| end > dst.len())
            {
                return Err(js.range_error("offset is out of bounds"));
            }
            dst[start..start + source.len()].copy_from_slice(&source);
            ret(Value::Undefined)
        }
    }
}

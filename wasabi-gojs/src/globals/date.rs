//! `Date`: the constructor, `Date.now`, `getTime`, `valueOf`, `getTimezoneOffset` (the guest's `TZ`) and `toISOString`.

use super::{Binder, Native, NativeResult, ret};
use crate::heap::{ObjectKind, to_number};
use crate::js::Js;
use crate::strings::iso_string;
use crate::value::{ObjectId, Value};

/// Date methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ctor,
    Now,
    GetTime,
    GetTimezoneOffset,
    ToIsoString,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<ObjectId, crate::heap::HeapError> {
    let date_proto = b.plain()?;
    b.method(date_proto, "getTime", Native::Date(Op::GetTime))?;
    b.method(date_proto, "valueOf", Native::Date(Op::GetTime))?;
    b.method(
        date_proto,
        "getTimezoneOffset",
        Native::Date(Op::GetTimezoneOffset),
    )?;
    b.method(date_proto, "toISOString", Native::Date(Op::ToIsoString))?;
    let date_ctor = b.class(b.global, "Date", Native::Date(Op::Ctor), date_proto)?;
    b.method(date_ctor, "now", Native::Date(Op::Now))?;
    Ok(date_proto)
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
            let ms = match args.first() {
                Some(v) => to_number(v),
                None => js.clock.now_ms(),
            };
            if !construct {
                return ret(Value::string(iso_string(js.clock.now_ms())));
            }
            let id = js
                .heap
                .alloc(crate::heap::Object::new(
                    ObjectKind::Date(ms),
                    Some(realm.date_proto),
                ))
                .map_err(|e| js.heap_error(e))?;
            ret(Value::Object(id))
        }
        Op::Now => ret(js.clock.now_ms()),
        Op::GetTime | Op::GetTimezoneOffset | Op::ToIsoString => {
            let ms = match this {
                Value::Object(id) => match js.heap.get(*id).kind {
                    ObjectKind::Date(ms) => Some(ms),
                    _ => None,
                },
                _ => None,
            };
            let Some(ms) = ms else {
                return Err(js.type_error("this is not a Date object."));
            };
            match op {
                Op::GetTime => ret(ms),
                Op::GetTimezoneOffset => {
                    let east = js.clock.timezone.offset_at((ms / 1000.0).floor() as i64);
                    ret(-f64::from(east / 60))
                }
                _ => {
                    if !ms.is_finite() {
                        return Err(js.range_error("Invalid time value"));
                    }
                    ret(Value::string(iso_string(ms)))
                }
            }
        }
    }
}

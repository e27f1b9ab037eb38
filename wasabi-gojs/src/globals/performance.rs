//! `performance.now`: milliseconds since the instance started, on the monotonic clock.

use super::{Binder, Native, NativeResult, ret};
use crate::js::Js;
use crate::value::Value;

/// performance methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Now,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let performance = b.plain()?;
    b.method(performance, "now", Native::Performance(Op::Now))?;
    b.heap
        .define(b.global, "performance", Value::Object(performance));
    Ok(())
}

pub(crate) fn call(js: &mut Js, op: Op) -> NativeResult {
    match op {
        Op::Now => ret(js.clock.origin.elapsed().as_secs_f64() * 1000.0),
    }
}

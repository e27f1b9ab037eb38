//! `setTimeout` and `clearTimeout` (the queue itself is [`crate::timers`]).

use std::time::Duration;

use super::{Binder, Native, NativeResult, arg, is_callable, ret};
use crate::heap::to_number;
use crate::js::Js;
use crate::timers::{TimerId, Timers};
use crate::value::Value;

/// Timer functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    SetTimeout,
    ClearTimeout,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    b.method(b.global, "setTimeout", Native::Timers(Op::SetTimeout))?;
    b.method(b.global, "clearTimeout", Native::Timers(Op::ClearTimeout))?;
    Ok(())
}

pub(crate) fn call(js: &mut Js, timers: &mut Timers, op: Op, args: &[Value]) -> NativeResult {
    match op {
        Op::SetTimeout => {
            let func = arg(args, 0);
            if !is_callable(&js.heap, &func) {
                return Err(js.type_error("The \"callback\" argument must be of type function"));
            }
            let ms = to_number(&arg(args, 1));
            let ms = if ms.is_nan() || ms < 0.0 {
                0.0
            } else {
                ms.min(f64::from(i32::MAX))
            };
            let rest = args.get(2..).map(<[Value]>::to_vec).unwrap_or_default();
            match timers.schedule_js(Duration::from_secs_f64(ms / 1000.0), func, rest) {
                Ok(id) => ret(f64::from(id)),
                Err(e) => {
                    let message =
                        wasabi_limits::advised(&e, js.advice.raise(wasabi_limits::Cap::Timers));
                    Err(js.range_error(&message))
                }
            }
        }
        Op::ClearTimeout => {
            let n = to_number(&arg(args, 0));
            if n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) {
                timers.clear(TimerId::Js(n as u32));
            }
            ret(Value::Undefined)
        }
    }
}

//! `console`: `log` and `info` write a line to the guest's stdout, `error` and `warn` to its stderr.

use std::io::Write;

use super::{Binder, Native, NativeResult, ret};
use crate::js::Js;
use crate::output::Output;
use crate::strings::to_js_string;
use crate::value::Value;

/// console methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Log,
    Error,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let console = b.plain()?;
    b.method(console, "log", Native::Console(Op::Log))?;
    b.method(console, "info", Native::Console(Op::Log))?;
    b.method(console, "error", Native::Console(Op::Error))?;
    b.method(console, "warn", Native::Console(Op::Error))?;
    b.heap.define(b.global, "console", Value::Object(console));
    Ok(())
}

pub(crate) fn call(js: &mut Js, output: &mut Output, op: Op, args: &[Value]) -> NativeResult {
    match op {
        Op::Log | Op::Error => {
            let mut line = args
                .iter()
                .map(|v| to_js_string(&js.heap, v))
                .collect::<Vec<_>>()
                .join(" ");
            line.push('\n');
            let sink = if op == Op::Log {
                &mut output.stdout
            } else {
                &mut output.stderr
            };
            let _ = sink.write_all(line.as_bytes()).and_then(|_| sink.flush());
            ret(Value::Undefined)
        }
    }
}

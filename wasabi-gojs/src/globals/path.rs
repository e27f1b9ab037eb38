//! `path.resolve`, folded as the sandbox folds guest paths.

use super::{Binder, Native, NativeResult, ret};
use crate::globals::fs::Files;
use crate::js::Js;
use crate::strings::to_js_string;
use crate::value::Value;
use wasabi_fs::guest_path::normalize;

/// path functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Resolve,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let path = b.plain()?;
    b.method(path, "resolve", Native::Path(Op::Resolve))?;
    b.heap.define(b.global, "path", Value::Object(path));
    Ok(())
}

pub(crate) fn call(js: &mut Js, files: &Files, op: Op, args: &[Value]) -> NativeResult {
    match op {
        Op::Resolve => {
            let parts: Vec<String> = args.iter().map(|v| to_js_string(&js.heap, v)).collect();
            ret(Value::string(resolve_path(files.sandbox.cwd(), &parts)))
        }
    }
}

/// POSIX `path.resolve`: join the segments onto `cwd`, the last absolute
/// segment winning, with `.` and `..` folded (as the sandbox folds guest paths).
pub(crate) fn resolve_path(cwd: &str, segments: &[String]) -> String {
    segments
        .iter()
        .fold(cwd.to_string(), |at, segment| normalize(&at, segment))
}

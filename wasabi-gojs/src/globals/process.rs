//! `process`: fixed ids (the js's do not show through), `umask`, `cwd` and `chdir` on the sandbox, and the constants Go reads (`pid`, `platform`, ...).

use super::{Binder, Native, NativeResult, arg, ret};
use crate::globals::fs::Files;
use crate::js::Js;
use crate::value::Value;

/// process methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Uid,
    Gid,
    Getgroups,
    Umask,
    Cwd,
    Chdir,
}

/// Binds them in the realm.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<(), crate::heap::HeapError> {
    let process = b.plain()?;
    b.heap.define(process, "pid", Value::Number(1.0));
    b.heap.define(process, "ppid", Value::Number(0.0));
    b.heap.define(process, "title", "wasabi".into());
    b.heap.define(process, "platform", "wasabi".into());
    // Fixed ids (wasabi_fs::stat::guest_uid/gid), which also own the
    // guest's files: the js's real ids do not show through.
    for (name, op) in [
        ("getuid", Op::Uid),
        ("geteuid", Op::Uid),
        ("getgid", Op::Gid),
        ("getegid", Op::Gid),
        ("getgroups", Op::Getgroups),
        ("umask", Op::Umask),
        ("cwd", Op::Cwd),
        ("chdir", Op::Chdir),
    ] {
        b.method(process, name, Native::Process(op))?;
    }
    b.heap.define(b.global, "process", Value::Object(process));
    Ok(())
}

pub(crate) fn call(js: &mut Js, files: &mut Files, op: Op, args: &[Value]) -> NativeResult {
    match op {
        Op::Uid => ret(f64::from(wasabi_fs::stat::guest_uid())),
        Op::Gid => ret(f64::from(wasabi_fs::stat::guest_gid())),
        Op::Getgroups => Err(js.system_error("ENOSYS", "not implemented")),
        Op::Umask => {
            let old = files.umask;
            if let Value::Number(n) = arg(args, 0) {
                files.umask = (n as u32) & 0o777;
            }
            ret(f64::from(old))
        }
        Op::Cwd => ret(Value::string(files.sandbox.cwd())),
        Op::Chdir => {
            let Value::String(path) = arg(args, 0) else {
                return Err(js.type_error("The \"directory\" argument must be of type string"));
            };
            match files.sandbox.chdir(&path) {
                Ok(()) => ret(Value::Undefined),
                Err(e) => Err(crate::globals::fs::fs_error(js, &e)),
            }
        }
    }
}

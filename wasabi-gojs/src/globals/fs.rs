//! The `fs` object: Node.js's callback API, as Go's `syscall` package calls
//! it, served by the tenant's [`Sandbox`](wasabi_fs::Sandbox).
//!
//! Every method takes its callback last and ends by calling it — `cb(err)`
//! or `cb(null, result)` — as a tail call (see [`Completion`]). The
//! standard streams are the host's: writes to 1 and 2 go to the tenant's
//! output, and 0 reads as empty. Everything else is the sandbox's: nothing,
//! unless the embedder mounted directories.
//!
//! Arguments come from the guest and are checked: a path that is not a
//! string, a descriptor that is not a small non-negative integer, a window
//! outside its buffer, each throws a `TypeError` or `RangeError`; a failed
//! call reaches the callback as an `Error` whose `code` Go maps to an errno.

use std::io::Write;

use wasabi_fs::{FIRST_FD, FileStat, FsError};

use super::{Completion, NativeResult, arg};
use crate::heap::{Custody, ObjectKind, to_number};
use crate::js::Js;
use crate::output::Output;
use crate::value::Value;

/// What `fs` works with: the JS world, the tenant's files, its output.
pub(crate) struct FsHost<'a> {
    pub(crate) js: &'a mut Js,
    pub(crate) files: &'a mut Files,
    pub(crate) output: &'a mut Output,
}

/// The tenant's files: its sandbox (mounts, working directory, open
/// files) and its umask.
pub(crate) struct Files {
    pub(crate) sandbox: wasabi_fs::Sandbox,
    pub(crate) umask: u32,
}

/// An `fs` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FsOp {
    /// `fs.writeSync(fd, buf)`: returns the count (no callback).
    WriteSync,
    Write,
    Read,
    Open,
    Close,
    Fstat,
    Stat,
    Lstat,
    Readdir,
    Mkdir,
    Rmdir,
    Unlink,
    Rename,
    Link,
    Symlink,
    Readlink,
    Truncate,
    Ftruncate,
    Fsync,
    Chmod,
    Fchmod,
    Utimes,
    /// `chown`, `fchown`, `lchown`: a tenant may not give files away.
    Chown,
}

impl FsOp {
    /// Every method of the `fs` object, by name.
    pub const ALL: [(&'static str, FsOp); 26] = [
        ("writeSync", FsOp::WriteSync),
        ("write", FsOp::Write),
        ("read", FsOp::Read),
        ("open", FsOp::Open),
        ("close", FsOp::Close),
        ("fstat", FsOp::Fstat),
        ("stat", FsOp::Stat),
        ("lstat", FsOp::Lstat),
        ("readdir", FsOp::Readdir),
        ("mkdir", FsOp::Mkdir),
        ("rmdir", FsOp::Rmdir),
        ("unlink", FsOp::Unlink),
        ("rename", FsOp::Rename),
        ("link", FsOp::Link),
        ("symlink", FsOp::Symlink),
        ("readlink", FsOp::Readlink),
        ("truncate", FsOp::Truncate),
        ("ftruncate", FsOp::Ftruncate),
        ("fsync", FsOp::Fsync),
        ("fdatasync", FsOp::Fsync),
        ("chmod", FsOp::Chmod),
        ("fchmod", FsOp::Fchmod),
        ("utimes", FsOp::Utimes),
        ("chown", FsOp::Chown),
        ("fchown", FsOp::Chown),
        ("lchown", FsOp::Chown),
    ];
}

/// Calls an `fs` method.
/// Binds `fs` (its methods and `constants`) in the realm, and makes the
/// prototype of the `fs.Stats` objects it returns (`isDirectory`, ...).
pub(crate) fn install(
    b: &mut super::Binder<'_>,
) -> Result<crate::value::ObjectId, crate::heap::HeapError> {
    use super::Native;
    let fs = b.plain()?;
    let constants = b.plain()?;
    for (name, v) in wasabi_fs::flags::ALL {
        b.heap.define(constants, name, Value::Number(f64::from(v)));
    }
    b.heap.define(fs, "constants", Value::Object(constants));
    for (name, op) in FsOp::ALL {
        b.method(fs, name, Native::Fs(op))?;
    }
    let stats_proto = b.plain()?;
    for (name, mask) in [
        ("isDirectory", 0o040_000),
        ("isFile", 0o100_000),
        ("isSymbolicLink", 0o120_000),
        ("isCharacterDevice", 0o020_000),
        ("isFIFO", 0o010_000),
        ("isSocket", 0o140_000),
        ("isBlockDevice", 0o060_000),
    ] {
        b.method(stats_proto, name, Native::StatsIs(mask))?;
    }
    b.heap.define(b.global, "fs", Value::Object(fs));
    Ok(stats_proto)
}

pub(crate) fn call(host: &mut FsHost<'_>, op: FsOp, args: &[Value]) -> NativeResult {
    if op == FsOp::WriteSync {
        return match write(host, args, false)? {
            Ok(n) => Ok(Completion::Return(Value::Number(n as f64))),
            Err(e) => Err(fs_error(host.js, &e)),
        };
    }
    let callback = args.last().cloned().unwrap_or(Value::Undefined);
    if !super::is_callable(&host.js.heap, &callback) {
        return Err(host
            .js
            .type_error("The \"cb\" argument must be of type function"));
    }
    let args = match run(host, op, args)? {
        Ok(value) => vec![Value::Null, value],
        Err(e) => {
            tracing::debug!(code = e.code(), "fs: {}", e.message());
            vec![fs_error(host.js, &e)]
        }
    };
    // The callback runs in a later turn of the event loop, as Node.js runs
    // it, not inside this call: the goroutine that asked waits for it, so
    // every other runnable goroutine gets its turn first. (Called back at
    // once, a goroutine looping on file calls never blocked, and starved
    // the others.)
    host.js.completions.push_back((callback, args));
    Ok(Completion::Return(Value::Undefined))
}

/// Runs one method: `Err` is a thrown argument error, `Ok(Err)` a failed call.
fn run(host: &mut FsHost<'_>, op: FsOp, args: &[Value]) -> Result<Result<Value, FsError>, Value> {
    match op {
        FsOp::WriteSync
        | FsOp::Write
        | FsOp::Read
        | FsOp::Close
        | FsOp::Fstat
        | FsOp::Ftruncate
        | FsOp::Fsync
        | FsOp::Fchmod => by_descriptor(host, op, args),
        _ => by_path(host, op, args),
    }
}

/// The operations on an open descriptor (0, 1 and 2 are the standard
/// streams).
fn by_descriptor(
    host: &mut FsHost<'_>,
    op: FsOp,
    args: &[Value],
) -> Result<Result<Value, FsError>, Value> {
    let done = |r: Result<(), FsError>| r.map(|()| Value::Undefined);
    Ok(match op {
        FsOp::WriteSync | FsOp::Write => write(host, args, true)?.map(|n| Value::Number(n as f64)),
        FsOp::Read => read(host, args)?.map(|n| Value::Number(n as f64)),
        FsOp::Close => match fd_arg(host, args)? {
            fd if fd < FIRST_FD => Ok(Value::Undefined),
            fd => done(host.files.sandbox.close(fd)),
        },
        FsOp::Fstat => {
            let stat = match fd_arg(host, args)? {
                fd if fd < FIRST_FD => Ok(FileStat::char_device()),
                fd => host.files.sandbox.fstat(fd),
            };
            return stats(host, stat);
        }
        FsOp::Ftruncate => {
            let fd = fd_arg(host, args)?;
            let len = length_arg(host, args, 1)?;
            done(host.files.sandbox.ftruncate(fd, len))
        }
        FsOp::Fsync => match fd_arg(host, args)? {
            fd if fd < FIRST_FD => Ok(Value::Undefined),
            fd => done(host.files.sandbox.fsync(fd)),
        },
        FsOp::Fchmod => {
            let fd = fd_arg(host, args)?;
            let mode = u32_arg(host, args, 1, "mode")?;
            done(host.files.sandbox.fchmod(fd, mode))
        }
        // `run` sends only the operations above here.
        _ => Err(FsError::new("ENOSYS", "not an operation on a descriptor")),
    })
}

/// The operations on a path in the sandbox.
fn by_path(
    host: &mut FsHost<'_>,
    op: FsOp,
    args: &[Value],
) -> Result<Result<Value, FsError>, Value> {
    let done = |r: Result<(), FsError>| r.map(|()| Value::Undefined);
    Ok(match op {
        FsOp::Open => {
            let path = path_arg(host, args, 0)?;
            let flags = match arg(args, 1) {
                Value::Undefined | Value::Null => 0,
                _ => u32_arg(host, args, 1, "flags")?,
            };
            let mode = match arg(args, 2) {
                Value::Undefined | Value::Null => 0o666,
                _ => u32_arg(host, args, 2, "mode")?,
            } & !host.files.umask;
            host.files
                .sandbox
                .open(&path, flags, mode)
                .map(|fd| Value::Number(f64::from(fd)))
        }
        FsOp::Stat | FsOp::Lstat => {
            let path = path_arg(host, args, 0)?;
            let stat = if op == FsOp::Stat {
                host.files.sandbox.stat(&path)
            } else {
                host.files.sandbox.lstat(&path)
            };
            return stats(host, stat);
        }
        FsOp::Readdir => {
            let path = path_arg(host, args, 0)?;
            match host.files.sandbox.readdir(&path) {
                Ok(names) => {
                    let items = names.into_iter().map(Value::string).collect();
                    let array = host
                        .js
                        .new_array(items)
                        .map_err(|e| host.js.heap_error(e))?;
                    Ok(Value::Object(array))
                }
                Err(e) => Err(e),
            }
        }
        FsOp::Mkdir => {
            let path = path_arg(host, args, 0)?;
            let mode = match arg(args, 1) {
                v @ Value::Number(_) => u32_of(host, &v, "mode")?,
                _ => 0o777,
            } & !host.files.umask;
            done(host.files.sandbox.mkdir(&path, mode))
        }
        FsOp::Rmdir | FsOp::Unlink => {
            let path = path_arg(host, args, 0)?;
            done(if op == FsOp::Rmdir {
                host.files.sandbox.rmdir(&path)
            } else {
                host.files.sandbox.unlink(&path)
            })
        }
        FsOp::Rename | FsOp::Link | FsOp::Symlink => {
            let (a, b) = (path_arg(host, args, 0)?, path_arg(host, args, 1)?);
            done(match op {
                FsOp::Rename => host.files.sandbox.rename(&a, &b),
                FsOp::Link => host.files.sandbox.link(&a, &b),
                _ => host.files.sandbox.symlink(&a, &b),
            })
        }
        FsOp::Readlink => {
            let path = path_arg(host, args, 0)?;
            host.files.sandbox.readlink(&path).map(Value::string)
        }
        FsOp::Truncate => {
            let path = path_arg(host, args, 0)?;
            let len = length_arg(host, args, 1)?;
            done(host.files.sandbox.truncate(&path, len))
        }
        FsOp::Chmod => {
            let path = path_arg(host, args, 0)?;
            let mode = u32_arg(host, args, 1, "mode")?;
            done(host.files.sandbox.chmod(&path, mode))
        }
        FsOp::Utimes => {
            let path = path_arg(host, args, 0)?;
            let atime = to_number(&arg(args, 1));
            let mtime = to_number(&arg(args, 2));
            done(host.files.sandbox.utimes(&path, atime, mtime))
        }
        FsOp::Chown => Err(FsError::new(
            "EPERM",
            "changing a file's owner is not allowed in the sandbox",
        )),
        // `run` sends the operations on descriptors elsewhere.
        _ => Err(FsError::new("ENOSYS", "not an operation on a path")),
    })
}

/// `fs.write(fd, buffer, offset, length, position, cb)` (with `windowed`)
/// or `fs.writeSync(fd, buffer)`: to a standard stream or a sandbox file,
/// straight from the heap without copying the buffer.
fn write(
    host: &mut FsHost<'_>,
    args: &[Value],
    windowed: bool,
) -> Result<Result<usize, FsError>, Value> {
    let fd = fd_arg(host, args)?;
    let position = if windowed {
        position_arg(host, args, 4)?
    } else {
        None
    };
    let FsHost { js, files, output } = host;
    let buffer = arg(args, 1);
    let bytes: &[u8] = match &buffer {
        Value::Object(id) => match &js.heap.get(*id).kind {
            ObjectKind::Bytes(b) => b,
            _ => return Err(js.type_error("The \"buffer\" argument must be a Uint8Array")),
        },
        Value::String(s) => s.as_bytes(),
        _ => return Err(js.type_error("The \"buffer\" argument must be a Uint8Array")),
    };
    let range = if windowed {
        match window(bytes.len(), &arg(args, 2), &arg(args, 3)) {
            Some(r) => r,
            None => return Err(out_of_range(js)),
        }
    } else {
        0..bytes.len()
    };
    let whole = range == (0..bytes.len());
    let slice = &bytes[range];
    let written = match fd {
        1 | 2 => {
            let sink = if fd == 1 {
                &mut output.stdout
            } else {
                &mut output.stderr
            };
            sink.write_all(slice)
                .and_then(|()| sink.flush())
                .map(|()| slice.len())
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::BrokenPipe => FsError::new("EPIPE", "broken pipe"),
                    _ => FsError::new("EIO", e.to_string()),
                })
        }
        0 => return Ok(Err(FsError::new("EBADF", "standard input is not writable"))),
        fd => files.sandbox.write(fd, slice, position),
    };
    // A buffer only Go holds, written whole, has gone where it was going
    // (see `Custody`): its bytes are released now, not at Go's next
    // collection.
    if let Value::Object(id) = buffer
        && whole
        && js.heap.get(id).custody != Custody::Shared
    {
        js.heap.release_bytes(id);
    }
    Ok(written)
}

/// `fs.read(fd, buffer, offset, length, position, cb)`: into the heap's
/// buffer, without copying. Standard input is empty.
fn read(host: &mut FsHost<'_>, args: &[Value]) -> Result<Result<usize, FsError>, Value> {
    let fd = fd_arg(host, args)?;
    let position = position_arg(host, args, 4)?;
    let FsHost { js, files, .. } = host;
    let buffer = arg(args, 1);
    let bytes = match &buffer {
        Value::Object(id) => match &mut js.heap.get_mut(*id).kind {
            ObjectKind::Bytes(b) => b,
            _ => return Err(js.type_error("The \"buffer\" argument must be a Uint8Array")),
        },
        _ => return Err(js.type_error("The \"buffer\" argument must be a Uint8Array")),
    };
    let Some(range) = window(bytes.len(), &arg(args, 2), &arg(args, 3)) else {
        return Err(out_of_range(js));
    };
    if fd < FIRST_FD {
        return Ok(match fd {
            0 => Ok(0),
            _ => Err(FsError::new("EBADF", "standard output is not readable")),
        });
    }
    let read = files.sandbox.read(fd, &mut bytes[range], position);
    // Filled for Go to copy out: released once it has (see `Custody`).
    if let Value::Object(id) = buffer
        && js.heap.get(id).custody == Custody::GoOnly
    {
        js.heap.get_mut(id).custody = Custody::FilledForGo;
    }
    Ok(read)
}

/// The `offset`/`length` window of a buffer of `len` bytes (`undefined`
/// or `null` meaning "from 0" and "to the end"), or `None` when it does
/// not fit.
fn window(len: usize, offset: &Value, length: &Value) -> Option<std::ops::Range<usize>> {
    let offset = match offset {
        Value::Undefined | Value::Null => 0.0,
        v => to_number(v),
    };
    let length = match length {
        Value::Undefined | Value::Null => len as f64 - offset,
        v => to_number(v),
    };
    let fits = offset >= 0.0
        && length >= 0.0
        && offset.fract() == 0.0
        && length.fract() == 0.0
        && offset + length <= len as f64;
    fits.then_some(offset as usize..(offset + length) as usize)
}

fn out_of_range(js: &mut Js) -> Value {
    js.range_error("The value of \"offset\" or \"length\" is out of range")
}

/// Calls back with a `fs.Stats`-like object, or the error.
fn stats(
    host: &mut FsHost<'_>,
    stat: Result<FileStat, FsError>,
) -> Result<Result<Value, FsError>, Value> {
    let stat = match stat {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let proto = host.js.realm.stats_proto;
    let id = host
        .js
        .alloc_object(ObjectKind::Ordinary, proto)
        .map_err(|e| host.js.heap_error(e))?;
    for (name, v) in [
        ("dev", stat.dev as f64),
        ("ino", stat.ino as f64),
        ("mode", f64::from(stat.mode)),
        ("nlink", stat.nlink as f64),
        ("uid", f64::from(stat.uid)),
        ("gid", f64::from(stat.gid)),
        ("rdev", stat.rdev as f64),
        ("size", stat.size as f64),
        ("blksize", stat.blksize as f64),
        ("blocks", stat.blocks as f64),
        ("atimeMs", stat.atime_ms),
        ("mtimeMs", stat.mtime_ms),
        ("ctimeMs", stat.ctime_ms),
    ] {
        host.js.heap.define(id, name, Value::Number(v));
    }
    Ok(Ok(Value::Object(id)))
}

/// `Stats.prototype.isDirectory()` and friends: from `this.mode`.
pub(crate) fn stats_is(host: &mut FsHost<'_>, this: &Value, mask: u32) -> NativeResult {
    let mode = host
        .js
        .heap
        .get_property(this, crate::heap::Key::Name("mode"))
        .map_err(|e| host.js.heap_error(e))?;
    let mode = to_number(&mode);
    let is = mode.is_finite() && (mode as u32) & 0o170_000 == mask;
    Ok(Completion::Return(Value::Bool(is)))
}

/// The guest-facing error for a failed call: `Error` with `code`.
pub(crate) fn fs_error(js: &mut Js, e: &FsError) -> Value {
    js.system_error(e.code(), &format!("{}: {}", e.code(), e.message()))
}

fn path_arg(host: &mut FsHost<'_>, args: &[Value], i: usize) -> Result<String, Value> {
    match arg(args, i) {
        Value::String(s) => Ok(s.to_string()),
        _ => Err(host
            .js
            .type_error("The \"path\" argument must be of type string")),
    }
}

fn u32_of(host: &mut FsHost<'_>, v: &Value, what: &str) -> Result<u32, Value> {
    let n = to_number(v);
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) {
        Ok(n as u32)
    } else {
        Err(host.js.range_error(&format!(
            "The \"{what}\" argument must be a 32-bit unsigned integer"
        )))
    }
}

fn u32_arg(host: &mut FsHost<'_>, args: &[Value], i: usize, what: &str) -> Result<u32, Value> {
    u32_of(host, &arg(args, i), what)
}

fn fd_arg(host: &mut FsHost<'_>, args: &[Value]) -> Result<u32, Value> {
    u32_arg(host, args, 0, "fd")
}

/// A file position: `null`/`undefined` for "the current offset".
fn position_arg(host: &mut FsHost<'_>, args: &[Value], i: usize) -> Result<Option<u64>, Value> {
    match arg(args, i) {
        Value::Undefined | Value::Null => Ok(None),
        v => length_of(host, &v, "position").map(Some),
    }
}

fn length_arg(host: &mut FsHost<'_>, args: &[Value], i: usize) -> Result<u64, Value> {
    length_of(host, &arg(args, i), "len")
}

fn length_of(host: &mut FsHost<'_>, v: &Value, what: &str) -> Result<u64, Value> {
    let n = to_number(v);
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        Ok(n as u64)
    } else {
        Err(host
            .js
            .range_error(&format!("The \"{what}\" argument is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHost;
    use crate::GoHostBuilder;
    use crate::heap::Key;

    fn host() -> GoHost {
        GoHostBuilder::new()
            .limits(wasabi_limits::TenantLimits {
                max_object_bytes: 1 << 20,
                ..Default::default()
            })
            .build()
            .unwrap()
    }

    fn callback(host: &GoHost) -> Value {
        let global = Value::Object(host.js.realm.global);
        host.js
            .heap
            .get_property(&global, Key::Name("setTimeout"))
            .unwrap()
    }

    fn thrown(host: &mut GoHost, op: FsOp, args: &[Value]) -> String {
        match call(&mut host.fs_host(), op, args) {
            Err(e) => crate::strings::to_js_string(&host.js.heap, &e),
            Ok(c) => panic!("{op:?} should throw, got {c:?}"),
        }
    }

    /// The error a call passes to its callback.
    fn called_back_code(host: &mut GoHost, op: FsOp, args: &[Value]) -> Value {
        match call(&mut host.fs_host(), op, args) {
            Ok(Completion::Return(Value::Undefined)) => {
                let (_, args) = host.js.completions.pop_back().expect("a queued callback");
                host.js
                    .heap
                    .get_property(&args[0], Key::Name("code"))
                    .unwrap()
            }
            other => panic!("{op:?} should call back, got {other:?}"),
        }
    }

    #[test]
    fn hostile_arguments_throw_or_fail_without_touching_anything() {
        let mut host = host();
        let cb = callback(&host);
        let proto = host.js.realm.bytes_proto;
        let buf = Value::Object(host.js.heap.alloc_bytes(8, proto).unwrap());
        // No callback, a path that is not a string, a bad descriptor.
        assert!(thrown(&mut host, FsOp::Stat, &["/x".into()]).contains("cb"));
        assert!(thrown(&mut host, FsOp::Stat, &[Value::Number(1.0), cb.clone()]).contains("path"));
        for fd in [-1.0, 1.5, f64::NAN, 1e20] {
            let msg = thrown(&mut host, FsOp::Fstat, &[Value::Number(fd), cb.clone()]);
            assert!(msg.starts_with("RangeError"), "{fd}: {msg}");
        }
        // A window outside the buffer, and a buffer that is not one.
        for (offset, length) in [
            (0.0, 9.0),
            (4.0, 5.0),
            (-1.0, 1.0),
            (0.5, 1.0),
            (0.0, 1e300),
        ] {
            let args = [
                Value::Number(0.0),
                buf.clone(),
                Value::Number(offset),
                Value::Number(length),
                Value::Null,
                cb.clone(),
            ];
            assert!(thrown(&mut host, FsOp::Read, &args).starts_with("RangeError"));
            assert!(thrown(&mut host, FsOp::Write, &args).starts_with("RangeError"));
        }
        let args = [Value::Number(1.0), Value::Null, cb.clone()];
        assert!(thrown(&mut host, FsOp::Write, &args).starts_with("TypeError"));
        // Descriptors nobody opened, and paths outside every mount.
        let args = [
            Value::Number(77.0),
            buf.clone(),
            Value::Null,
            Value::Null,
            Value::Null,
            cb.clone(),
        ];
        assert_eq!(
            called_back_code(&mut host, FsOp::Read, &args),
            Value::from("EBADF")
        );
        let args = [
            Value::from("/etc/shadow"),
            Value::Number(0.0),
            Value::Number(0.0),
            cb.clone(),
        ];
        assert_eq!(
            called_back_code(&mut host, FsOp::Open, &args),
            Value::from("ENOENT")
        );
        let args = [Value::from("/x"), Value::from("/y"), cb.clone()];
        assert_eq!(
            called_back_code(&mut host, FsOp::Rename, &args),
            Value::from("ENOENT")
        );
        let args = [
            Value::from("/x"),
            Value::Number(0.0),
            Value::Number(0.0),
            cb,
        ];
        assert_eq!(
            called_back_code(&mut host, FsOp::Chown, &args),
            Value::from("EPERM")
        );
        assert_eq!(host.files.sandbox.open_files(), 0);
    }
}

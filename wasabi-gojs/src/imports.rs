//! The `gojs` (and legacy `go`) import module: one handler per import, each
//! reading its arguments through a [`Frame`] at Go's stack pointer.

use wasmtime::{AsContextMut, Caller, Linker, Module};

use crate::GoView;
use crate::calling::{GuestExit, HostError, import_error, load, store};
use crate::event_loop::{ValueCallKind, value_call};
use crate::guest_memory::{Frame, GuestMemory};
use crate::heap::{Callable, Custody, Key, ObjectKind};
use crate::host::GoHost;
use crate::strings::js_string;
use crate::timers::TimerId;
use crate::value::Value;

/// Which generation of Go's js/wasm ABI a module was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Abi {
    /// Go 1.21 and later: imports from module `gojs`.
    Gojs,
    /// Go 1.20 and earlier: the same imports from module `go`.
    Legacy,
}

impl Abi {
    /// The import module name of this ABI.
    pub fn module_name(self) -> &'static str {
        match self {
            Abi::Gojs => "gojs",
            Abi::Legacy => "go",
        }
    }

    /// The ABI of a module, from its import module names, or `None` when it
    /// imports from neither `gojs` nor `go` (it is not a Go js/wasm module).
    pub fn from_import_modules<'a>(modules: impl IntoIterator<Item = &'a str>) -> Option<Abi> {
        let mut legacy = false;
        for m in modules {
            match m {
                "gojs" => return Some(Abi::Gojs),
                "go" => legacy = true,
                _ => {}
            }
        }
        legacy.then_some(Abi::Legacy)
    }

    /// The ABI of a compiled module.
    pub fn detect(module: &Module) -> Option<Abi> {
        let names: Vec<String> = module.imports().map(|i| i.module().to_string()).collect();
        Abi::from_import_modules(names.iter().map(String::as_str))
    }
}

type Handler = fn(&mut GoHost, &mut GuestMemory<'_>, Frame) -> Result<(), HostError>;

/// Runs a synchronous handler with the host and memory of `caller`.
fn with_memory<T: GoView>(
    caller: &mut Caller<'_, T>,
    import: &'static str,
    f: impl FnOnce(&mut GoHost, &mut GuestMemory<'_>) -> Result<(), HostError>,
) -> wasmtime::Result<()> {
    let memory = match &caller.data_mut().go().exports {
        Some(e) => e.memory,
        None => return Err(import_error(import, HostError::NotStarted)),
    };
    let (bytes, data) = memory.data_and_store_mut(caller.as_context_mut());
    let host = data.go();
    host.maybe_collect();
    let mut mem = GuestMemory::new(bytes);
    f(host, &mut mem).map_err(|kind| import_error(import, kind))
}

/// The synchronous imports, by name.
const SYNC_IMPORTS: &[(&str, Handler)] = &[
    ("runtime.wasmWrite", wasm_write),
    ("runtime.resetMemoryDataView", |_, _, _| Ok(())),
    ("runtime.nanotime1", nanotime),
    ("runtime.walltime", walltime),
    ("runtime.walltime1", walltime),
    ("runtime.scheduleTimeoutEvent", schedule_timeout_event),
    ("runtime.clearTimeoutEvent", clear_timeout_event),
    ("runtime.getRandomData", get_random_data),
    ("syscall/js.finalizeRef", finalize_ref),
    ("syscall/js.stringVal", string_val),
    ("syscall/js.valueGet", value_get),
    ("syscall/js.valueSet", value_set),
    ("syscall/js.valueDelete", value_delete),
    ("syscall/js.valueIndex", value_index),
    ("syscall/js.valueSetIndex", value_set_index),
    ("syscall/js.valueLength", value_length),
    ("syscall/js.valuePrepareString", value_prepare_string),
    ("syscall/js.valueLoadString", value_load_string),
    ("syscall/js.valueInstanceOf", value_instance_of),
    ("syscall/js.copyBytesToGo", copy_bytes_to_go),
    ("syscall/js.copyBytesToJS", copy_bytes_to_js),
];

/// Defines every import of `abi`'s module on `linker`, and the companion
/// module's own (`wasabi`, see [`crate::companion`]).
pub fn add_to_linker<T: GoView>(linker: &mut Linker<T>, abi: Abi) -> wasmtime::Result<()> {
    let module = abi.module_name();
    crate::companion::add_to_linker(linker)?;
    for &(name, handler) in SYNC_IMPORTS {
        linker.func_wrap(module, name, move |mut caller: Caller<'_, T>, sp: i32| {
            with_memory(&mut caller, name, |host, mem| {
                tracing::trace!(import = name, sp, "gojs call");
                handler(host, mem, Frame::new(sp))
            })
        })?;
    }
    linker.func_wrap(
        module,
        "runtime.wasmExit",
        |mut caller: Caller<'_, T>, sp: i32| -> wasmtime::Result<()> {
            let mut code = 0;
            with_memory(&mut caller, "runtime.wasmExit", |host, mem| {
                code = Frame::new(sp).i32(mem, 8)?;
                host.exit_code = Some(code);
                host.flush();
                Ok(())
            })?;
            Err(wasmtime::Error::new(GuestExit(code)))
        },
    )?;
    linker.func_wrap(module, "debug", |value: i32| {
        tracing::debug!(value, "Go runtime debug");
    })?;
    for (name, kind) in [
        ("syscall/js.valueCall", ValueCallKind::Method),
        ("syscall/js.valueInvoke", ValueCallKind::Invoke),
        ("syscall/js.valueNew", ValueCallKind::New),
    ] {
        linker.func_wrap_async(
            module,
            name,
            move |mut caller: Caller<'_, T>, (sp,): (i32,)| {
                Box::new(async move {
                    tracing::trace!(import = name, sp, "gojs call");
                    value_call(&mut caller, name, kind, sp).await
                })
            },
        )?;
    }
    Ok(())
}

fn wasm_write(host: &mut GoHost, mem: &mut GuestMemory<'_>, frame: Frame) -> Result<(), HostError> {
    use std::io::Write;
    let fd = frame.i64(mem, 8)?;
    let addr = frame.i64(mem, 16)? as u64;
    let len = frame.i32(mem, 24)? as u32;
    let bytes = mem.slice(addr, u64::from(len))?;
    let sink = match fd {
        1 => &mut host.output.stdout,
        2 => &mut host.output.stderr,
        _ => return Ok(()),
    };
    let _ = sink.write_all(bytes).and_then(|_| sink.flush());
    Ok(())
}

fn nanotime(host: &mut GoHost, mem: &mut GuestMemory<'_>, frame: Frame) -> Result<(), HostError> {
    Ok(frame.set_u64(mem, 8, host.js.clock.nanotime() as u64)?)
}

fn walltime(_: &mut GoHost, mem: &mut GuestMemory<'_>, frame: Frame) -> Result<(), HostError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    frame.set_u64(mem, 8, now.as_secs())?;
    Ok(frame.set_u32(mem, 16, now.subsec_nanos())?)
}

fn schedule_timeout_event(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let ms = frame.i64(mem, 8)?.max(0) as u64;
    let id = host
        .timers
        .schedule_runtime(std::time::Duration::from_millis(ms))?;
    Ok(frame.set_u32(mem, 16, id as u32)?)
}

fn clear_timeout_event(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let id = frame.i32(mem, 8)?;
    host.timers.clear(TimerId::Runtime(id));
    Ok(())
}

fn get_random_data(
    _: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let (addr, len) = frame.span(mem, 8)?;
    let buf = mem.slice_mut(addr, len)?;
    getrandom::fill(buf).map_err(|e| HostError::Uncaught(format!("random source failed: {e}")))
}

fn finalize_ref(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let id = frame.u32(mem, 8)?;
    if !host.table.finalize(id) {
        tracing::debug!(id, "finalizeRef of an unknown reference");
    }
    Ok(())
}

fn string_val(host: &mut GoHost, mem: &mut GuestMemory<'_>, frame: Frame) -> Result<(), HostError> {
    let text = frame.string(mem, 8)?;
    // Check the tenant's memory before copying the text into the host.
    host.js.heap.meter().fits_host(text.len() as u64)?;
    let s = Value::string(text);
    store(host, mem, frame, 24, &s)
}

fn value_get(host: &mut GoHost, mem: &mut GuestMemory<'_>, frame: Frame) -> Result<(), HostError> {
    let target = load(host, mem, frame, 8)?;
    let name = frame.string(mem, 16)?;
    let v = host.js.heap.get_property(&target, Key::Name(&name))?;
    store(host, mem, frame, 32, &v)
}

fn value_set(host: &mut GoHost, mem: &mut GuestMemory<'_>, frame: Frame) -> Result<(), HostError> {
    let target = load(host, mem, frame, 8)?;
    let name = frame.string(mem, 16)?;
    let v = load(host, mem, frame, 32)?;
    Ok(host.js.heap.set_property(&target, Key::Name(&name), v)?)
}

fn value_delete(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let target = load(host, mem, frame, 8)?;
    let name = frame.string(mem, 16)?;
    Ok(host.js.heap.delete_property(&target, Key::Name(&name))?)
}

fn value_index(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let target = load(host, mem, frame, 8)?;
    let i = frame.i64(mem, 16)?;
    let v = host.js.heap.get_property(&target, Key::Index(i))?;
    store(host, mem, frame, 24, &v)
}

fn value_set_index(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let target = load(host, mem, frame, 8)?;
    let i = frame.i64(mem, 16)?;
    let v = load(host, mem, frame, 24)?;
    Ok(host.js.heap.set_property(&target, Key::Index(i), v)?)
}

fn value_length(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let target = load(host, mem, frame, 8)?;
    let len = host.js.heap.get_property(&target, Key::Name("length"))?;
    // `parseInt(v.length)`: anything but a finite number reads as 0.
    let n = match len {
        Value::Number(n) if n.is_finite() => n.trunc() as i64,
        _ => 0,
    };
    Ok(frame.set_u64(mem, 16, n as u64)?)
}

fn value_prepare_string(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let v = load(host, mem, frame, 8)?;
    // The prepared form is the string itself: `valueLoadString` copies its
    // UTF-8 bytes, so no intermediate byte array is allocated.
    let s = match v {
        Value::String(s) => s,
        other => js_string(&host.js.heap, &other)?.into(),
    };
    let len = s.len() as u64;
    store(host, mem, frame, 16, &Value::String(s))?;
    Ok(frame.set_u64(mem, 24, len)?)
}

fn value_load_string(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let v = load(host, mem, frame, 8)?;
    let (addr, len) = frame.span(mem, 16)?;
    let dst = mem.slice_mut(addr, len)?;
    let copy = |dst: &mut [u8], src: &[u8]| {
        let n = dst.len().min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
    };
    match &v {
        Value::String(s) => copy(dst, s.as_bytes()),
        Value::Object(id) => match &host.js.heap.get(*id).kind {
            ObjectKind::Bytes(b) => copy(dst, b),
            _ => {
                return Err(HostError::Uncaught(
                    "TypeError: valueLoadString: not a string".into(),
                ));
            }
        },
        _ => {
            return Err(HostError::Uncaught(
                "TypeError: valueLoadString: not a string".into(),
            ));
        }
    }
    Ok(())
}

fn value_instance_of(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let v = load(host, mem, frame, 8)?;
    let t = load(host, mem, frame, 16)?;
    let is = match &t {
        Value::Object(id)
            if matches!(
                host.js.heap.get(*id).kind,
                ObjectKind::Function(Callable::Host(_))
            ) =>
        {
            match host.js.heap.get_property(&t, Key::Name("prototype"))? {
                Value::Object(proto) => host.js.heap.inherits(&v, proto),
                _ => false,
            }
        }
        _ => false,
    };
    Ok(frame.set_bool(mem, 24, is)?)
}

fn copy_bytes_to_go(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let (addr, len) = frame.span(mem, 8)?;
    let src = load(host, mem, frame, 32)?;
    let Some(ObjectKind::Bytes(bytes)) = src.as_object().map(|id| &host.js.heap.get(id).kind)
    else {
        return Ok(frame.set_bool(mem, 48, false)?);
    };
    let n = bytes.len().min(len as usize);
    mem.slice_mut(addr, n as u64)?.copy_from_slice(&bytes[..n]);
    frame.set_u64(mem, 40, n as u64)?;
    // A buffer the host filled for Go alone has now reached Go.
    if let Some(id) = src.as_object()
        && host.js.heap.get(id).custody == Custody::FilledForGo
    {
        host.js.heap.release_bytes(id);
    }
    Ok(frame.set_bool(mem, 48, true)?)
}

fn copy_bytes_to_js(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
) -> Result<(), HostError> {
    let dst = load(host, mem, frame, 8)?;
    let (addr, len) = frame.span(mem, 16)?;
    let Some(id) = dst.as_object() else {
        return Ok(frame.set_bool(mem, 48, false)?);
    };
    let ObjectKind::Bytes(bytes) = &mut host.js.heap.get_mut(id).kind else {
        return Ok(frame.set_bool(mem, 48, false)?);
    };
    let n = bytes.len().min(len as usize);
    bytes[..n].copy_from_slice(mem.slice(addr, n as u64)?);
    frame.set_u64(mem, 40, n as u64)?;
    Ok(frame.set_bool(mem, 48, true)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_is_chosen_by_import_module() {
        assert_eq!(Abi::from_import_modules(["gojs", "env"]), Some(Abi::Gojs));
        assert_eq!(Abi::from_import_modules(["go"]), Some(Abi::Legacy));
        assert_eq!(Abi::from_import_modules(["wasi_snapshot_preview1"]), None);
        assert_eq!(Abi::from_import_modules([]), None);
    }
}

//! The calling convention of a `gojs` import, shared by the imports and
//! the event loop: how an import ends badly (the errors the guest traps
//! with, and the program's exit) and how a JS value is read from or written
//! to the Go stack frame as a reference.

use crate::guest_memory::{Frame, GuestMemory, MemoryError};
use crate::heap::HeapError;
use crate::host::GoHost;
use crate::memory::MemoryLimitExceeded;
use crate::table::TableError;
use crate::timers::TooManyTimers;
use crate::value::{Ref, Value};

/// The guest called `runtime.wasmExit`: the program is over. Carried as the
/// error that unwinds the guest's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the program exited with code {0}")]
pub struct GuestExit(pub i32);

/// A host operation the guest asked for could not be carried out; the guest
/// traps with this as the reason.
#[derive(Debug, thiserror::Error)]
#[error("{import}: {kind}")]
pub struct ImportError {
    /// The import that failed, such as `syscall/js.valueGet`.
    pub import: &'static str,
    /// What went wrong (shown in the message, so not also a `source`).
    pub kind: HostError,
}

/// What can go wrong inside an import.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A pointer or length outside linear memory.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A reference the table does not hold, or too many references.
    #[error(transparent)]
    Table(TableError),
    /// The tenant's memory limit would be broken.
    #[error(transparent)]
    MemoryLimit(#[from] MemoryLimitExceeded),
    /// Too many timers.
    #[error(transparent)]
    Timers(#[from] TooManyTimers),
    /// A JS exception where JS would have thrown out of the import (for
    /// example reading a property of `undefined`).
    #[error("uncaught JavaScript exception: {0}")]
    Uncaught(String),
    /// The module called an import before the host started it.
    #[error("the guest called the host before `run`")]
    NotStarted,
}

impl From<TableError> for HostError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Memory(m) => HostError::MemoryLimit(m),
            e => HostError::Table(e),
        }
    }
}

impl From<HeapError> for HostError {
    fn from(e: HeapError) -> Self {
        if let HeapError::Memory(m) = e {
            return HostError::MemoryLimit(m);
        }
        HostError::Uncaught(match e {
            HeapError::NotAnObject { .. } => format!("TypeError: {e}"),
            _ => format!("RangeError: {e}"),
        })
    }
}

pub(crate) fn import_error(import: &'static str, kind: HostError) -> wasmtime::Error {
    // A broken memory limit ends the tenant the same way whether linear
    // memory or host memory went over: as the limit error itself, which
    // the embedder recognises.
    if let HostError::MemoryLimit(limit) = kind {
        return wasmtime::Error::new(limit);
    }
    wasmtime::Error::new(ImportError { import, kind })
}

pub(crate) fn load(
    host: &GoHost,
    mem: &GuestMemory<'_>,
    frame: Frame,
    offset: u64,
) -> Result<Value, HostError> {
    Ok(host.table.load(Ref(frame.u64(mem, offset)?))?)
}

pub(crate) fn store(
    host: &mut GoHost,
    mem: &mut GuestMemory<'_>,
    frame: Frame,
    offset: u64,
    value: &Value,
) -> Result<(), HostError> {
    let r = host.table.store(&host.js.heap, value)?;
    frame.set_u64(mem, offset, r.0)?;
    Ok(())
}

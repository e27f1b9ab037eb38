//! Calling a host function: the one place that knows both the guest's
//! whole host ([`GoHost`]) and the globals, and hands each global only the
//! parts of the host it owns.

use crate::globals::fetch::{self, FetchHost};
use crate::globals::fs::{self, FsHost};
use crate::globals::net;
use crate::globals::{
    Completion, Native, array, bytes, console, crypto, date, errors, go, object, path, performance,
    process, promise, timers,
};
use crate::heap::HostFn;
use crate::host::GoHost;
use crate::value::Value;

impl GoHost {
    /// What `fs` works with.
    pub(crate) fn fs_host(&mut self) -> FsHost<'_> {
        FsHost {
            js: &mut self.js,
            files: &mut self.files,
            output: &mut self.output,
        }
    }

    /// What `fetch` works with.
    pub(crate) fn fetch_host(&mut self) -> FetchHost<'_> {
        FetchHost {
            js: &mut self.js,
            requests: &mut self.requests,
        }
    }
}

/// Calls the host function numbered `f` (a function object's
/// [`Callable::Host`](crate::heap::Callable::Host)). `construct` is true
/// for `new F(...)`.
pub(crate) fn call(
    host: &mut GoHost,
    f: HostFn,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> Completion {
    let Some(&native) = usize::try_from(f.0).ok().and_then(|i| host.natives.get(i)) else {
        // Only the realm numbers host functions; a number it did not hand
        // out cannot be in the heap, but would still only be a JS error.
        return Completion::Throw(host.js.type_error("not a function"));
    };
    call_native(host, native, this, args, construct)
}

/// Calls `native` itself (what [`call`] does once it knows which).
pub(crate) fn call_native(
    host: &mut GoHost,
    native: Native,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> Completion {
    let js = &mut host.js;
    let result = match native {
        Native::Object(op) => object::call(js, op, this, args),
        Native::Array(op) => array::call(js, op, this, args),
        Native::Bytes(op) => bytes::call(js, op, this, args, construct),
        Native::Error(op) => errors::call(js, op, this, args),
        Native::Date(op) => date::call(js, op, this, args, construct),
        Native::Console(op) => console::call(js, &mut host.output, op, args),
        Native::Crypto(op) => crypto::call(js, op, args),
        Native::Performance(op) => performance::call(js, op),
        Native::Timers(op) => timers::call(js, &mut host.timers, op, args),
        Native::Process(op) => process::call(js, &mut host.files, op, args),
        Native::Path(op) => path::call(js, &host.files, op, args),
        Native::Fs(op) => fs::call(&mut host.fs_host(), op, args),
        Native::StatsIs(mask) => fs::stats_is(&mut host.fs_host(), this, mask),
        Native::Net(op) => net::call(&mut host.js, &mut host.network, op, args),
        Native::Fetch(op) => fetch::call(&mut host.fetch_host(), op, this, args, construct),
        Native::Promise(op) => promise::call(js, op, this, args, construct),
        Native::Go(op) => go::call(js, op, args),
    };
    result.unwrap_or_else(Completion::Throw)
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;

//! What a tenant may use, in one object, and how its owner is told when it
//! reaches the edge of it.
//!
//! [`TenantLimits`] holds every cap a tenant has, each with its documented
//! default. Each cap is enforced in exactly one place, by the crate that
//! owns the resource, which is handed only its own number:
//!
//! | cap | enforced in |
//! |---|---|
//! | [`TenantLimits::max_memory`] | `wasabi-gojs`'s `MemoryMeter`, shared by wasmtime's resource limiter and the JS heap |
//! | [`TenantLimits::max_cpu`] | `wasabi-core`'s CPU meter around every call into the guest |
//! | [`TenantLimits::max_sockets`] | `wasabi-net`'s `SocketQuota`: listeners, connections, dials and `fetch` requests |
//! | [`TenantLimits::max_object_bytes`] | `wasabi-gojs`'s object heap |
//! | [`TenantLimits::max_open_files`] | `wasabi-fs`'s `Sandbox` |
//! | [`TenantLimits::max_references`] | `wasabi-gojs`'s reference table |
//! | [`TenantLimits::max_timers`] | `wasabi-gojs`'s timers |
//! | [`TenantLimits::http`] | `wasabi-net`'s HTTP ingress, which answers for the tenant (431, 413, 408, 503) |
//!
//! Below the edge nothing knows a flag's name. A crate that refuses
//! something says what it refused — a [`Cap`] reached, a [`Grant`] missing —
//! and the edge that configured the tenant (the CLI, the manifest, an
//! embedder) says how to change that, in its own user's words, through an
//! [`Advice`]:
//!
//! ```
//! use wasabi_limits::{Advice, Cap, Grant};
//!
//! /// The words of a hypothetical admin console.
//! #[derive(Debug)]
//! struct Console;
//!
//! impl Advice for Console {
//!     fn grant(&self, grant: &Grant<'_>) -> Option<String> {
//!         Some(format!("ask an admin to allow {grant}"))
//!     }
//!     fn raise(&self, cap: Cap) -> Option<String> {
//!         Some(format!("ask an admin for more {cap}"))
//!     }
//! }
//!
//! let denied = Grant::Connect { endpoint: "10.0.0.1:80" };
//! assert_eq!(Console.grant(&denied).unwrap(), "ask an admin to allow connecting to 10.0.0.1:80");
//! assert_eq!(Console.raise(Cap::Memory).unwrap(), "ask an admin for more memory");
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;

/// Default [`TenantLimits::max_sockets`].
pub const DEFAULT_MAX_SOCKETS: usize = 1024;
/// Default [`TenantLimits::max_object_bytes`]: 256 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: usize = 256 << 20;
/// Default [`TenantLimits::max_open_files`].
pub const DEFAULT_MAX_OPEN_FILES: usize = 1024;
/// Default [`TenantLimits::max_references`].
pub const DEFAULT_MAX_REFERENCES: usize = 1 << 22;
/// Default [`TenantLimits::max_timers`].
pub const DEFAULT_MAX_TIMERS: usize = 1 << 16;

/// Every cap one tenant runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantLimits {
    /// Most memory the tenant may use, in bytes: its linear memory and the
    /// host memory held for it (JS objects, typed arrays, strings)
    /// together. `None` (the default) leaves wasm's own 4 GiB bound on
    /// linear memory, and [`TenantLimits::max_object_bytes`] on host memory.
    pub max_memory: Option<u64>,
    /// Most CPU the tenant may use, as a fraction of one core (`0.5` = half
    /// a core). `None` (the default): no budget; it still shares the
    /// machine fairly, preempted every epoch tick.
    pub max_cpu: Option<f64>,
    /// Sockets the tenant may hold open at once: listeners, connections,
    /// dials in progress and outbound HTTP requests, counted together.
    /// Default [`DEFAULT_MAX_SOCKETS`].
    pub max_sockets: usize,
    /// Host bytes a Go js/wasm tenant's JS objects may occupy (typed
    /// arrays, objects, the strings Go holds). Default
    /// [`DEFAULT_MAX_OBJECT_BYTES`].
    pub max_object_bytes: usize,
    /// Files and directories the tenant may hold open at once. Default
    /// [`DEFAULT_MAX_OPEN_FILES`].
    pub max_open_files: usize,
    /// Live references to JS values a Go js/wasm tenant may hold. Default
    /// [`DEFAULT_MAX_REFERENCES`].
    pub max_references: usize,
    /// Timers a tenant may have pending at once. Default
    /// [`DEFAULT_MAX_TIMERS`].
    pub max_timers: usize,
    /// What the host's HTTP server accepts from clients on the tenant's
    /// behalf when the tenant serves HTTP through the host.
    pub http: HttpLimits,
}

/// The limits of the HTTP server the host runs for a tenant
/// (`wasabi.ListenAndServe` under Wasabi). The host enforces each one
/// itself and answers the client with the status that says so; a request
/// that breaks one never reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request head (request line and headers), in bytes; a larger
    /// one gets `431 Request Header Fields Too Large`. Default
    /// [`HttpLimits::DEFAULT_MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Largest request body, in bytes: a declared `Content-Length` above it
    /// gets `413 Content Too Large` at once; a chunked body that grows past
    /// it gets 413 when it does (or a reset, if the response has started).
    /// Default [`HttpLimits::DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: u64,
    /// Time a client has to send a whole request head, counted from when
    /// the connection is ready for one (so for HTTP/1.1 also the longest a
    /// kept-alive connection may sit idle between requests). A slow client
    /// gets `408 Request Timeout` and the connection closes. Default
    /// [`HttpLimits::DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: std::time::Duration,
    /// Longest a connection may move no bytes while no request on it is in
    /// progress (HTTP/2 connections, and HTTP/1.1 ones between requests)
    /// before the host closes it. Default [`HttpLimits::DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: std::time::Duration,
    /// Requests the tenant may have in progress at once (waiting for its
    /// handler or being answered); past it, clients get
    /// `503 Service Unavailable` with `Retry-After`. Default
    /// [`HttpLimits::DEFAULT_MAX_REQUESTS`].
    pub max_requests: usize,
}

impl HttpLimits {
    /// Default [`HttpLimits::max_header_bytes`]: 64 KiB.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;
    /// Default [`HttpLimits::max_body_bytes`]: 32 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 << 20;
    /// Default [`HttpLimits::header_timeout`]: 10 s.
    pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
    /// Default [`HttpLimits::idle_timeout`]: 120 s.
    pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
    /// Default [`HttpLimits::max_requests`].
    pub const DEFAULT_MAX_REQUESTS: usize = 1024;
    /// The smallest [`HttpLimits::max_header_bytes`] the server can work
    /// with (HTTP/1 parsing needs a buffer at least this large).
    pub const MIN_HEADER_BYTES: usize = 8192;
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_header_bytes: HttpLimits::DEFAULT_MAX_HEADER_BYTES,
            max_body_bytes: HttpLimits::DEFAULT_MAX_BODY_BYTES,
            header_timeout: HttpLimits::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: HttpLimits::DEFAULT_IDLE_TIMEOUT,
            max_requests: HttpLimits::DEFAULT_MAX_REQUESTS,
        }
    }
}

/// Host memory held for a tenant outside its guest world (bytes a host
/// server buffers for it), counted against the same limit as everything
/// else it uses. Charges and releases may come from any thread.
pub trait HostMemory: fmt::Debug + Send + Sync {
    /// Counts `bytes` more; `false` (and nothing counted) past the limit.
    fn charge(&self, bytes: u64) -> bool;
    /// `bytes` counted earlier were freed.
    fn release(&self, bytes: u64);
}

/// A [`HostMemory`] with no limit that counts nothing, for embedders and
/// tests that meter nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Uncounted;

impl HostMemory for Uncounted {
    fn charge(&self, _: u64) -> bool {
        true
    }
    fn release(&self, _: u64) {}
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_memory: None,
            max_cpu: None,
            max_sockets: DEFAULT_MAX_SOCKETS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            max_references: DEFAULT_MAX_REFERENCES,
            max_timers: DEFAULT_MAX_TIMERS,
            http: HttpLimits::default(),
        }
    }
}

/// One of the caps of [`TenantLimits`], named in refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    /// [`TenantLimits::max_memory`].
    Memory,
    /// [`TenantLimits::max_cpu`].
    Cpu,
    /// [`TenantLimits::max_sockets`].
    Sockets,
    /// [`TenantLimits::max_object_bytes`].
    ObjectBytes,
    /// [`TenantLimits::max_open_files`].
    OpenFiles,
    /// [`TenantLimits::max_references`].
    References,
    /// [`TenantLimits::max_timers`].
    Timers,
}

impl Cap {
    /// Every cap, in the order [`TenantLimits`] lists them.
    pub const ALL: [Cap; 7] = [
        Cap::Memory,
        Cap::Cpu,
        Cap::Sockets,
        Cap::ObjectBytes,
        Cap::OpenFiles,
        Cap::References,
        Cap::Timers,
    ];

    /// A stable name with its unit, for machines: `/tenants`' `limits`
    /// keys and `/metrics`' `limit` label.
    pub fn key(self) -> &'static str {
        match self {
            Cap::Memory => "memory_bytes",
            Cap::Cpu => "cpu_cores",
            Cap::Sockets => "sockets",
            Cap::ObjectBytes => "js_heap_bytes",
            Cap::OpenFiles => "open_files",
            Cap::References => "js_references",
            Cap::Timers => "timers",
        }
    }
}

impl TenantLimits {
    /// The value of one cap, as a number in the unit [`Cap::key`] names;
    /// `None` when it is not capped.
    pub fn get(&self, cap: Cap) -> Option<f64> {
        match cap {
            Cap::Memory => self.max_memory.map(|b| b as f64),
            Cap::Cpu => self.max_cpu,
            Cap::Sockets => Some(self.max_sockets as f64),
            Cap::ObjectBytes => Some(self.max_object_bytes as f64),
            Cap::OpenFiles => Some(self.max_open_files as f64),
            Cap::References => Some(self.max_references as f64),
            Cap::Timers => Some(self.max_timers as f64),
        }
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cap::Memory => "memory",
            Cap::Cpu => "CPU",
            Cap::Sockets => "sockets",
            Cap::ObjectBytes => "memory for JS objects",
            Cap::OpenFiles => "open files",
            Cap::References => "JS references",
            Cap::Timers => "timers",
        })
    }
}

/// A network grant a tenant lacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant<'a> {
    /// Listening on a local address.
    Listen {
        /// The address, as the guest gave it.
        endpoint: &'a str,
    },
    /// Connecting to a host and port.
    Connect {
        /// The host and port, as the guest gave them.
        endpoint: &'a str,
    },
}

impl fmt::Display for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::Listen { endpoint } => write!(f, "listening on {endpoint}"),
            Grant::Connect { endpoint } => write!(f, "connecting to {endpoint}"),
        }
    }
}

/// How the edge that configured a tenant tells its user to change what
/// the tenant was refused: a flag under `wasabi run`, a manifest field
/// under `wasabi serve`, nothing for an embedder that says nothing.
pub trait Advice: fmt::Debug + Send + Sync {
    /// How to grant what was denied, e.g. `grant it with
    /// --allow-connect=10.0.0.1:80`.
    fn grant(&self, grant: &Grant<'_>) -> Option<String> {
        let _ = grant;
        None
    }

    /// How to raise a cap the tenant reached, e.g. `raise it with
    /// --max-memory`.
    fn raise(&self, cap: Cap) -> Option<String> {
        let _ = cap;
        None
    }
}

/// Advice that says nothing: refusals state what happened, and no more.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAdvice;

impl Advice for NoAdvice {}

/// An [`Advice`] shared by everything that words a tenant's refusals.
pub type SharedAdvice = Arc<dyn Advice>;

/// `message`, followed by `: advice` when there is advice.
pub fn advised(message: impl fmt::Display, advice: Option<String>) -> String {
    match advice {
        Some(advice) => format!("{message}: {advice}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_advice_leaves_the_message_as_it_is() {
        let grant = Grant::Listen {
            endpoint: "127.0.0.1:8080",
        };
        assert_eq!(
            advised(format!("{grant} is not allowed"), NoAdvice.grant(&grant)),
            "listening on 127.0.0.1:8080 is not allowed"
        );
        assert_eq!(advised("x", Some("y".into())), "x: y");
    }

    #[test]
    fn every_cap_has_a_distinct_key_and_a_value() {
        let keys: std::collections::BTreeSet<_> = Cap::ALL.iter().map(|c| c.key()).collect();
        assert_eq!(keys.len(), Cap::ALL.len());
        let limits = TenantLimits {
            max_memory: Some(64 << 20),
            max_cpu: Some(0.5),
            ..TenantLimits::default()
        };
        assert_eq!(limits.get(Cap::Memory), Some(f64::from(64u32 << 20)));
        assert_eq!(limits.get(Cap::Cpu), Some(0.5));
        assert_eq!(TenantLimits::default().get(Cap::Memory), None);
        assert_eq!(limits.get(Cap::Timers), Some(65536.0));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let l = TenantLimits::default();
        assert_eq!((l.max_memory, l.max_cpu), (None, None));
        assert_eq!(l.max_sockets, 1024);
        assert_eq!(l.max_object_bytes, 256 << 20);
        assert_eq!(l.max_open_files, 1024);
        assert_eq!(l.max_references, 1 << 22);
        assert_eq!(l.max_timers, 1 << 16);
    }
}

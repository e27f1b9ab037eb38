//! Networking for Wasabi tenants: TCP sockets and listeners as host objects
//! on tokio, and the network policy that decides what a tenant may reach.
//!
//! * [`NetPolicy`] — nothing is reachable by default; [`AddressRule`]s
//!   (`127.0.0.1:8080`, `10.0.0.0/8:5432`, `example.com:443`) grant listening
//!   and connecting; a denial says what was denied ([`NetError::Denied`]),
//!   and the tenant owner's [`wasabi_limits::Advice`] says how to grant it.
//! * [`Sockets`] — one instance's sockets: readiness-based `listen`,
//!   `accept`, `dial`, `read`, `write`, `shutdown`, `close`; an operation
//!   that would block arms a wait that rings the instance's [`Doorbell`]
//!   when the socket is ready. A cap on open sockets ([`SocketQuota`],
//!   shared with the HTTP client), and everything closed when it is
//!   dropped.
//! * [`HttpClient`] — the requests behind a guest's `fetch`: `http:` and
//!   `https:` (rustls, certificates always verified against [`ClientTls`],
//!   HTTP/2 by ALPN), a per-tenant connection pool under the same cap,
//!   redirects as the Fetch standard says, bodies moved on demand both ways.
//! * [`Doorbell`] — how everything a guest waits for (sockets, requests of
//!   the host's HTTP server) tells its event loop, as integer [`token`]s.
//! * [`Ingress`] — the HTTP server the host runs for a tenant: hyper
//!   accepts and parses, the tenant's handler gets request ids and heads,
//!   and bodies stream both ways through bounded buffers.
//!
//! This crate knows nothing of JavaScript or Go; `wasabi-gojs` exposes it to
//! guests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wasabi_net::NetError> {
//! use std::sync::Arc;
//! use wasabi_net::{AddressRule, Doorbell, Sockets, NetPolicy, SocketQuota, token};
//!
//! let mut policy = NetPolicy::deny_all();
//! policy.allow_listen("127.0.0.1".parse::<AddressRule>().expect("a valid rule"));
//! let bell = Arc::new(Doorbell::default());
//! let mut net = Sockets::new(policy, SocketQuota::new(16), Arc::clone(&bell));
//! let listener = net.listen("tcp", "127.0.0.1:0")?;
//! assert_eq!(net.accept(listener)?, None); // nobody has connected yet...
//! assert_eq!(bell.armed(), 1); // ...and token::SOCKET_READABLE | listener rings when someone does
//! assert!(net.dial("tcp", "10.0.0.1:80").is_err()); // connecting is not granted
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod address;
mod doorbell;
mod drain;
mod error;
mod http;
mod ingress;
mod policy;
mod quota;
mod sockets;
#[cfg(any(test, feature = "testbed"))]
pub mod testbed;

pub use address::{Endpoint, Family, Host};
pub use doorbell::{Doorbell, Ringer, token};
pub use drain::DrainSignal;
pub use error::{NetError, NetUse, errno_number};
pub use http::{
    BODY_CHUNK, CONNECTION_MEMORY, ClientTls, FetchEvent, FetchId, HttpClient, HttpRequest,
    IDLE_TIMEOUT, MAX_IDLE_PER_ORIGIN, MAX_REDIRECTS, RedirectMode, TlsFailure,
};
pub use ingress::{
    BodyRead, HeadError, Ingress, IngressError, IngressHandle, LATENCY_BOUNDS, RequestId,
    RequestStats, RequestStatsSnapshot, ResponseBody, Route, RouteError, Router, ServerTls,
    TenantLookup, TlsError,
};
pub use policy::{AddressRule, NetPolicy, RuleParseError};
pub use quota::{QuotaSlot, Reclaim, SocketQuota};
pub use sockets::{NetStats, SocketId, Sockets};

//! [`Router`]: one host listener in front of many tenants, as an edge proxy
//! or a platform router is. A request goes to the tenant whose route
//! matches its `Host` (and, optionally, the start of its path); it enters
//! that tenant's [`Ingress`](super::Ingress) as if it had come on the
//! tenant's own listener, under the tenant's own limits. An unknown host
//! gets `404`; a tenant that is not serving right now (restarting, or not
//! yet listening) gets `503` with `Retry-After`.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, RwLock};

use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use tokio::io::unix::AsyncFd;
use wasabi_limits::{HttpLimits, Uncounted};

use super::body::{Aborted, ResponseBody};
use super::server::{self, Origin};
use super::{Ingress, IngressHandle, ServerTls, Shared};
use crate::SocketQuota;

/// A route: a host name (no port, any case) and a path prefix (`/` for
/// the whole host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    host: String,
    prefix: String,
}

/// A route that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a route: {reason}; write HOST or HOST/PATH, e.g. blog.example.com or example.com/shop"
)]
pub struct RouteError {
    text: String,
    reason: &'static str,
}

impl std::str::FromStr for Route {
    type Err = RouteError;

    fn from_str(text: &str) -> Result<Route, RouteError> {
        let fail = |reason| RouteError {
            text: text.to_string(),
            reason,
        };
        let (host, path) = match text.find('/') {
            Some(i) => text.split_at(i),
            None => (text, "/"),
        };
        if host.is_empty() {
            return Err(fail("it has no host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(fail("a host is letters, digits, `-` and `.`"));
        }
        if path.contains(['?', '#', ' ']) {
            return Err(fail("a path prefix has no query, fragment or space"));
        }
        let prefix = path.trim_end_matches('/');
        Ok(Route {
            host: route_host(host),
            prefix: if prefix.is_empty() {
                "/".into()
            } else {
                prefix.into()
            },
        })
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix == "/" {
            f.write_str(&self.host)
        } else {
            write!(f, "{}{}", self.host, self.prefix)
        }
    }
}

impl Route {
    /// Whether this route takes a request for `host` (lowercase, no port)
    /// and `path`: the host is the same and the path is the prefix or
    /// below it (`/shop` takes `/shop` and `/shop/cart`, not `/shopping`).
    fn takes(&self, host: &str, path: &str) -> bool {
        self.host == host
            && (self.prefix == "/"
                || path == self.prefix
                || path
                    .strip_prefix(self.prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// The host a request names (its absolute URI's, or its `Host` header), as
/// routes are written: lowercase, without the port, and without the
/// trailing dot of a fully qualified name (`Blog.Example.:8080` is
/// `blog.example`). Empty when there is none.
fn route_host(named: &str) -> String {
    // Strip the port, but not the colons inside an IPv6 literal's brackets.
    let host = match named.rfind(':') {
        Some(i) if !named[i..].contains(']') => &named[..i],
        _ => named,
    };
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Finds a tenant's ingress by name (the supervisor's current run of it).
pub type TenantLookup = Arc<dyn Fn(&str) -> Option<IngressHandle> + Send + Sync>;

/// The routes, and how to reach a tenant.
pub(crate) struct RouteTable {
    routes: RwLock<Vec<(Route, String)>>,
    lookup: TenantLookup,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable").finish_non_exhaustive()
    }
}

impl RouteTable {
    /// The tenant a request goes to: the longest prefix that takes it.
    fn tenant_for(&self, host: &str, path: &str) -> Option<String> {
        let routes = self.routes.read().ok()?;
        routes
            .iter()
            .filter(|(r, _)| r.takes(host, path))
            .max_by_key(|(r, _)| r.prefix.len())
            .map(|(_, t)| t.clone())
    }

    /// Sends `req` to its tenant, or answers it here.
    pub(crate) async fn dispatch(
        &self,
        from: Origin,
        req: hyper::Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Aborted> {
        let host = req.uri().host().or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
        });
        let host = host.map(route_host).unwrap_or_default();
        let Some(tenant) = self.tenant_for(&host, req.uri().path()) else {
            return Ok(server::status_response(
                StatusCode::NOT_FOUND,
                "no tenant serves this host and path\n",
                &[],
            ));
        };
        let Some(ingress) = (self.lookup)(&tenant).filter(IngressHandle::is_serving) else {
            return Ok(server::status_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the tenant is not serving right now\n",
                &[("retry-after", "1")],
            ));
        };
        ingress.offer(from, req).await
    }
}

/// One host listener routing to many tenants.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// use std::sync::Arc;
/// use wasabi_net::Router;
///
/// let router = Router::new(Arc::new(|_tenant: &str| None), None);
/// router.set_routes(vec![("blog.example.com".parse().unwrap(), "blog".into())]);
/// router.serve(std::net::TcpListener::bind("127.0.0.1:8080")?)?;
/// # Ok(()) }
/// ```
pub struct Router {
    table: Arc<RouteTable>,
    /// The router's own server state: its connections, shutdown, limits
    /// on request heads (before any tenant is known).
    server: Ingress,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

/// Most connections a router holds open at once.
const MAX_ROUTER_CONNECTIONS: usize = 16384;

impl Router {
    /// A router that finds tenants with `lookup` and speaks TLS with `tls`
    /// if given. It routes nothing until [`Router::set_routes`].
    pub fn new(lookup: TenantLookup, tls: Option<ServerTls>) -> Router {
        let table = Arc::new(RouteTable {
            routes: RwLock::default(),
            lookup,
        });
        // The router's own doorbell rings for no guest: its requests are
        // queued in (and ring) the tenants' ingresses.
        let mut server = Ingress::new(
            Arc::default(),
            HttpLimits::default(),
            tls,
            SocketQuota::new(MAX_ROUTER_CONNECTIONS),
            Arc::new(Uncounted),
            Arc::default(),
        );
        server.route_with(Arc::clone(&table));
        Router { table, server }
    }

    /// Replaces the routes: each route and the tenant it goes to.
    pub fn set_routes(&self, routes: Vec<(Route, String)>) {
        if let Ok(mut r) = self.table.routes.write() {
            *r = routes;
        }
    }

    /// Starts accepting on `listener`; the router serves until dropped.
    /// Must be called within a tokio runtime.
    pub fn serve(&self, listener: StdListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        // SAFETY: the std listener owns its descriptor, and the AsyncFd owns
        // the listener until both are dropped together.
        let listener =
            Arc::new(unsafe { AsyncFd::register(listener) }.map_err(|e| e.into_parts().1)?);
        let shared: &Arc<Shared> = &self.server.shared;
        // The task stops with the router (its shutdown signal).
        let _ = server::spawn_acceptor(Arc::clone(shared), listener, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_take_what_they_should() {
        let r: Route = "Example.com/shop/".parse().unwrap();
        assert_eq!(r.to_string(), "example.com/shop");
        assert!(r.takes("example.com", "/shop"));
        assert!(r.takes("example.com", "/shop/cart"));
        assert!(!r.takes("example.com", "/shopping"));
        assert!(!r.takes("other.com", "/shop"));
        let whole: Route = "blog.example".parse().unwrap();
        assert!(whole.takes("blog.example", "/anything"));
        for bad in ["", "/x", "a b", "host:80", "h/p?q"] {
            assert!(bad.parse::<Route>().is_err(), "{bad}");
        }
        let dotted: Route = "Blog.Example.".parse().unwrap();
        assert_eq!(dotted.to_string(), "blog.example");
    }

    #[test]
    fn a_request_s_host_is_read_as_routes_are_written() {
        for (named, host) in [
            ("a.test", "a.test"),
            ("A.Test", "a.test"),
            ("a.test.", "a.test"),
            ("a.test.:8080", "a.test"),
            ("a.test:8080", "a.test"),
            ("[::1]:80", "[::1]"),
            ("[::1]", "[::1]"),
            ("", ""),
            (":80", ""),
            ("a.test..", "a.test."),
        ] {
            assert_eq!(route_host(named), host, "{named:?}");
        }
        let r: Route = "a.test".parse().unwrap();
        assert!(r.takes(&route_host("A.TEST.:443"), "/"));
        assert!(!r.takes(&route_host("a.test.."), "/"));
        assert!(!r.takes(&route_host("xa.test"), "/"));
    }
}

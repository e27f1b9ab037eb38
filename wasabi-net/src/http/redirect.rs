//! Redirects as the Fetch standard's "HTTP-redirect fetch" handles them:
//! what a request's [`RedirectMode`] does with a 3xx response, and how the
//! next request differs from the last (method, body, headers).

use hyper::Method;
use hyper::header::{self, HeaderMap};

use crate::NetError;

/// How many redirects a request follows before failing, as in the Fetch
/// standard (and browsers, and Node.js).
pub const MAX_REDIRECTS: u32 = 20;

/// What a request does with a redirect (`fetch`'s `redirect` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedirectMode {
    /// Follow it, each hop under the connect policy; the response says it
    /// was redirected and gives the final URL. The default.
    #[default]
    Follow,
    /// Return the 3xx response as it is (a Go program's client then follows
    /// it itself, under its own `CheckRedirect`).
    Manual,
    /// Fail the request.
    Error,
}

impl std::str::FromStr for RedirectMode {
    type Err = NetError;

    fn from_str(s: &str) -> Result<RedirectMode, NetError> {
        match s {
            "follow" => Ok(RedirectMode::Follow),
            "manual" => Ok(RedirectMode::Manual),
            "error" => Ok(RedirectMode::Error),
            other => Err(NetError::Http(format!(
                "invalid redirect mode `{other}`: follow, manual or error"
            ))),
        }
    }
}

/// `true` for the statuses that redirect.
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// One request of a chain of redirects.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    pub(crate) method: Method,
    pub(crate) url: url::Url,
    pub(crate) headers: HeaderMap,
    /// Whether this request sends the body.
    pub(crate) with_body: bool,
}

/// The request that follows `hop` after a `status` response pointing at
/// `location`, when `hops` redirects were followed before it.
pub(crate) fn next(hop: &Hop, status: u16, location: &str, hops: u32) -> Result<Hop, NetError> {
    if hops >= MAX_REDIRECTS {
        return Err(NetError::Http(format!(
            "too many redirects (more than {MAX_REDIRECTS})"
        )));
    }
    let mut url = hop
        .url
        .join(location)
        .map_err(|e| NetError::Http(format!("invalid redirect location `{location}`: {e}")))?;
    url.set_fragment(None);
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NetError::Http(format!(
            "redirect to `{url}` refused: only http: and https: are followed"
        )));
    }
    let mut next = Hop {
        method: hop.method.clone(),
        url,
        headers: hop.headers.clone(),
        with_body: hop.with_body,
    };
    let to_get = match status {
        301 | 302 => hop.method == Method::POST,
        303 => hop.method != Method::GET && hop.method != Method::HEAD,
        _ => false,
    };
    if to_get {
        next.method = Method::GET;
        next.with_body = false;
        for name in [
            header::CONTENT_ENCODING,
            header::CONTENT_LANGUAGE,
            header::CONTENT_LOCATION,
            header::CONTENT_TYPE,
        ] {
            next.headers.remove(name);
        }
    }
    // Credentials meant for one origin are not handed to another.
    if next.url.origin() != hop.url.origin() {
        next.headers.remove(header::AUTHORIZATION);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(method: Method, url: &str) -> Hop {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        Hop {
            method,
            url: url.parse().unwrap(),
            headers,
            with_body: true,
        }
    }

    #[test]
    fn methods_and_bodies_change_as_the_fetch_standard_says() {
        let post = hop(Method::POST, "http://a.test/x/y");
        for (status, method, body) in [
            (301, Method::GET, false),
            (302, Method::GET, false),
            (303, Method::GET, false),
            (307, Method::POST, true),
            (308, Method::POST, true),
        ] {
            let n = next(&post, status, "z", 0).unwrap();
            assert_eq!((n.method.clone(), n.with_body), (method, body), "{status}");
            assert_eq!(n.url.as_str(), "http://a.test/x/z");
            assert_eq!(n.headers.contains_key(header::CONTENT_TYPE), body);
            assert!(n.headers.contains_key(header::AUTHORIZATION), "same origin");
        }
        let put = hop(Method::PUT, "http://a.test/");
        assert_eq!(next(&put, 302, "/", 0).unwrap().method, Method::PUT);
        assert_eq!(next(&put, 303, "/", 0).unwrap().method, Method::GET);
    }

    #[test]
    fn credentials_stay_with_their_origin_and_bad_hops_fail() {
        let get = hop(Method::GET, "https://a.test/");
        let n = next(&get, 302, "https://b.test/", 0).unwrap();
        assert!(!n.headers.contains_key(header::AUTHORIZATION));
        let n = next(&get, 302, "http://a.test/", 0).unwrap();
        assert!(
            !n.headers.contains_key(header::AUTHORIZATION),
            "another scheme is another origin"
        );
        for location in ["file:///etc/passwd", "data:text/plain,hi", "http://[::1"] {
            assert!(next(&get, 302, location, 0).is_err(), "{location}");
        }
        assert!(next(&get, 302, "/", MAX_REDIRECTS).is_err());
        assert!("sideways".parse::<RedirectMode>().is_err());
    }
}

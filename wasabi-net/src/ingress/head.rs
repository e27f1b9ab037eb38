//! The byte layouts in which request heads go to the guest and response
//! heads come back: length-prefixed fields, little-endian, so the guest
//! reads them with a few loads and no parser.
//!
//! A request head, as [`encode_request`] writes it:
//!
//! | field | encoding |
//! |---|---|
//! | protocol | `u8`: 10 = HTTP/1.0, 11 = HTTP/1.1, 20 = HTTP/2 |
//! | flags | `u8`: bit 0 = chunked (HTTP/1 `Transfer-Encoding: chunked`), bit 1 = the client asked to close, bit 2 = the connection is TLS |
//! | content length | `i64`: the body's length, 0 when there is none, -1 when unknown |
//! | listener | `u32`: the guest's id of the listener the request came in on |
//! | method, request URI, host, remote address | each `u32` length + bytes |
//! | over TLS only (flags bit 2): server name (SNI), ALPN protocol | each `u32` length + bytes |
//! | over TLS only: TLS version | `u16` (0x0303 = 1.2, 0x0304 = 1.3) |
//! | header count | `u32` |
//! | each header | name (canonical form, as Go's `textproto` writes it), value: each `u32` length + bytes |
//!
//! A response head or trailer block, as the guest writes it and
//! [`decode_fields`] reads it: header count `u32`, then each name and value
//! as `u32` length + bytes; an empty block has no fields.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Version, request};

/// A request head the guest cannot take in: more than `u32` can count.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The layout is cut short or a length points past its end.
    #[error("the header block is malformed: {0}")]
    Malformed(&'static str),
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s);
}

/// Writes `name` the way Go's `textproto.CanonicalMIMEHeaderKey` does
/// (`content-type` → `Content-Type`), so the guest's `http.Header` has the
/// keys a native server gives it without converting each one.
fn put_canonical(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    let mut upper = true;
    for &b in name.as_bytes() {
        let c = if upper {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        };
        out.push(c);
        upper = c == b'-';
    }
}

/// What a request's connection negotiated over TLS.
#[derive(Debug, Clone)]
pub(crate) struct TlsInfo {
    pub(crate) server_name: String,
    pub(crate) alpn: String,
    pub(crate) version: u16,
}

/// The request as the guest's handler sees it, in the layout above.
/// `chunked` and the `Host` header are given as Go's server gives them: the
/// `Host` header becomes the host field and `Transfer-Encoding: chunked`
/// a flag, neither stays among the headers.
pub(crate) fn encode_request(
    parts: &request::Parts,
    content_length: i64,
    listener: u32,
    remote: &str,
    tls: Option<&TlsInfo>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(match parts.version {
        Version::HTTP_10 => 10,
        Version::HTTP_2 => 20,
        _ => 11,
    });
    let chunked = parts
        .headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let close = parts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    out.push(u8::from(chunked) | u8::from(close) << 1 | u8::from(tls.is_some()) << 2);
    out.extend_from_slice(&content_length.to_le_bytes());
    out.extend_from_slice(&listener.to_le_bytes());
    put_str(&mut out, parts.method.as_str().as_bytes());
    // HTTP/2 carries the target in pseudo-headers; Go's RequestURI is the
    // path there, and the request-target as sent for HTTP/1.
    let uri = if parts.version == Version::HTTP_2 {
        parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string())
    } else {
        parts.uri.to_string()
    };
    put_str(&mut out, uri.as_bytes());
    let host = match parts.uri.authority() {
        Some(a) => a.as_str().as_bytes().to_vec(),
        None => parts
            .headers
            .get(http::header::HOST)
            .map_or(Vec::new(), |h| h.as_bytes().to_vec()),
    };
    put_str(&mut out, &host);
    put_str(&mut out, remote.as_bytes());
    if let Some(tls) = tls {
        put_str(&mut out, tls.server_name.as_bytes());
        put_str(&mut out, tls.alpn.as_bytes());
        out.extend_from_slice(&tls.version.to_le_bytes());
    }
    let skip = |name: &HeaderName| {
        name == http::header::HOST || (chunked && name == http::header::TRANSFER_ENCODING)
    };
    let count = parts.headers.iter().filter(|(n, _)| !skip(n)).count();
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for (name, value) in parts.headers.iter().filter(|(n, _)| !skip(n)) {
        put_canonical(&mut out, name.as_str());
        put_str(&mut out, value.as_bytes());
    }
    out
}

/// Reads a header block the guest wrote. A name that is not a valid field
/// name is left out, and line breaks in a value become spaces, as Go's own
/// server does when it writes a response.
pub(crate) fn decode_fields(mut bytes: &[u8]) -> Result<HeaderMap, HeadError> {
    // No block at all is no fields (a response without trailers).
    if bytes.is_empty() {
        return Ok(HeaderMap::new());
    }
    let mut take = |n: usize| -> Result<&[u8], HeadError> {
        if bytes.len() < n {
            return Err(HeadError::Malformed("it ends in the middle of a field"));
        }
        let (head, rest) = bytes.split_at(n);
        bytes = rest;
        Ok(head)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
    let count = u32_at(take(4)?);
    let mut headers = HeaderMap::new();
    for _ in 0..count {
        let len = u32_at(take(4)?);
        let name = take(len)?;
        let len = u32_at(take(4)?);
        let value = take(len)?;
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        let value: Vec<u8> = value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            continue;
        };
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            put_str(&mut out, n.as_bytes());
            put_str(&mut out, v.as_bytes());
        }
        out
    }

    #[test]
    fn names_are_canonical_as_go_writes_them() {
        let mut out = Vec::new();
        put_canonical(&mut out, "x-forwarded-for");
        assert_eq!(&out[4..], b"X-Forwarded-For");
        out.clear();
        put_canonical(&mut out, "www-authenticate");
        assert_eq!(&out[4..], b"Www-Authenticate");
    }

    #[test]
    fn a_request_head_carries_what_go_reads() {
        let req = http::Request::post("/a?b=1")
            .header("host", "example.com")
            .header("transfer-encoding", "chunked")
            .header("x-one", "1")
            .header("x-one", "2")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let out = encode_request(&parts, -1, 3, "127.0.0.1:5000", None);
        assert_eq!(out[0], 11);
        assert_eq!(out[1] & 1, 1);
        assert_eq!(i64::from_le_bytes(out[2..10].try_into().unwrap()), -1);
        assert_eq!(u32::from_le_bytes(out[10..14].try_into().unwrap()), 3);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("POST") && text.contains("/a?b=1") && text.contains("example.com"));
        assert!(text.contains("X-One") && !text.contains("Transfer-Encoding"));
    }

    #[test]
    fn hostile_header_blocks_are_refused_or_cleaned() {
        assert!(decode_fields(&[]).unwrap().is_empty());
        assert!(decode_fields(&[1, 0]).is_err());
        assert!(decode_fields(&[1, 0, 0, 0, 255, 255, 255, 255]).is_err());
        // A count far larger than the block ends where the bytes do.
        assert!(decode_fields(&[255, 255, 255, 255]).is_err());
        let h = decode_fields(&fields(&[
            ("Bad Name", "x"),
            ("X-Split", "a\r\nb"),
            ("X-Ok", "1"),
        ]))
        .unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h["x-split"], "a  b");
        assert_eq!(h["x-ok"], "1");
    }
}

//! HTTP/2 over cleartext by upgrade (RFC 7540 §3.2): a client sends an
//! HTTP/1.1 request with `Upgrade: h2c` and `HTTP2-Settings`; the server
//! answers `101 Switching Protocols`, and from then on the connection speaks
//! HTTP/2, the first request being stream 1, whose response the client
//! awaits there.
//!
//! hyper's HTTP/2 server has no way to start with a stream the client did
//! not open with a HEADERS frame, so the host gives it one: once the 101 is
//! out, it reads the client's connection preface and first SETTINGS frame
//! (which the client must send first), and splices in, right after them, a
//! HEADERS frame for stream 1 that carries the upgraded request, encoded with
//! literal HPACK representations that leave both sides' header tables
//! untouched. The server then serves stream 1 like any other. The
//! `HTTP2-Settings` header is not applied separately: the client's SETTINGS
//! frame, which carries the same values, is read before stream 1 is.
//!
//! Only requests without a body are upgraded (a body would have to be read
//! in HTTP/1.1 first) and only when the request fits one frame; any other
//! request asking to upgrade is served over HTTP/1.1, as RFC 7540 allows
//! ("a server MAY ignore an upgrade"). TLS connections negotiate HTTP/2 by
//! ALPN instead and are never upgraded.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What every HTTP/2 connection starts with, from the client.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest frame payload an HTTP/2 endpoint must accept (the default
/// `SETTINGS_MAX_FRAME_SIZE`): stream 1's HEADERS frame fits it, or the
/// request is not upgraded; the client's SETTINGS frame fits it, or the
/// connection ends.
const MAX_FRAME: usize = 16_384;

/// Whether `req` asks to upgrade to HTTP/2 over cleartext in a way this
/// server takes: HTTP/1.1, `Upgrade: h2c`, one `HTTP2-Settings`, both named
/// in `Connection`, and no body.
pub(super) fn asks_upgrade<B>(req: &hyper::Request<B>) -> bool {
    let h = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    req.version() == hyper::Version::HTTP_11
        && req.method() != hyper::Method::CONNECT
        && has_token(header::UPGRADE, "h2c")
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::CONNECTION, "http2-settings")
        && h.get_all("http2-settings").iter().count() == 1
        && !h.contains_key(header::TRANSFER_ENCODING)
        && h.get(header::CONTENT_LENGTH).is_none_or(|v| v == "0")
}

/// The `101 Switching Protocols` that accepts an upgrade (`empty` is the
/// body type's empty body).
pub(super) fn switching<B>(empty: B) -> hyper::Response<B> {
    let mut response = hyper::Response::new(empty);
    *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    response
}

/// The HEADERS frame that opens stream 1 with `req` (ending the stream:
/// the request has no body), or `None` when it does not fit one frame.
pub(super) fn stream_one<B>(req: &hyper::Request<B>) -> Option<Vec<u8>> {
    let uri = req.uri();
    let authority = uri
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| req.headers().get(header::HOST).map(HeaderValue::as_bytes))
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut block = Vec::new();
    literal(&mut block, b":method", req.method().as_str().as_bytes());
    literal(&mut block, b":scheme", b"http");
    literal(&mut block, b":authority", authority);
    literal(&mut block, b":path", path.as_bytes());
    for (name, value) in fields(req.headers()) {
        literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
    }
    if block.len() > MAX_FRAME {
        return None;
    }
    let len = block.len() as u32;
    let mut frame = Vec::with_capacity(9 + block.len());
    frame.extend_from_slice(&len.to_be_bytes()[1..]);
    // HEADERS, END_STREAM | END_HEADERS, stream 1.
    frame.extend_from_slice(&[0x1, 0x1 | 0x4, 0, 0, 0, 1]);
    frame.extend_from_slice(&block);
    Some(frame)
}

/// The request's fields as HTTP/2 carries them: without those that are
/// about the HTTP/1.1 connection (RFC 9113 §8.2.2) and without `Host`,
/// which became `:authority`.
fn fields(headers: &HeaderMap) -> impl Iterator<Item = (&header::HeaderName, &HeaderValue)> {
    headers.iter().filter(|(name, value)| {
        let connection_specific = [
            header::CONNECTION,
            header::UPGRADE,
            header::TRANSFER_ENCODING,
            header::HOST,
        ]
        .contains(name)
            || ["http2-settings", "keep-alive", "proxy-connection"].contains(&name.as_str());
        let te = *name == header::TE && *value != "trailers";
        !connection_specific && !te
    })
}

/// Appends a "literal header field without indexing — new name" (RFC 7541
/// §6.2.2): it changes neither side's dynamic table.
fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.push(0x00);
    string(block, name);
    string(block, value);
}

/// Appends a string literal without Huffman coding (RFC 7541 §5.2).
fn string(block: &mut Vec<u8>, s: &[u8]) {
    integer(block, 7, 0x00, s.len());
    block.extend_from_slice(s);
}

/// Appends `n` with an `prefix`-bit prefix (RFC 7541 §5.1), the byte's
/// higher bits being `flags`.
fn integer(block: &mut Vec<u8>, prefix: u32, flags: u8, mut n: usize) {
    let max = (1usize << prefix) - 1;
    if n < max {
        block.push(flags | n as u8);
        return;
    }
    block.push(flags | max as u8);
    n -= max;
    while n >= 128 {
        block.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    block.push(n as u8);
}

/// Reads the client's preface and first SETTINGS frame from `io` (within
/// `within`), and returns `io` reading them back followed by `headers` and
/// then the rest of the connection. Fails when the client does not start
/// HTTP/2 as it must.
pub(super) async fn splice<I>(
    mut io: I,
    headers: Vec<u8>,
    within: Duration,
) -> io::Result<Spliced<I>>
where
    I: AsyncRead + Unpin,
{
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut start = Vec::with_capacity(PREFACE.len() + 9 + 64);
    let read = async {
        loop {
            if start.len() >= PREFACE.len() + 9 {
                if &start[..PREFACE.len()] != PREFACE {
                    return Err(bad("the client did not send the HTTP/2 preface"));
                }
                let h = &start[PREFACE.len()..PREFACE.len() + 9];
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                if h[3] != 0x4 || h[5..9] != [0, 0, 0, 0] || len > MAX_FRAME {
                    return Err(bad("the client's first frame is not SETTINGS"));
                }
                let end = PREFACE.len() + 9 + len;
                if start.len() >= end {
                    return Ok(end);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            start.extend_from_slice(&chunk[..n]);
        }
    };
    let end = tokio::time::timeout(within, read)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let rest = start.split_off(end);
    start.extend_from_slice(&headers);
    start.extend_from_slice(&rest);
    Ok(Spliced {
        io,
        prefix: start,
        at: 0,
    })
}

/// A connection that first reads back `prefix`.
pub(super) struct Spliced<I> {
    io: I,
    prefix: Vec<u8>,
    at: usize,
}

impl<I: AsyncRead + Unpin> AsyncRead for Spliced<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Spliced<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> hyper::Request<()> {
        let mut b = hyper::Request::builder().uri("/x?y=1");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    const CURL: [(&str, &str); 4] = [
        ("host", "a.test"),
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
    ];

    #[test]
    fn only_a_well_formed_upgrade_without_a_body_is_taken() {
        assert!(asks_upgrade(&request(&CURL)));
        let without = |skip: &str| {
            let h: Vec<_> = CURL.iter().copied().filter(|(n, _)| *n != skip).collect();
            request(&h)
        };
        assert!(!asks_upgrade(&without("upgrade")));
        assert!(!asks_upgrade(&without("http2-settings")));
        assert!(!asks_upgrade(&without("connection")));
        let mut with_body = CURL.to_vec();
        with_body.push(("content-length", "5"));
        assert!(!asks_upgrade(&request(&with_body)));
        let mut twice = CURL.to_vec();
        twice.push(("http2-settings", "AAMAAABk"));
        assert!(!asks_upgrade(&request(&twice)));
        let mut websocket = CURL.to_vec();
        websocket[2] = ("upgrade", "websocket");
        assert!(!asks_upgrade(&request(&websocket)));
    }

    #[test]
    fn stream_one_carries_the_request_without_its_connection_fields() {
        let mut h = CURL.to_vec();
        h.push(("accept", "*/*"));
        h.push(("te", "gzip"));
        let frame = stream_one(&request(&h)).unwrap();
        assert_eq!(&frame[3..9], &[0x1, 0x5, 0, 0, 0, 1]);
        let len = u32::from_be_bytes([0, frame[0], frame[1], frame[2]]) as usize;
        assert_eq!(len, frame.len() - 9);
        let block = &frame[9..];
        let has = |s: &[u8]| block.windows(s.len()).any(|w| w == s);
        assert!(has(b":authority\x06a.test"));
        assert!(has(b":path\x06/x?y=1"));
        assert!(has(b"accept\x03*/*"));
        // Each literal starts 0x00, then the name's length and bytes.
        for gone in ["upgrade", "http2-settings", "connection", "host", "te"] {
            let mut literal = vec![0x00, gone.len() as u8];
            literal.extend_from_slice(gone.as_bytes());
            assert!(!has(&literal), "{gone}");
        }
        // A request too large for one frame is not upgraded.
        let mut big = CURL.to_vec();
        let long = "v".repeat(MAX_FRAME);
        big.push(("x-big", &long));
        assert!(stream_one(&request(&big)).is_none());
    }

    #[test]
    fn long_strings_use_continued_integers() {
        let mut block = Vec::new();
        string(&mut block, &[b'a'; 300]);
        // 127 in the prefix, then 300 - 127 = 173 = 0b1_0101101: 0xad 0x01.
        assert_eq!(&block[..3], &[0x7f, 0xad, 0x01]);
        assert_eq!(block.len(), 3 + 300);
    }

    #[tokio::test]
    async fn the_headers_frame_goes_right_after_the_client_s_settings() {
        let mut client = PREFACE.to_vec();
        client.extend_from_slice(&[0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        client.extend_from_slice(b"NEXT");
        let spliced = splice(&client[..], b"HEADERS".to_vec(), Duration::from_secs(1))
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut spliced = spliced;
        spliced.read_to_end(&mut out).await.unwrap();
        let settings_end = PREFACE.len() + 15;
        assert_eq!(&out[..settings_end], &client[..settings_end]);
        assert_eq!(&out[settings_end..], b"HEADERSNEXT");
        // Not HTTP/2 after the 101, or a first frame that is not SETTINGS.
        let junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n\r\n".to_vec();
        assert!(
            splice(&junk[..], Vec::new(), Duration::from_secs(1))
                .await
                .is_err()
        );
        let mut ping = PREFACE.to_vec();
        ping.extend_from_slice(&[0, 0, 8, 0x6, 0, 0, 0, 0, 0]);
        assert!(
            splice(&ping[..], Vec::new(), Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}

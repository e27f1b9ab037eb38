//! [`ResponseBody`]: the body hyper sends for a guest's response, fed by
//! the guest's writes through a [`Pipe`] with a bounded window.
//!
//! The guest writes on its own thread (the tenant's event loop); hyper reads
//! on whichever thread serves the connection. The window bounds what the
//! host holds for one response: a write that finds it full is refused
//! (the guest parks), and when hyper has taken enough out the pipe rings the
//! request's writable token. Every byte held is charged to the tenant's
//! memory while it is held.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};

use super::Link;

/// Most response bytes the host holds for one request before a write waits.
pub(crate) const WINDOW: usize = 256 << 10;

/// The response bytes between a guest's writes and hyper.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    state: Mutex<PipeState>,
}

#[derive(Debug, Default)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    held: usize,
    /// The guest wrote its last byte (and maybe trailers).
    ended: bool,
    trailers: Option<HeaderMap>,
    /// hyper's waker, while it waits for bytes.
    reader: Option<Waker>,
    /// The guest found the window full and waits for the writable token.
    writer_waits: bool,
    /// hyper let go of the body (the client went away).
    closed: bool,
    /// The guest gave the response up midway.
    aborted: bool,
}

/// What a write into the pipe did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// This many bytes went in (maybe fewer than offered).
    Took(usize),
    /// The window is full; the writable token rings when it is not.
    Full,
    /// Nobody reads any more.
    Closed,
}

impl Pipe {
    /// Offers `data`; takes what fits in the window. `charge` is asked
    /// first for the bytes taken (the tenant's memory), and refusing makes
    /// the write fail with `Err`.
    pub(crate) fn write(
        &self,
        data: &[u8],
        charge: impl FnOnce(usize) -> bool,
    ) -> Result<Written, ()> {
        let Ok(mut s) = self.state.lock() else {
            return Ok(Written::Closed);
        };
        if s.closed {
            return Ok(Written::Closed);
        }
        let room = WINDOW.saturating_sub(s.held);
        if room == 0 && !data.is_empty() {
            s.writer_waits = true;
            return Ok(Written::Full);
        }
        let n = data.len().min(room);
        if n > 0 {
            if !charge(n) {
                return Err(());
            }
            s.chunks.push_back(Bytes::copy_from_slice(&data[..n]));
            s.held += n;
            if let Some(w) = s.reader.take() {
                w.wake();
            }
        }
        Ok(Written::Took(n))
    }

    /// The guest gave the response up: hyper ends it as broken (the
    /// connection closes, or the stream is reset).
    pub(crate) fn abort(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.aborted = true;
            if let Some(w) = s.reader.take() {
                w.wake();
            }
        }
    }

    /// The guest's last write: no more bytes, then `trailers` if any.
    pub(crate) fn end(&self, trailers: Option<HeaderMap>) {
        if let Ok(mut s) = self.state.lock() {
            s.ended = true;
            s.trailers = trailers.filter(|t| !t.is_empty());
            if let Some(w) = s.reader.take() {
                w.wake();
            }
        }
    }
}

/// The guest gave a response up before its end.
#[derive(Debug, thiserror::Error)]
#[error("the handler gave the response up before its end")]
pub struct Aborted;

/// A response body: all of it at once (a guest that answered in one
/// call), or streamed from a [`Pipe`].
#[derive(Debug)]
pub struct ResponseBody {
    kind: Kind,
    /// The request this answers; told when the body is done or dropped.
    link: Option<Arc<Link>>,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Piped(Arc<Pipe>),
}

impl ResponseBody {
    /// A body the host writes itself (an error status), or the whole body
    /// of a guest's one-call answer.
    pub(crate) fn full(bytes: impl Into<Bytes>, link: Option<Arc<Link>>) -> ResponseBody {
        let bytes = bytes.into();
        ResponseBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            link,
        }
    }

    /// A body streamed from `pipe`.
    pub(crate) fn piped(pipe: Arc<Pipe>, link: Arc<Link>) -> ResponseBody {
        ResponseBody {
            kind: Kind::Piped(pipe),
            link: Some(link),
        }
    }

    /// The body is over: the request completed.
    fn done(&mut self) {
        if let Some(link) = self.link.take() {
            link.completed();
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let pipe = match &mut this.kind {
            Kind::Full(bytes) => {
                let frame = bytes.take().map(|b| Ok(Frame::data(b)));
                if frame.is_none() {
                    this.done();
                }
                return Poll::Ready(frame);
            }
            Kind::Piped(pipe) => Arc::clone(pipe),
        };
        let Ok(mut s) = pipe.state.lock() else {
            return Poll::Ready(None);
        };
        if s.aborted {
            return Poll::Ready(Some(Err(Aborted)));
        }
        if let Some(chunk) = s.chunks.pop_front() {
            s.held -= chunk.len();
            if let Some(link) = &this.link {
                link.release(chunk.len());
                // Ask for more once half the window is free, not per byte.
                if s.writer_waits && s.held <= WINDOW / 2 {
                    s.writer_waits = false;
                    link.ring_writable();
                }
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if s.ended {
            let trailers = s.trailers.take();
            drop(s);
            if let Some(t) = trailers {
                return Poll::Ready(Some(Ok(Frame::trailers(t))));
            }
            this.done();
            return Poll::Ready(None);
        }
        s.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Piped(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Piped(_) => SizeHint::default(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Everything sent? hyper stops polling a whole body once it says it
        // is at its end, so a body dropped then is a completed response.
        let finished = match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Piped(pipe) => pipe
                .state
                .lock()
                .is_ok_and(|s| s.ended && s.chunks.is_empty() && s.trailers.is_none()),
        };
        if let Kind::Piped(pipe) = &self.kind
            && let Ok(mut s) = pipe.state.lock()
        {
            s.closed = true;
            let held = std::mem::take(&mut s.held);
            s.chunks.clear();
            if let Some(link) = &self.link {
                link.release(held);
            }
        }
        if let Some(link) = self.link.take() {
            if finished {
                link.completed();
            } else {
                // Dropped before its end: the client went away.
                link.abandoned();
            }
        }
    }
}

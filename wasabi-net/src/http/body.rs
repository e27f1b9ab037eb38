//! [`OutgoingBody`]: a request body sent as the connection takes it, each
//! chunk copied from the guest's own buffer when it is needed.
//!
//! The guest gives `fetch` a body it already holds (a `Uint8Array`, counted
//! in its own budget). The host does not copy it whole: the body asks for
//! the next [`BODY_CHUNK`] bytes with a [`FetchEvent::BodyWanted`] only when
//! hyper polls for more (that is, when the socket has room), so a slow or
//! large upload holds one chunk of host memory, and a redirect that must
//! send the body again (307, 308) asks for it again from the start.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::{FetchEvent, FetchId};
use crate::NetError;

/// How much of a request body the host asks the guest for at a time.
pub const BODY_CHUNK: u64 = 64 * 1024;

/// Chunks the guest supplies: `(offset, bytes)`.
pub(crate) type Supplied = mpsc::Receiver<(u64, Bytes)>;

/// The request body of one exchange (one hop of a request).
pub(crate) struct OutgoingBody {
    length: u64,
    sent: u64,
    /// `None` for an empty body.
    source: Option<Source>,
}

struct Source {
    id: FetchId,
    events: mpsc::UnboundedSender<FetchEvent>,
    /// Shared by every hop of the request; a hop discards chunks that are
    /// not at its offset (left over from an earlier hop).
    supplied: Arc<Mutex<Supplied>>,
    asked: bool,
}

impl OutgoingBody {
    /// No body.
    pub(crate) fn empty() -> OutgoingBody {
        OutgoingBody {
            length: 0,
            sent: 0,
            source: None,
        }
    }

    /// `length` bytes that request `id` supplies on demand.
    pub(crate) fn pulled(
        id: FetchId,
        length: u64,
        events: mpsc::UnboundedSender<FetchEvent>,
        supplied: Arc<Mutex<Supplied>>,
    ) -> OutgoingBody {
        if length == 0 {
            return OutgoingBody::empty();
        }
        OutgoingBody {
            length,
            sent: 0,
            source: Some(Source {
                id,
                events,
                supplied,
                asked: false,
            }),
        }
    }
}

impl Body for OutgoingBody {
    type Data = Bytes;
    type Error = NetError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, NetError>>> {
        let this = self.get_mut();
        let remaining = this.length - this.sent;
        let Some(source) = this.source.as_mut().filter(|_| remaining > 0) else {
            return Poll::Ready(None);
        };
        if !source.asked {
            source.asked = true;
            let wanted = FetchEvent::BodyWanted {
                id: source.id,
                offset: this.sent,
                len: remaining.min(BODY_CHUNK),
            };
            if source.events.send(wanted).is_err() {
                return Poll::Ready(Some(Err(gone())));
            }
        }
        let Ok(mut supplied) = source.supplied.lock() else {
            return Poll::Ready(Some(Err(gone())));
        };
        loop {
            match supplied.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Some(Err(gone()))),
                // Left over from an earlier hop, or a duplicate.
                Poll::Ready(Some((offset, _))) if offset != this.sent => continue,
                Poll::Ready(Some((_, bytes))) => {
                    let len = bytes.len() as u64;
                    if len == 0 || len > remaining {
                        return Poll::Ready(Some(Err(NetError::Http(
                            "the request body changed size while it was being sent".into(),
                        ))));
                    }
                    this.sent += len;
                    source.asked = false;
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.sent == self.length
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.length - self.sent)
    }
}

fn gone() -> NetError {
    NetError::Http("the request body is no longer available".into())
}

//! `poll_oneoff` over files, clocks and sockets.
//!
//! When no subscription names a socket (or a made-up file of
//! [`crate::builtin`]), wasmtime-wasi answers: the
//! subscriptions are copied to a scratch memory with the guest's numbers
//! turned into wasmtime-wasi's, and its events copied back (their
//! `userdata` is the guest's). When one does, this module answers itself:
//! a file or standard stream is always ready (preview 1 files never block,
//! and wasmtime-wasi says the same of them); a socket is ready when its
//! reactor says so; a clock when its time has come. Until one is, the
//! guest waits on the tenant's doorbell, which every armed socket rings,
//! or until the earliest clock.

use std::time::{Duration, Instant};

use wasmtime_wasi::p1::types::Errno;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as glue;
use wiggle::GuestMemory;

use crate::fds::Target;
use crate::{WasiHost, abi};

/// Bytes of one subscription and of one event.
const SUBSCRIPTION: usize = 48;
const EVENT: usize = 32;
/// The most subscriptions one call may carry: a bound on the host memory
/// a call may take (`EINVAL` past it).
pub(crate) const MAX_SUBSCRIPTIONS: u32 = 4096;

/// Event types (and subscription tags).
const CLOCK: u8 = 0;
const FD_READ: u8 = 1;
const FD_WRITE: u8 = 2;
/// `subclockflags.subscription_clock_abstime`.
const ABSTIME: u16 = 1;

/// One subscription, as read from the guest.
struct Subscription {
    userdata: u64,
    kind: u8,
    /// The descriptor, for `FD_READ`/`FD_WRITE`.
    fd: i32,
    /// For a clock: its id, timeout and flags.
    clock: u32,
    timeout: u64,
    flags: u16,
}

impl Subscription {
    fn parse(raw: &[u8]) -> Subscription {
        let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap_or_default());
        Subscription {
            userdata: u64_at(0),
            kind: raw[8],
            fd: u32_at(16) as i32,
            clock: u32_at(16),
            timeout: u64_at(24),
            flags: u16::from_le_bytes([raw[40], raw[41]]),
        }
    }
}

/// An event to write back.
fn event(userdata: u64, error: Errno, kind: u8, nbytes: u64) -> [u8; EVENT] {
    let mut e = [0u8; EVENT];
    e[0..8].copy_from_slice(&userdata.to_le_bytes());
    e[8..10].copy_from_slice(&(error as u16).to_le_bytes());
    e[10] = kind;
    e[16..24].copy_from_slice(&nbytes.to_le_bytes());
    e
}

/// `poll_oneoff(subs, events, n, out)`.
pub(crate) async fn poll_oneoff(
    host: &mut WasiHost,
    mem: &mut [u8],
    subs: i32,
    events: i32,
    n: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    const IMPORT: &str = "poll_oneoff";
    // A guest asked to drain ends at its next poll once it holds no
    // connection.
    host.net.check_drained()?;
    let count = n as u32;
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Ok(Errno::Inval as i32);
    }
    let raw = abi::bytes(mem, IMPORT, subs, count * SUBSCRIPTION as u32)?.to_vec();
    abi::bytes(mem, IMPORT, events, count * EVENT as u32)?;
    abi::bytes(mem, IMPORT, out, 4)?;
    let subscriptions: Vec<Subscription> = raw
        .chunks_exact(SUBSCRIPTION)
        .map(Subscription::parse)
        .collect();
    let sockets = subscriptions.iter().any(|s| {
        s.kind != CLOCK
            && matches!(
                host.fds.get(s.fd),
                Ok(Target::Socket(_) | Target::Builtin(_))
            )
    });
    if !sockets {
        return through_wasmtime_wasi(host, mem, raw, &subscriptions, events, out).await;
    }

    // Deadlines, measured from now.
    let start = Instant::now();
    let mut deadlines = Vec::with_capacity(subscriptions.len());
    for s in &subscriptions {
        deadlines.push(if s.kind == CLOCK {
            Some(deadline(host, s, start).await?)
        } else {
            None
        });
    }
    loop {
        host.net.doorbell.clear();
        let mut ready: Vec<[u8; EVENT]> = Vec::new();
        let now = Instant::now();
        for (s, deadline) in subscriptions.iter().zip(&deadlines) {
            match s.kind {
                CLOCK => match deadline {
                    Some(Ok(at)) if *at <= now => {
                        ready.push(event(s.userdata, Errno::Success, CLOCK, 0))
                    }
                    Some(Err(e)) => ready.push(event(s.userdata, *e, CLOCK, 0)),
                    _ => {}
                },
                FD_READ | FD_WRITE => {
                    let readable = s.kind == FD_READ;
                    match host.fds.socket(s.fd) {
                        Ok(socket) => {
                            if socket.ready(&mut host.net, readable) {
                                ready.push(event(s.userdata, Errno::Success, s.kind, 1));
                            }
                        }
                        // Files, streams and made-up files are always ready.
                        Err(Errno::Notsock) => {
                            ready.push(event(s.userdata, Errno::Success, s.kind, 0))
                        }
                        Err(e) => ready.push(event(s.userdata, e, s.kind, 0)),
                    }
                }
                _ => ready.push(event(s.userdata, Errno::Inval, s.kind, 0)),
            }
        }
        if !ready.is_empty() {
            let bytes = abi::bytes_mut(mem, IMPORT, events, (ready.len() * EVENT) as u32)?;
            for (slot, e) in bytes.chunks_exact_mut(EVENT).zip(&ready) {
                slot.copy_from_slice(e);
            }
            abi::write_u32(mem, IMPORT, out, ready.len() as u32)?;
            return Ok(0);
        }
        let earliest = deadlines.iter().flatten().flatten().min().copied();
        match earliest {
            Some(at) => {
                tokio::select! {
                    result = host.net.wait() => result?,
                    () = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => host.net.wait().await?,
        }
    }
}

/// When clock subscription `s` is due, measured against `start`; the errno
/// for a clock that does not exist.
async fn deadline(
    host: &mut WasiHost,
    s: &Subscription,
    start: Instant,
) -> wasmtime::Result<Result<Instant, Errno>> {
    if s.flags & ABSTIME == 0 {
        return Ok(Ok(start + Duration::from_nanos(s.timeout)));
    }
    // An absolute time on the guest's clock: read that clock as the guest
    // would (wasmtime-wasi's `clock_time_get`).
    let mut scratch = [0u8; 8];
    let errno = glue::clock_time_get(
        &mut host.p1,
        &mut GuestMemory::Unshared(&mut scratch),
        s.clock as i32,
        0,
        0,
    )?;
    if errno != 0 {
        return Ok(Err(Errno::Inval));
    }
    let now = u64::from_le_bytes(scratch);
    Ok(Ok(
        start + Duration::from_nanos(s.timeout.saturating_sub(now))
    ))
}

/// A poll without sockets, answered by wasmtime-wasi on a scratch copy.
async fn through_wasmtime_wasi(
    host: &mut WasiHost,
    mem: &mut [u8],
    mut raw: Vec<u8>,
    subscriptions: &[Subscription],
    events: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    const IMPORT: &str = "poll_oneoff";
    let count = subscriptions.len();
    for (slot, s) in raw.chunks_exact_mut(SUBSCRIPTION).zip(subscriptions) {
        if s.kind == FD_READ || s.kind == FD_WRITE {
            // A number wasmtime-wasi has not given out reports EBADF there.
            let inner = host
                .fds
                .wasi(s.fd, Errno::Badf)
                .map_or(u32::MAX, |fd| fd as u32);
            slot[16..20].copy_from_slice(&inner.to_le_bytes());
        }
    }
    let subs_len = raw.len();
    raw.resize(subs_len + count * EVENT + 4, 0);
    let mut scratch = GuestMemory::Unshared(&mut raw);
    let errno = glue::poll_oneoff(
        &mut host.p1,
        &mut scratch,
        0,
        subs_len as i32,
        count as i32,
        (subs_len + count * EVENT) as i32,
    )
    .await?;
    if errno != 0 {
        return Ok(errno);
    }
    let nevents_at = subs_len + count * EVENT;
    let nevents = u32::from_le_bytes(
        raw[nevents_at..nevents_at + 4]
            .try_into()
            .unwrap_or_default(),
    );
    let nevents = nevents.min(count as u32);
    let produced = &raw[subs_len..subs_len + nevents as usize * EVENT];
    abi::bytes_mut(mem, IMPORT, events, produced.len() as u32)?.copy_from_slice(produced);
    abi::write_u32(mem, IMPORT, out, nevents)?;
    Ok(0)
}

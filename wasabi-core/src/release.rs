//! Giving the memory of ended tenants back to the operating system.
//!
//! A tenant's linear memory returns to the system when its instance ends
//! (the pooling allocator decommits the slot). The host memory it caused —
//! its JS objects and strings, socket buffers, tokio tasks — is freed to
//! the C allocator, and glibc's malloc keeps freed memory in its per-thread
//! arenas for reuse rather than returning it: after many tenants come and
//! go, the process stays at its high-water mark although nothing is live.
//! The soak (`cargo xtask soak`) showed this as resident memory that stayed
//! up after every tenant was restarted fresh. So after a tenant ends, the
//! supervisor asks malloc to trim its arenas, at most once a second, on a
//! blocking thread (trimming walks every arena and takes its lock).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two trims.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// When the last trim ran, and whether one is already due.
struct Trims {
    last: Option<Instant>,
    scheduled: bool,
}

/// How many trims ran (for tests).
static TRIMS_RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

static TRIMS: Mutex<Trims> = Mutex::new(Trims {
    last: None,
    scheduled: false,
});

/// Returns the C allocator's free memory to the operating system: now, or,
/// if a trim ran less than [`MIN_INTERVAL`] ago, once that interval has
/// passed (so the last of a burst of ended tenants is trimmed after too).
/// Cheap to call often.
pub(crate) fn return_freed_memory() {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        trim();
        return;
    };
    let delay = {
        let mut trims = TRIMS.lock().unwrap_or_else(|e| e.into_inner());
        if trims.scheduled {
            return;
        }
        trims.scheduled = true;
        trims
            .last
            .map_or(Duration::ZERO, |t| MIN_INTERVAL.saturating_sub(t.elapsed()))
    };
    handle.spawn(async move {
        tokio::time::sleep(delay).await;
        {
            let mut trims = TRIMS.lock().unwrap_or_else(|e| e.into_inner());
            trims.scheduled = false;
            trims.last = Some(Instant::now());
        }
        let _ = tokio::task::spawn_blocking(trim).await;
    });
}

fn trim() {
    TRIMS_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of malloc's own arenas;
    // it takes each arena's lock and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_burst_of_ended_tenants_is_trimmed_after_its_last() {
        let before = TRIMS_RUN.load(Ordering::Relaxed);
        // A burst: the first asks for a trim at once (or when the interval
        // since an earlier one has passed), the rest fold into one more.
        for _ in 0..50 {
            return_freed_memory();
        }
        tokio::time::sleep(MIN_INTERVAL * 2 + Duration::from_millis(300)).await;
        let ran = TRIMS_RUN.load(Ordering::Relaxed) - before;
        assert!((1..=2).contains(&ran), "{ran} trims for one burst");
        // A later tenant's end is trimmed too, not swallowed by the burst.
        return_freed_memory();
        tokio::time::sleep(MIN_INTERVAL + Duration::from_millis(300)).await;
        assert_eq!(TRIMS_RUN.load(Ordering::Relaxed) - before, ran + 1);
    }
}

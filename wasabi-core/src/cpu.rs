//! CPU accounting and budgets for tenants.
//!
//! A tenant is a future, and a poll of it runs its wasm (or host code on its
//! behalf) without blocking, so the time spent inside `poll` is the CPU time
//! it used. Epoch interruption makes every tenant yield at least once a tick,
//! which bounds one poll and gives [`Metered`] a chance to hold a tenant back
//! when it is over its budget.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// The most CPU credit a tenant can save up while idle: it may burst this
/// long at full speed before its budget holds it back.
const MAX_CREDIT: Duration = Duration::from_millis(100);

/// Wraps a tenant's future: counts the time spent polling it into
/// `cpu_nanos`, and with a budget (a fraction of one core) sleeps instead of
/// polling while the tenant has used more than its share.
pub(crate) struct Metered<F> {
    inner: Pin<Box<F>>,
    cpu_nanos: Arc<AtomicU64>,
    budget: Option<Budget>,
    throttle: Option<Pin<Box<Sleep>>>,
}

/// A token bucket of CPU time: credit accrues at `fraction` of wall time.
struct Budget {
    fraction: f64,
    credit: f64,
    refilled: Instant,
}

impl<F: Future> Metered<F> {
    /// Meters `inner`; `max_cpu` is a fraction of one core (`0.5` = half).
    pub(crate) fn new(inner: F, cpu_nanos: Arc<AtomicU64>, max_cpu: Option<f64>) -> Self {
        Metered {
            inner: Box::pin(inner),
            cpu_nanos,
            budget: max_cpu.map(|fraction| Budget {
                fraction,
                credit: MAX_CREDIT.as_secs_f64(),
                refilled: Instant::now(),
            }),
            throttle: None,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if let Some(sleep) = &mut this.throttle {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.throttle = None;
        }
        let started = Instant::now();
        let result = this.inner.as_mut().poll(cx);
        let spent = started.elapsed();
        this.cpu_nanos
            .fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
        if let (Poll::Pending, Some(budget)) = (&result, &mut this.budget) {
            let now = Instant::now();
            let refill = now.duration_since(budget.refilled).as_secs_f64() * budget.fraction;
            budget.refilled = now;
            budget.credit =
                (budget.credit + refill - spent.as_secs_f64()).min(MAX_CREDIT.as_secs_f64());
            if budget.credit < 0.0 {
                let wait = Duration::from_secs_f64(-budget.credit / budget.fraction);
                let mut sleep = Box::pin(tokio::time::sleep(wait));
                // Register the timer now, so the task wakes when it ends.
                if sleep.as_mut().poll(cx).is_pending() {
                    this.throttle = Some(sleep);
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that burns `slice` of CPU per poll, forever.
    struct Spin {
        slice: Duration,
    }

    impl Future for Spin {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let until = Instant::now() + self.slice;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_budget_holds_a_spinning_tenant_to_its_share() {
        let cpu = Arc::new(AtomicU64::new(0));
        let spin = Metered::new(
            Spin {
                slice: Duration::from_millis(2),
            },
            Arc::clone(&cpu),
            Some(0.25),
        );
        let wall = Duration::from_millis(800);
        let _ = tokio::time::timeout(wall, spin).await;
        let used = Duration::from_nanos(cpu.load(Ordering::Relaxed));
        // A quarter of the wall time, plus the initial credit and one slice.
        assert!(
            used < wall / 4 + MAX_CREDIT + Duration::from_millis(60),
            "used {used:?} of {wall:?}"
        );
        assert!(
            used > wall / 8,
            "used only {used:?}: the budget is too strict"
        );
    }
}

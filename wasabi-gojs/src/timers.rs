//! Pending timers of one instance: the Go runtime's timeout events
//! (`runtime.scheduleTimeoutEvent`) and the JS world's `setTimeout`.
//!
//! The timers are plain data ordered by deadline; the event loop sleeps on
//! tokio until the earliest one is due. Keeping them as data (rather than one
//! tokio task each) makes clearing a timer free and lets an instance's end
//! drop every timer it had at once.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::value::Value;

/// Identifies a timer: the two kinds have separate id spaces, as in
/// `wasm_exec.js`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerId {
    /// A Go runtime timeout event.
    Runtime(i32),
    /// A `setTimeout` from the JS world.
    Js(u32),
}

/// What happens when a timer fires.
#[derive(Debug, Clone)]
pub enum TimerAction {
    /// Resume Go so its scheduler sees the time has come.
    Resume,
    /// Call a JS function (usually a `js.FuncOf` callback) with arguments.
    Call {
        /// The function.
        func: Value,
        /// Its arguments.
        args: Vec<Value>,
    },
}

/// Too many timers pending at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many pending timers (limit {0})")]
pub struct TooManyTimers(pub usize);

/// The pending timers of one instance.
#[derive(Debug)]
pub struct Timers {
    queue: BTreeMap<(Instant, u64), (TimerId, TimerAction)>,
    index: HashMap<TimerId, (Instant, u64)>,
    seq: u64,
    next_runtime_id: i32,
    next_js_id: u32,
    limit: usize,
}

impl Timers {
    /// No timers; at most `limit` pending at once.
    pub fn new(limit: usize) -> Timers {
        Timers {
            queue: BTreeMap::new(),
            index: HashMap::new(),
            seq: 0,
            next_runtime_id: 1,
            next_js_id: 1,
            limit,
        }
    }

    fn insert(
        &mut self,
        id: TimerId,
        delay: Duration,
        action: TimerAction,
    ) -> Result<(), TooManyTimers> {
        if self.queue.len() >= self.limit {
            return Err(TooManyTimers(self.limit));
        }
        let now = Instant::now();
        let deadline = now
            .checked_add(delay)
            .unwrap_or(now + Duration::from_secs(1 << 40));
        self.seq += 1;
        let key = (deadline, self.seq);
        self.queue.insert(key, (id, action));
        self.index.insert(id, key);
        Ok(())
    }

    /// Schedules a Go runtime timeout event `delay` from now; returns its id.
    pub fn schedule_runtime(&mut self, delay: Duration) -> Result<i32, TooManyTimers> {
        let id = self.next_runtime_id;
        self.next_runtime_id = self.next_runtime_id.wrapping_add(1).max(1);
        self.insert(TimerId::Runtime(id), delay, TimerAction::Resume)?;
        Ok(id)
    }

    /// Schedules a JS `setTimeout`; returns its id.
    pub fn schedule_js(
        &mut self,
        delay: Duration,
        func: Value,
        args: Vec<Value>,
    ) -> Result<u32, TooManyTimers> {
        let id = self.next_js_id;
        self.next_js_id = self.next_js_id.wrapping_add(1).max(1);
        self.insert(TimerId::Js(id), delay, TimerAction::Call { func, args })?;
        Ok(id)
    }

    /// Cancels a timer; unknown ids are ignored, as `clearTimeout` does.
    pub fn clear(&mut self, id: TimerId) {
        if let Some(key) = self.index.remove(&id) {
            self.queue.remove(&key);
        }
    }

    /// When the earliest timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, TimerAction)> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        let (id, action) = self.queue.remove(&key)?;
        self.index.remove(&id);
        Some((id, action))
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// `true` when no timer is pending.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Values the pending timers keep alive (roots for the collector).
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.queue.values().flat_map(|(_, action)| {
            let (func, args): (Option<&Value>, &[Value]) = match action {
                TimerAction::Resume => (None, &[]),
                TimerAction::Call { func, args } => (Some(func), args),
            };
            func.into_iter().chain(args)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_can_be_cleared() {
        let mut t = Timers::new(10);
        let late = t.schedule_runtime(Duration::from_millis(50)).unwrap();
        let early = t.schedule_js(Duration::ZERO, Value::Null, vec![]).unwrap();
        let cleared = t.schedule_runtime(Duration::ZERO).unwrap();
        t.clear(TimerId::Runtime(cleared));
        t.clear(TimerId::Js(999));
        let now = Instant::now();
        let (id, _) = t.pop_due(now).unwrap();
        assert_eq!(id, TimerId::Js(early));
        assert!(t.pop_due(now).is_none());
        let (id, _) = t.pop_due(now + Duration::from_millis(60)).unwrap();
        assert_eq!(id, TimerId::Runtime(late));
        assert!(t.is_empty());
    }

    #[test]
    fn the_number_of_timers_is_bounded() {
        let mut t = Timers::new(2);
        t.schedule_runtime(Duration::ZERO).unwrap();
        t.schedule_runtime(Duration::ZERO).unwrap();
        assert_eq!(t.schedule_runtime(Duration::ZERO), Err(TooManyTimers(2)));
    }

    #[test]
    fn huge_delays_do_not_overflow() {
        let mut t = Timers::new(2);
        t.schedule_runtime(Duration::from_millis(u64::MAX)).unwrap();
        assert!(t.next_deadline().unwrap() > Instant::now());
    }
}

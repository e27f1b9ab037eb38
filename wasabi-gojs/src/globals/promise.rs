//! `Promise`: the constructor (its executor runs at once, and may be Go
//! code), `Promise.resolve`, `Promise.reject`, and `then`, `catch` and
//! `finally`, which chain: each returns a new promise settled by what its
//! callback returns or throws, and a promise resolved with another promise
//! follows it.
//!
//! Reactions run as jobs after the current call into Go returns, one per
//! turn of the event loop, never inside the call that settled the promise
//! (as in JS). Passing an outcome along a chain is a job too, so however
//! long a chain a guest builds, settling it uses no host stack.
//!
//! Only this realm's promises are followed; an ordinary object with a
//! `then` method is a value like any other.

use super::{Binder, Completion, Native, NativeResult, arg, is_callable, ret};
use crate::heap::{Callable, HeapError, ObjectKind, PromiseState, Reaction};
use crate::js::{Job, Js, Settles};
use crate::value::{ObjectId, Value};

/// Promise operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ctor,
    Resolve,
    Reject,
    Then,
    Catch,
    Finally,
}

/// Binds `Promise` and its prototype; returns the prototype.
pub(crate) fn install(b: &mut Binder<'_>) -> Result<ObjectId, HeapError> {
    let proto = b.plain()?;
    for (name, op) in [
        ("then", Op::Then),
        ("catch", Op::Catch),
        ("finally", Op::Finally),
    ] {
        b.method(proto, name, Native::Promise(op))?;
    }
    let ctor = b.class(b.global, "Promise", Native::Promise(Op::Ctor), proto)?;
    b.method(ctor, "resolve", Native::Promise(Op::Resolve))?;
    b.method(ctor, "reject", Native::Promise(Op::Reject))?;
    Ok(proto)
}

pub(crate) fn call(
    js: &mut Js,
    op: Op,
    this: &Value,
    args: &[Value],
    construct: bool,
) -> NativeResult {
    match op {
        Op::Ctor => construct_promise(js, args, construct),
        Op::Resolve => {
            let value = arg(args, 0);
            // `Promise.resolve(p)` is `p` itself.
            if promise_id(js, &value).is_some() {
                return ret(value);
            }
            let promise = new_promise(js).map_err(|e| js.heap_error(e))?;
            resolve(js, &promise, value);
            ret(promise)
        }
        Op::Reject => {
            let promise = new_promise(js).map_err(|e| js.heap_error(e))?;
            settle(js, &promise, Err(arg(args, 0)));
            ret(promise)
        }
        Op::Then | Op::Catch | Op::Finally => {
            let Some(id) = promise_id(js, this) else {
                let name = format!("{op:?}").to_ascii_lowercase();
                return Err(
                    js.type_error(&format!("Promise.prototype.{name} called on a non-promise"))
                );
            };
            let derived = new_promise(js).map_err(|e| js.heap_error(e))?;
            let (on_fulfilled, on_rejected) = match op {
                Op::Then => (arg(args, 0), arg(args, 1)),
                Op::Catch => (Value::Undefined, arg(args, 0)),
                _ => (arg(args, 0), arg(args, 0)),
            };
            let reaction = Reaction {
                on_fulfilled,
                on_rejected,
                derived: derived.clone(),
                finally: op == Op::Finally,
            };
            react(js, id, reaction).map_err(|e| js.heap_error(e))?;
            ret(derived)
        }
    }
}

/// `new Promise(executor)`: the executor is called now with the promise's
/// `resolve` and `reject` (by whoever called the constructor, since it may
/// be Go code: see [`Completion::Execute`]).
fn construct_promise(js: &mut Js, args: &[Value], construct: bool) -> NativeResult {
    if !construct {
        return Err(js.type_error("Promise constructor cannot be invoked without 'new'"));
    }
    let executor = arg(args, 0);
    if !is_callable(&js.heap, &executor) {
        return Err(js.type_error("Promise resolver is not a function"));
    }
    let promise = new_promise(js).map_err(|e| js.heap_error(e))?;
    let Value::Object(id) = promise else {
        unreachable!("new_promise makes an object")
    };
    let mut resolvers = Vec::with_capacity(2);
    for reject in [false, true] {
        let proto = js.realm.function_proto;
        let f = js
            .alloc_object(
                ObjectKind::Function(Callable::Resolve {
                    promise: id,
                    reject,
                }),
                proto,
            )
            .map_err(|e| js.heap_error(e))?;
        resolvers.push(Value::Object(f));
    }
    Ok(Completion::Execute {
        executor,
        resolvers,
        promise,
    })
}

/// A new pending promise.
pub(crate) fn new_promise(js: &mut Js) -> Result<Value, HeapError> {
    let proto = js.realm.promise_proto;
    js.alloc_object(
        ObjectKind::Promise(PromiseState::Pending(Vec::new())),
        proto,
    )
    .map(Value::Object)
}

fn promise_id(js: &Js, v: &Value) -> Option<ObjectId> {
    match v {
        Value::Object(id) if matches!(js.heap.get(*id).kind, ObjectKind::Promise(_)) => Some(*id),
        _ => None,
    }
}

/// Resolves `promise` with `value`: fulfils it, or, when `value` is itself
/// a promise, makes it follow that one.
pub(crate) fn resolve(js: &mut Js, promise: &Value, value: Value) {
    let Some(followed) = promise_id(js, &value) else {
        settle(js, promise, Ok(value));
        return;
    };
    if Some(followed) == promise.as_object() {
        let cycle = js.type_error("Chaining cycle detected for promise");
        settle(js, promise, Err(cycle));
        return;
    }
    let reaction = Reaction {
        on_fulfilled: Value::Undefined,
        on_rejected: Value::Undefined,
        derived: promise.clone(),
        finally: false,
    };
    if let Err(e) = react(js, followed, reaction) {
        let reason = js.heap_error(e);
        settle(js, promise, Err(reason));
    }
}

/// Fulfils (`Ok`) or rejects (`Err`) a pending promise, queueing its
/// reactions as jobs. A settled promise stays as it is.
pub(crate) fn settle(js: &mut Js, promise: &Value, outcome: Result<Value, Value>) {
    let Value::Object(id) = promise else { return };
    let ObjectKind::Promise(state) = &mut js.heap.get_mut(*id).kind else {
        return;
    };
    let PromiseState::Pending(reactions) = state else {
        return;
    };
    let reactions = std::mem::take(reactions);
    *state = match &outcome {
        Ok(v) => PromiseState::Fulfilled(v.clone()),
        Err(v) => PromiseState::Rejected(v.clone()),
    };
    let (Ok(v) | Err(v)) = &outcome;
    js.heap.share(v);
    for reaction in reactions {
        queue(js, reaction, &outcome);
    }
}

/// Registers `reaction` on promise `id`: kept until it settles (charged to
/// the budget, as a guest could call `then` forever), or queued at once.
fn react(js: &mut Js, id: ObjectId, reaction: Reaction) -> Result<(), HeapError> {
    let outcome = match &js.heap.get(id).kind {
        ObjectKind::Promise(PromiseState::Pending(_)) => None,
        ObjectKind::Promise(PromiseState::Fulfilled(v)) => Some(Ok(v.clone())),
        ObjectKind::Promise(PromiseState::Rejected(v)) => Some(Err(v.clone())),
        _ => return Ok(()),
    };
    match outcome {
        Some(outcome) => queue(js, reaction, &outcome),
        None => {
            js.heap.charge(std::mem::size_of::<Reaction>())?;
            if let ObjectKind::Promise(PromiseState::Pending(reactions)) =
                &mut js.heap.get_mut(id).kind
            {
                reactions.push(reaction);
            }
        }
    }
    Ok(())
}

/// Queues the job of a reaction to `outcome`.
fn queue(js: &mut Js, reaction: Reaction, outcome: &Result<Value, Value>) {
    let handler = match outcome {
        Ok(_) => reaction.on_fulfilled,
        Err(_) => reaction.on_rejected,
    };
    let callable = is_callable(&js.heap, &handler);
    let (args, settles) = match (reaction.finally, callable, outcome) {
        (true, _, _) => (Vec::new(), Settles::WithOutcome(outcome.clone())),
        (false, true, Ok(v) | Err(v)) => (vec![v.clone()], Settles::WithResult),
        (false, false, _) => (Vec::new(), Settles::WithOutcome(outcome.clone())),
    };
    js.jobs.push_back(Job {
        handler: if callable { handler } else { Value::Undefined },
        args,
        derived: reaction.derived,
        settles,
    });
}

/// Settles a job's derived promise once its handler ran (`ran`: what it
/// returned or threw; `Ok(undefined)` when there was none).
pub(crate) fn finish(js: &mut Js, job: Job, ran: Result<Value, Value>) {
    match (ran, job.settles) {
        (Err(thrown), _) => settle(js, &job.derived, Err(thrown)),
        (Ok(value), Settles::WithResult) => resolve(js, &job.derived, value),
        (Ok(_), Settles::WithOutcome(outcome)) => settle(js, &job.derived, outcome),
    }
}

/// A resolve or reject function of `new Promise` was called with `value`.
pub(crate) fn call_resolver(js: &mut Js, promise: ObjectId, reject: bool, value: Value) {
    let promise = Value::Object(promise);
    if reject {
        settle(js, &promise, Err(value));
    } else {
        resolve(js, &promise, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHostBuilder;

    fn state(js: &Js, promise: &Value) -> PromiseState {
        match &js.heap.get(promise.as_object().unwrap()).kind {
            ObjectKind::Promise(s) => s.clone(),
            other => panic!("not a promise: {other:?}"),
        }
    }

    /// Runs queued jobs whose handlers are not callable, as the event loop
    /// does without calling Go; a callable handler "returns" `returns`.
    fn drain(js: &mut Js, returns: impl Fn(&[Value]) -> Result<Value, Value>) -> usize {
        let mut ran = 0;
        while let Some(job) = js.jobs.pop_front() {
            ran += 1;
            let result = if is_callable(&js.heap, &job.handler) {
                returns(&job.args)
            } else {
                Ok(Value::Undefined)
            };
            finish(js, job, result);
        }
        ran
    }

    fn callable(js: &mut Js) -> Value {
        js.heap
            .get_property(
                &Value::Object(js.realm.global),
                crate::heap::Key::Name("setTimeout"),
            )
            .unwrap()
    }

    fn then(js: &mut Js, p: &Value, op: Op, args: &[Value]) -> Value {
        match call(js, op, p, args, false) {
            Ok(Completion::Return(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn then_chains_pass_outcomes_along_and_handlers_transform_them() {
        let mut host = GoHostBuilder::new().build().unwrap();
        let js = &mut host.js;
        let f = callable(js);
        let root = new_promise(js).unwrap();
        // root.then(undefined).catch(f).then(f).finally(f)
        let a = then(js, &root, Op::Then, &[]);
        let b = then(js, &a, Op::Catch, std::slice::from_ref(&f));
        let c = then(js, &b, Op::Then, std::slice::from_ref(&f));
        let d = then(js, &c, Op::Finally, std::slice::from_ref(&f));
        assert!(
            js.jobs.is_empty(),
            "nothing runs before the promise settles"
        );
        settle(js, &root, Err(Value::Number(1.0)));
        settle(js, &root, Ok(Value::Number(2.0)));
        // Each handler "returns" its argument plus ten.
        drain(js, |args| match args.first() {
            Some(Value::Number(n)) => Ok(Value::Number(n + 10.0)),
            _ => Ok(Value::Undefined),
        });
        assert_eq!(state(js, &a), PromiseState::Rejected(Value::Number(1.0)));
        assert_eq!(state(js, &b), PromiseState::Fulfilled(Value::Number(11.0)));
        assert_eq!(state(js, &c), PromiseState::Fulfilled(Value::Number(21.0)));
        assert_eq!(state(js, &d), PromiseState::Fulfilled(Value::Number(21.0)));
        // A handler that throws rejects the next promise.
        let e = then(js, &d, Op::Then, std::slice::from_ref(&f));
        drain(js, |_| Err(Value::from("boom")));
        assert_eq!(state(js, &e), PromiseState::Rejected(Value::from("boom")));
    }

    #[test]
    fn a_promise_resolved_with_a_promise_follows_it_and_cycles_are_refused() {
        let mut host = GoHostBuilder::new().build().unwrap();
        let js = &mut host.js;
        let inner = new_promise(js).unwrap();
        let outer = new_promise(js).unwrap();
        resolve(js, &outer, inner.clone());
        assert!(matches!(state(js, &outer), PromiseState::Pending(_)));
        settle(js, &inner, Ok(Value::Number(7.0)));
        drain(js, |_| unreachable!());
        assert_eq!(
            state(js, &outer),
            PromiseState::Fulfilled(Value::Number(7.0))
        );
        let selfish = new_promise(js).unwrap();
        resolve(js, &selfish, selfish.clone());
        assert!(matches!(state(js, &selfish), PromiseState::Rejected(_)));
        let resolved = then(
            js,
            &Value::Undefined,
            Op::Resolve,
            std::slice::from_ref(&inner),
        );
        assert_eq!(resolved, inner, "Promise.resolve(p) is p");
    }

    /// A chain of a hundred thousand promises settles in jobs, not by
    /// recursion; `then` on the wrong receiver throws; `new` is required.
    #[test]
    fn hostile_promises_neither_recurse_nor_escape_the_budget() {
        let mut host = GoHostBuilder::new()
            .limits(wasabi_limits::TenantLimits {
                max_object_bytes: 1 << 20,
                ..Default::default()
            })
            .build()
            .unwrap();
        let js = &mut host.js;
        let root = new_promise(js).unwrap();
        let mut last = root.clone();
        for _ in 0..2_000 {
            last = then(js, &last, Op::Then, &[]);
        }
        settle(js, &root, Ok(Value::Number(1.0)));
        assert_eq!(drain(js, |_| unreachable!()), 2_000);
        assert_eq!(
            state(js, &last),
            PromiseState::Fulfilled(Value::Number(1.0))
        );
        // `then` forever on one pending promise runs into the budget.
        let pending = new_promise(js).unwrap();
        let mut refused = false;
        for _ in 0..100_000 {
            if call(js, Op::Then, &pending, &[], false).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "100k reactions fit in a 1 MiB budget");
        assert!(call(js, Op::Then, &Value::Number(1.0), &[], false).is_err());
        assert!(call(js, Op::Ctor, &Value::Undefined, &[], true).is_err());
        let f = callable(js);
        assert!(call(js, Op::Ctor, &Value::Undefined, &[f], false).is_err());
    }
}

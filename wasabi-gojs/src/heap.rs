//! The object heap of the emulated JS world: objects with prototypes and own
//! properties, property access with JS semantics, and a mark-and-sweep
//! collector.
//!
//! Objects refer to each other freely (the global object holds itself as
//! `globalThis`), so they are not reference counted: they live in a slab and
//! are collected from roots (the Go reference table, the realm, pending
//! timers) when enough has been allocated since the last collection. Host
//! memory spent on objects is counted against a per-instance budget, because a
//! guest that asks for `new Uint8Array(1 << 31)` must not get around its
//! memory limit by making the host allocate for it.

use std::sync::Arc;

use slab::Slab;

use crate::memory::{MemoryLimitExceeded, MemoryMeter};
use crate::value::{JsString, ObjectId, Value};

/// A function the host implements, as the heap knows it: by number. The
/// realm that bound it keeps what each number stands for
/// ([`crate::globals::Native`]), so the heap — plain data — knows nothing
/// of the globals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostFn(pub(crate) u32);

/// What can be called: a host function, or a Go function that `js.FuncOf`
/// wrapped (by its id in Go's `funcs` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callable {
    /// A function implemented by the host.
    Host(HostFn),
    /// A Go function exported through `js.FuncOf`; calling it resumes Go.
    Go(u32),
    /// The `resolve` (or, with `reject`, the `reject`) function that
    /// `new Promise` hands its executor.
    Resolve {
        /// The promise it settles.
        promise: ObjectId,
        /// `true` for `reject`.
        reject: bool,
    },
}

/// The internal kind of an object: what it is besides its properties.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectKind {
    /// A plain object.
    Ordinary,
    /// An `Array`, stored densely.
    Array(Vec<Value>),
    /// A `Uint8Array` with its own bytes.
    Bytes(Vec<u8>),
    /// A function.
    Function(Callable),
    /// An `Error` (its `message`, `name` and `code` are ordinary properties).
    Error,
    /// A `Date`: milliseconds since the Unix epoch.
    Date(f64),
    /// A `Promise`.
    Promise(PromiseState),
    /// A `Headers` object: names (lower case) and values, in order.
    Headers(Vec<(String, String)>),
    /// An iterator over `items` (what `Headers.prototype.entries` returns).
    Iterator {
        /// What it yields.
        items: Vec<Value>,
        /// The index of the next item.
        next: usize,
    },
    /// A response body stream, or its reader: a handle on a request of the
    /// instance's HTTP client.
    Body(wasabi_net::FetchId),
}

/// What `then` (or `catch`, `finally`, or adopting another promise)
/// registered on a pending promise.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    /// Called with the value when the promise fulfils (if callable).
    pub on_fulfilled: Value,
    /// Called with the reason when it rejects (if callable).
    pub on_rejected: Value,
    /// The promise `then` returned, settled by what the reaction does.
    pub derived: Value,
    /// A `finally` reaction: called with nothing, and `derived` settles as
    /// this promise did (unless the callback throws).
    pub finally: bool,
}

impl Reaction {
    fn values(&self) -> impl Iterator<Item = &Value> {
        [&self.on_fulfilled, &self.on_rejected, &self.derived].into_iter()
    }
}

/// The state of a `Promise`.
#[derive(Debug, Clone, PartialEq)]
pub enum PromiseState {
    /// Not settled yet: the reactions registered so far.
    Pending(Vec<Reaction>),
    /// Fulfilled with a value.
    Fulfilled(Value),
    /// Rejected with a reason.
    Rejected(Value),
}

/// Who may still read a `Uint8Array`'s bytes, which decides whether the
/// host may let them go before Go's collector finalizes the reference.
///
/// Go's `syscall` makes a fresh `Uint8Array` for every file read and write
/// (and reads every fetch chunk out of one), uses it once, and drops it.
/// Go's collector cannot see host memory, so it finalizes those references
/// only when its own heap grows: a program streaming a gigabyte in 32 KiB
/// writes would hold all of it in the host, past any memory limit. A
/// buffer only Go holds (made by `new Uint8Array(n)`, never stored in any
/// object since) is therefore released once its bytes have gone where they
/// were going: written by `fs.write`, or copied into Go after the host
/// filled it. It is then empty (length 0), as a transferred buffer is in
/// JS. Go's standard library never reads such a buffer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Custody {
    /// Anyone may read it: never released early.
    #[default]
    Shared,
    /// Only Go holds it, and it has not been filled for Go.
    GoOnly,
    /// Only Go holds it, and the host filled it for Go to copy out.
    FilledForGo,
}

/// One object: a prototype link, an internal kind and own properties in
/// insertion order (objects here are small, so a vector beats a map).
#[derive(Debug, Clone)]
pub struct Object {
    /// The prototype (`Object.getPrototypeOf`), if any.
    pub proto: Option<ObjectId>,
    /// What the object is.
    pub kind: ObjectKind,
    /// For a `Uint8Array`: whether its bytes may be released early.
    pub custody: Custody,
    props: Vec<(JsString, Value)>,
    marked: bool,
}

impl Object {
    /// A new object of `kind` with prototype `proto` and no own properties.
    pub fn new(kind: ObjectKind, proto: Option<ObjectId>) -> Object {
        Object {
            proto,
            kind,
            custody: Custody::Shared,
            props: Vec::new(),
            marked: false,
        }
    }

    /// An own property.
    pub fn own(&self, key: &str) -> Option<&Value> {
        self.props.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    /// Own property names in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &JsString> {
        self.props.iter().map(|(k, _)| k)
    }

    fn set_own(&mut self, key: &str, value: Value) {
        match self.props.iter_mut().find(|(k, _)| &**k == key) {
            Some((_, v)) => *v = value,
            None => self.props.push((key.into(), value)),
        }
    }

    fn delete_own(&mut self, key: &str) {
        self.props.retain(|(k, _)| &**k != key);
    }

    /// Approximate host bytes this object occupies, for the budget.
    fn footprint(&self) -> usize {
        const BASE: usize = 64;
        const SLOT: usize = 40;
        let inner = match &self.kind {
            ObjectKind::Array(items) => items.capacity() * std::mem::size_of::<Value>(),
            ObjectKind::Bytes(bytes) => bytes.capacity(),
            ObjectKind::Headers(pairs) => pairs.iter().map(|(k, v)| k.len() + v.len() + 48).sum(),
            ObjectKind::Iterator { items, .. } => items.capacity() * std::mem::size_of::<Value>(),
            ObjectKind::Promise(PromiseState::Pending(reactions)) => {
                reactions.capacity() * std::mem::size_of::<Reaction>()
            }
            _ => 0,
        };
        BASE + self.props.len() * SLOT + inner
    }
}

/// A property key as the guest can spell it: a name, or an integer index.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// A named property (`o.name`, `o["name"]`).
    Name(&'a str),
    /// An integer index (`o[3]`).
    Index(i64),
}

impl Key<'_> {
    /// The index this key denotes, if it is a canonical array index.
    fn index(&self) -> Option<usize> {
        match *self {
            Key::Index(i) => usize::try_from(i).ok(),
            Key::Name(s) => {
                if s == "0" {
                    Some(0)
                } else if !s.starts_with('0') && !s.is_empty() && s.len() < 16 {
                    s.parse().ok()
                } else {
                    None
                }
            }
        }
    }

    /// The key as a property name.
    fn name(&self) -> std::borrow::Cow<'_, str> {
        match *self {
            Key::Name(s) => std::borrow::Cow::Borrowed(s),
            Key::Index(i) => std::borrow::Cow::Owned(i.to_string()),
        }
    }
}

/// Why a heap operation failed; the caller turns each into a thrown JS error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeapError {
    /// A property access on `undefined` or `null`.
    #[error("Cannot {action} properties of {target} ({} '{key}')", gerund(action))]
    NotAnObject {
        /// "read", "set" or "delete" (as in JS engines' messages).
        action: &'static str,
        /// "undefined" or "null".
        target: &'static str,
        /// The property name.
        key: String,
    },
    /// The instance's budget of host memory for JS objects is spent.
    #[error(
        "out of memory for JS objects: this instance may hold {limit} bytes of host objects and asked for {wanted} more"
    )]
    Budget {
        /// The budget in bytes.
        limit: usize,
        /// How many bytes the failed allocation needed.
        wanted: usize,
    },
    /// An array index too large for the dense arrays this heap keeps.
    #[error("Invalid array length")]
    ArrayLength,
    /// A string longer than a JS engine allows (V8's limit).
    #[error("Invalid string length")]
    StringLength,
    /// The tenant's memory limit (linear and host memory together) is
    /// reached.
    #[error(transparent)]
    Memory(#[from] MemoryLimitExceeded),
}

fn gerund(action: &str) -> &'static str {
    match action {
        "set" => "setting",
        "delete" => "deleting",
        _ => "reading",
    }
}

fn not_an_object(action: &'static str, target: &Value, key: Key<'_>) -> HeapError {
    HeapError::NotAnObject {
        action,
        target: if matches!(target, Value::Null) {
            "null"
        } else {
            "undefined"
        },
        key: key.name().into_owned(),
    }
}

/// What a freed id reads as (see [`Heap::get`]).
static TOMBSTONE: Object = Object {
    proto: None,
    kind: ObjectKind::Ordinary,
    custody: Custody::Shared,
    props: Vec::new(),
    marked: false,
};

/// Dense arrays may grow by at most this many holes in one assignment.
const MAX_ARRAY_GAP: usize = 1 << 20;

/// The heap of JS objects of one instance.
#[derive(Debug)]
pub struct Heap {
    objects: Slab<Object>,
    /// What [`Heap::get_mut`] hands out for an id that is no longer live.
    scratch: Object,
    /// The tenant's memory, which every byte charged here also counts in.
    meter: Arc<MemoryMeter>,
    bytes_in_use: usize,
    byte_budget: usize,
    allocated_since_gc: usize,
    collect_after: usize,
}

impl Heap {
    /// An empty heap that may hold up to `byte_budget` bytes of objects, of
    /// a tenant with no memory limit (for tests).
    #[cfg(test)]
    pub fn new(byte_budget: usize) -> Heap {
        Heap::with_meter(byte_budget, Arc::new(MemoryMeter::new(None)))
    }

    /// An empty heap that may hold up to `byte_budget` bytes of objects,
    /// each also counted in the tenant's `meter`.
    pub fn with_meter(byte_budget: usize, meter: Arc<MemoryMeter>) -> Heap {
        Heap {
            objects: Slab::new(),
            scratch: Object::new(ObjectKind::Ordinary, None),
            meter,
            bytes_in_use: 0,
            byte_budget,
            allocated_since_gc: 0,
            collect_after: 4096,
        }
    }

    /// Number of live objects (reachable or not yet collected).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Approximate host bytes held by objects.
    #[cfg(test)]
    pub fn bytes_in_use(&self) -> usize {
        self.bytes_in_use
    }

    /// The tenant's memory meter.
    pub fn meter(&self) -> &Arc<MemoryMeter> {
        &self.meter
    }

    /// Checks that `bytes` more fit in the budget and the tenant's memory
    /// limit, without taking them.
    pub fn fits(&self, bytes: usize) -> Result<(), HeapError> {
        // The tenant's limit first: it is the one its owner set.
        self.meter.fits_host(bytes as u64)?;
        if self.bytes_in_use.saturating_add(bytes) > self.byte_budget {
            return Err(HeapError::Budget {
                limit: self.byte_budget,
                wanted: bytes,
            });
        }
        Ok(())
    }

    /// Counts `bytes` more of host memory (a new object, or an object that
    /// grew), refusing them past the budget or the tenant's memory limit.
    pub fn charge(&mut self, bytes: usize) -> Result<(), HeapError> {
        self.fits(bytes)?;
        self.meter.charge_host(bytes as u64)?;
        self.bytes_in_use += bytes;
        Ok(())
    }

    /// Allocates an object, charging it to the budget. Objects it holds
    /// are shared from now on.
    pub fn alloc(&mut self, object: Object) -> Result<ObjectId, HeapError> {
        self.charge(object.footprint())?;
        match &object.kind {
            ObjectKind::Array(items) | ObjectKind::Iterator { items, .. } => {
                for item in items {
                    self.share(item);
                }
            }
            ObjectKind::Promise(PromiseState::Fulfilled(v) | PromiseState::Rejected(v)) => {
                self.share(v)
            }
            _ => {}
        }
        self.allocated_since_gc += 1;
        let id = self.objects.insert(object);
        Ok(ObjectId(
            u32::try_from(id).map_err(|_| HeapError::ArrayLength)?,
        ))
    }

    /// Allocates a zero-filled `Uint8Array` payload of `len` bytes, checking the
    /// budget before touching memory.
    pub fn alloc_bytes(&mut self, len: usize, proto: ObjectId) -> Result<ObjectId, HeapError> {
        self.fits(len)?;
        self.alloc(Object::new(ObjectKind::Bytes(vec![0; len]), Some(proto)))
    }

    /// Marks `value`, if it is an object, as reachable from somewhere other
    /// than Go's references: its bytes are never released early.
    pub fn share(&mut self, value: &Value) {
        if let Value::Object(id) = value {
            self.get_mut(*id).custody = Custody::Shared;
        }
    }

    /// Releases the bytes of the `Uint8Array` `id`, which becomes empty
    /// (see [`Custody`]); other objects are left alone.
    pub fn release_bytes(&mut self, id: ObjectId) {
        let object = self.get_mut(id);
        object.custody = Custody::Shared;
        if let ObjectKind::Bytes(bytes) = &mut object.kind {
            let freed = bytes.capacity();
            *bytes = Vec::new();
            self.bytes_in_use = self.bytes_in_use.saturating_sub(freed);
            self.meter.release_host(freed as u64);
        }
    }

    /// The object behind `id`.
    ///
    /// An id the collector freed can only come from a root someone forgot
    /// to report, a bug: rather than panic the host, it reads as an empty
    /// object (and is logged).
    pub fn get(&self, id: ObjectId) -> &Object {
        match self.objects.get(id.0 as usize) {
            Some(object) => object,
            None => {
                tracing::error!(id = id.0, "a freed JS object was used; it reads as empty");
                &TOMBSTONE
            }
        }
    }

    /// The object behind `id`, mutably. A freed id (see [`Heap::get`])
    /// gives a scratch object whose changes go nowhere.
    pub fn get_mut(&mut self, id: ObjectId) -> &mut Object {
        if !self.objects.contains(id.0 as usize) {
            tracing::error!(
                id = id.0,
                "a freed JS object was changed; the change is lost"
            );
            self.scratch = Object::new(ObjectKind::Ordinary, None);
            return &mut self.scratch;
        }
        &mut self.objects[id.0 as usize]
    }

    /// `true` when `id` names a live object. Ids only come from this heap, so
    /// this is for assertions and tests.
    #[cfg(test)]
    pub fn contains(&self, id: ObjectId) -> bool {
        self.objects.contains(id.0 as usize)
    }

    /// `Reflect.get(target, key)` where `proto_of` gives the prototype used for
    /// primitives (strings, numbers, booleans) and is `None` for `undefined`
    /// and `null`.
    pub fn get_property(&self, target: &Value, key: Key<'_>) -> Result<Value, HeapError> {
        let start = match target {
            Value::Object(id) => *id,
            Value::String(s) => {
                return Ok(match key {
                    Key::Name("length") => Value::Number(s.encode_utf16().count() as f64),
                    _ => match key.index() {
                        Some(i) => s
                            .encode_utf16()
                            .nth(i)
                            .map(|u| Value::string(String::from_utf16_lossy(&[u])))
                            .unwrap_or(Value::Undefined),
                        None => Value::Undefined,
                    },
                });
            }
            Value::Undefined | Value::Null => {
                return Err(not_an_object("read", target, key));
            }
            Value::Bool(_) | Value::Number(_) => return Ok(Value::Undefined),
        };
        if let Some(v) = self.intrinsic(start, key) {
            return Ok(v);
        }
        let name = key.name();
        let mut cursor = Some(start);
        let mut depth = 0;
        while let Some(id) = cursor {
            let object = self.get(id);
            if let Some(v) = object.own(&name) {
                return Ok(v.clone());
            }
            cursor = object.proto;
            depth += 1;
            if depth > 64 {
                break;
            }
        }
        Ok(Value::Undefined)
    }

    /// Properties that come from an object's kind rather than its own slots.
    fn intrinsic(&self, id: ObjectId, key: Key<'_>) -> Option<Value> {
        match &self.get(id).kind {
            ObjectKind::Array(items) => match key {
                Key::Name("length") => Some(Value::Number(items.len() as f64)),
                _ => key
                    .index()
                    .map(|i| items.get(i).cloned().unwrap_or(Value::Undefined)),
            },
            ObjectKind::Bytes(bytes) => match key {
                Key::Name("length" | "byteLength") => Some(Value::Number(bytes.len() as f64)),
                Key::Name("byteOffset") => Some(Value::Number(0.0)),
                _ => key.index().map(|i| {
                    bytes
                        .get(i)
                        .map(|b| Value::Number(f64::from(*b)))
                        .unwrap_or(Value::Undefined)
                }),
            },
            _ => None,
        }
    }

    /// `Reflect.set(target, key, value)`. Setting on a primitive is ignored, as
    /// JS does outside strict mode; setting on `undefined`/`null` is an error.
    pub fn set_property(
        &mut self,
        target: &Value,
        key: Key<'_>,
        value: Value,
    ) -> Result<(), HeapError> {
        let id = match target {
            Value::Object(id) => *id,
            Value::Undefined | Value::Null => {
                return Err(not_an_object("set", target, key));
            }
            _ => return Ok(()),
        };
        let index = key.index();
        let is_length = matches!(key, Key::Name("length"));
        self.share(&value);
        let object = self.get_mut(id);
        match &mut object.kind {
            ObjectKind::Array(items) if index.is_some() || is_length => {
                let new_len = if is_length {
                    let n = to_number(&value);
                    if !(0.0..=u32::MAX as f64).contains(&n) || n.fract() != 0.0 {
                        return Err(HeapError::ArrayLength);
                    }
                    n as usize
                } else {
                    index.unwrap_or(0) + 1
                };
                if new_len > items.len() + MAX_ARRAY_GAP {
                    return Err(HeapError::ArrayLength);
                }
                let grow = new_len.saturating_sub(items.len()) * std::mem::size_of::<Value>();
                if is_length {
                    items.resize(new_len, Value::Undefined);
                } else {
                    let i = new_len - 1;
                    if i >= items.len() {
                        items.resize(new_len, Value::Undefined);
                    }
                    items[i] = value;
                }
                self.charge(grow)
            }
            ObjectKind::Bytes(bytes) if index.is_some() => {
                let i = index.unwrap_or(0);
                if let Some(slot) = bytes.get_mut(i) {
                    *slot = to_uint8(&value);
                }
                Ok(())
            }
            // Typed array lengths are fixed.
            ObjectKind::Bytes(_) if is_length => Ok(()),
            _ => {
                let name = key.name();
                let had = object.own(&name).is_some();
                object.set_own(&name, value);
                if had { Ok(()) } else { self.charge(40) }
            }
        }
    }

    /// `Reflect.deleteProperty(target, key)` on an own, ordinary property.
    pub fn delete_property(&mut self, target: &Value, key: Key<'_>) -> Result<(), HeapError> {
        match target {
            Value::Object(id) => {
                self.get_mut(*id).delete_own(&key.name());
                Ok(())
            }
            Value::Undefined | Value::Null => Err(not_an_object("delete", target, key)),
            _ => Ok(()),
        }
    }

    /// Sets an own property directly (for building the realm and results).
    pub fn define(&mut self, id: ObjectId, key: &str, value: Value) {
        self.share(&value);
        self.get_mut(id).set_own(key, value);
    }

    /// `true` when `proto` is on the prototype chain of `value`
    /// (the heart of `instanceof`).
    pub fn inherits(&self, value: &Value, proto: ObjectId) -> bool {
        let Value::Object(id) = value else {
            return false;
        };
        let mut cursor = self.get(*id).proto;
        let mut depth = 0;
        while let Some(p) = cursor {
            if p == proto {
                return true;
            }
            cursor = self.get(p).proto;
            depth += 1;
            if depth > 64 {
                return false;
            }
        }
        false
    }

    /// `true` when enough has been allocated since the last collection that
    /// one is worth its cost.
    pub fn wants_collection(&self) -> bool {
        self.allocated_since_gc >= self.collect_after
    }

    /// Frees every object not reachable from `roots`; returns how many it freed.
    pub fn collect<'a>(&mut self, roots: impl IntoIterator<Item = &'a Value>) -> usize {
        let mut stack: Vec<ObjectId> = roots.into_iter().filter_map(Value::as_object).collect();
        while let Some(id) = stack.pop() {
            let Some(object) = self.objects.get_mut(id.0 as usize) else {
                continue;
            };
            if object.marked {
                continue;
            }
            object.marked = true;
            stack.extend(object.proto);
            stack.extend(object.props.iter().filter_map(|(_, v)| v.as_object()));
            match &object.kind {
                ObjectKind::Array(items) | ObjectKind::Iterator { items, .. } => {
                    stack.extend(items.iter().filter_map(Value::as_object));
                }
                ObjectKind::Promise(PromiseState::Pending(reactions)) => {
                    for reaction in reactions {
                        stack.extend(reaction.values().filter_map(Value::as_object));
                    }
                }
                ObjectKind::Function(Callable::Resolve { promise, .. }) => stack.push(*promise),
                ObjectKind::Promise(PromiseState::Fulfilled(v) | PromiseState::Rejected(v)) => {
                    stack.extend(v.as_object());
                }
                _ => {}
            }
        }
        let mut dead = Vec::new();
        let mut live_bytes = 0;
        for (index, object) in self.objects.iter_mut() {
            if object.marked {
                object.marked = false;
                live_bytes += object.footprint();
            } else {
                dead.push(index);
            }
        }
        for index in &dead {
            self.objects.remove(*index);
        }
        self.meter
            .release_host(self.bytes_in_use.saturating_sub(live_bytes) as u64);
        self.bytes_in_use = live_bytes;
        self.allocated_since_gc = 0;
        self.collect_after = (self.objects.len()).max(4096);
        dead.len()
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        self.meter.release_host(self.bytes_in_use as u64);
    }
}

/// JS `ToNumber` for the cases the emulation needs.
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Undefined => f64::NAN,
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => *n,
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                0.0
            } else {
                t.parse().unwrap_or(f64::NAN)
            }
        }
        Value::Object(_) => f64::NAN,
    }
}

/// JS `ToUint8`: the number modulo 2^8.
fn to_uint8(v: &Value) -> u8 {
    let n = to_number(v);
    if !n.is_finite() {
        return 0;
    }
    (n.trunc().rem_euclid(256.0)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap() -> Heap {
        Heap::new(1 << 20)
    }

    #[test]
    fn properties_follow_the_prototype_chain() {
        let mut h = heap();
        let proto = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        h.define(proto, "greet", Value::from("hi"));
        let obj = h
            .alloc(Object::new(ObjectKind::Ordinary, Some(proto)))
            .unwrap();
        let v = Value::Object(obj);
        assert_eq!(
            h.get_property(&v, Key::Name("greet")).unwrap(),
            Value::from("hi")
        );
        h.set_property(&v, Key::Name("greet"), Value::from("own"))
            .unwrap();
        assert_eq!(
            h.get_property(&v, Key::Name("greet")).unwrap(),
            Value::from("own")
        );
        h.delete_property(&v, Key::Name("greet")).unwrap();
        assert_eq!(
            h.get_property(&v, Key::Name("greet")).unwrap(),
            Value::from("hi")
        );
        assert!(h.inherits(&v, proto));
        assert!(!h.inherits(&Value::Object(proto), obj));
    }

    #[test]
    fn arrays_and_bytes_have_indices_and_length() {
        let mut h = heap();
        let arr = Value::Object(
            h.alloc(Object::new(ObjectKind::Array(vec![]), None))
                .unwrap(),
        );
        h.set_property(&arr, Key::Index(2), Value::Number(7.0))
            .unwrap();
        assert_eq!(
            h.get_property(&arr, Key::Name("length")).unwrap(),
            Value::Number(3.0)
        );
        assert_eq!(
            h.get_property(&arr, Key::Name("2")).unwrap(),
            Value::Number(7.0)
        );
        assert_eq!(
            h.get_property(&arr, Key::Index(0)).unwrap(),
            Value::Undefined
        );
        assert_eq!(
            h.set_property(&arr, Key::Index(1 << 40), Value::Null),
            Err(HeapError::ArrayLength)
        );

        let proto = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        let bytes = Value::Object(h.alloc_bytes(4, proto).unwrap());
        h.set_property(&bytes, Key::Index(1), Value::Number(257.0))
            .unwrap();
        h.set_property(&bytes, Key::Index(9), Value::Number(1.0))
            .unwrap();
        assert_eq!(
            h.get_property(&bytes, Key::Index(1)).unwrap(),
            Value::Number(1.0)
        );
        assert_eq!(
            h.get_property(&bytes, Key::Index(9)).unwrap(),
            Value::Undefined
        );
        assert_eq!(
            h.get_property(&bytes, Key::Name("byteLength")).unwrap(),
            Value::Number(4.0)
        );
    }

    #[test]
    fn undefined_and_null_have_no_properties() {
        let h = heap();
        let err = h
            .get_property(&Value::Undefined, Key::Name("x"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot read properties of undefined (reading 'x')"
        );
        assert!(h.get_property(&Value::Null, Key::Index(0)).is_err());
        assert_eq!(
            h.get_property(&Value::from("héllo"), Key::Name("length"))
                .unwrap(),
            Value::Number(5.0)
        );
    }

    #[test]
    fn collection_frees_only_unreachable_objects_including_cycles() {
        let mut h = heap();
        let root = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        let kept = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        h.define(root, "child", Value::Object(kept));
        h.define(kept, "parent", Value::Object(root));
        let a = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        let b = h
            .alloc(Object::new(ObjectKind::Array(vec![Value::Object(a)]), None))
            .unwrap();
        h.define(a, "b", Value::Object(b));
        let freed = h.collect([&Value::Object(root)]);
        assert_eq!(freed, 2);
        assert!(h.contains(root) && h.contains(kept));
        assert!(!h.contains(a) && !h.contains(b));
    }

    #[test]
    fn the_budget_refuses_huge_allocations_before_allocating() {
        let mut h = Heap::new(1024);
        let proto = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        let err = h.alloc_bytes(usize::MAX / 2, proto).unwrap_err();
        assert!(matches!(err, HeapError::Budget { limit: 1024, .. }));
        assert!(h.alloc_bytes(100, proto).is_ok());
    }

    /// A freed id (a root someone forgot) reads as an empty object instead
    /// of panicking the host.
    #[test]
    fn a_freed_id_reads_as_empty_instead_of_panicking() {
        let mut h = Heap::new(1 << 20);
        let id = h.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        h.define(id, "code", Value::from("ENOENT"));
        h.collect(std::iter::empty());
        assert!(!h.contains(id));
        let v = Value::Object(id);
        assert_eq!(
            h.get_property(&v, Key::Name("code")).unwrap(),
            Value::Undefined
        );
        h.set_property(&v, Key::Name("x"), 1.0.into()).unwrap();
        h.collect([&v]);
    }
}

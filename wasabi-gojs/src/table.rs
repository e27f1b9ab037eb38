//! The reference table: the JS values Go currently holds, by id, with Go's
//! reference counts.
//!
//! Every time the host hands a value to Go it stores it here and bumps its
//! count; each `js.Value` Go drops is reported back through
//! `syscall/js.finalizeRef`, which lowers the count. The same object or string
//! always gets the same id while Go holds it, because Go compares values by
//! their reference word (`js.Value.Equal`).

use std::collections::HashMap;
use std::sync::Arc;

use slab::Slab;

use crate::heap::{Heap, ObjectKind};
use crate::memory::{MemoryLimitExceeded, MemoryMeter};
use crate::value::{Decoded, JsString, ObjectId, Ref, TypeFlag, Value};

/// Ids 0..=6 are fixed by Go's `syscall/js`: NaN, 0, null, true, false, the
/// global object and the Go object. They are never counted or freed.
pub const PREDEFINED: u32 = 7;
/// The predefined id of the global object (`js.Global()`).
pub const GLOBAL_ID: u32 = 5;
/// The predefined id of the Go object (`jsGo`).
pub const GO_ID: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    Object(ObjectId),
    String(JsString),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    count: u64,
}

/// Why a reference from Go could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The guest passed an id the table does not hold.
    #[error("unknown JS value reference id {0}")]
    UnknownId(u32),
    /// The guest holds more references than an instance may.
    #[error("too many live JS value references (limit {0})")]
    Full(usize),
    /// A string Go would hold does not fit in the tenant's memory limit.
    #[error(transparent)]
    Memory(#[from] MemoryLimitExceeded),
}

/// Host bytes a string held by the table costs besides its text (the
/// shared allocation's header, the entry and the identity map's slot).
const STRING_OVERHEAD: u64 = 64;

fn string_cost(s: &str) -> u64 {
    s.len() as u64 + STRING_OVERHEAD
}

/// The table of JS values referenced from Go.
#[derive(Debug)]
pub struct RefTable {
    entries: Slab<Entry>,
    ids: HashMap<Identity, u32>,
    limit: usize,
    /// Strings Go holds are host memory of the tenant: counted here.
    meter: Arc<MemoryMeter>,
}

impl RefTable {
    /// A table holding the predefined values, with `global` and `go` as ids 5
    /// and 6, and room for at most `limit` live references. The strings it
    /// holds are counted in `meter`.
    pub fn new(global: ObjectId, go: ObjectId, limit: usize, meter: Arc<MemoryMeter>) -> RefTable {
        let mut table = RefTable {
            entries: Slab::new(),
            ids: HashMap::new(),
            limit,
            meter,
        };
        let predefined = [
            Value::Number(f64::NAN),
            Value::Number(0.0),
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Object(global),
            Value::Object(go),
        ];
        for value in predefined {
            table.entries.insert(Entry {
                value,
                count: u64::MAX,
            });
        }
        table.ids.insert(Identity::Object(global), GLOBAL_ID);
        table.ids.insert(Identity::Object(go), GO_ID);
        table
    }

    /// Number of references Go holds beyond the predefined ones.
    pub fn live(&self) -> usize {
        self.entries.len() - PREDEFINED as usize
    }

    /// The value a reference stands for.
    pub fn load(&self, r: Ref) -> Result<Value, TableError> {
        match r.decode() {
            Decoded::Undefined => Ok(Value::Undefined),
            Decoded::Number(n) => Ok(Value::Number(n)),
            Decoded::Id(id) => self
                .entries
                .get(id as usize)
                .map(|e| e.value.clone())
                .ok_or(TableError::UnknownId(id)),
        }
    }

    /// Hands `value` to Go: returns its reference word, counting one more Go
    /// reference for table-held values.
    pub fn store(&mut self, heap: &Heap, value: &Value) -> Result<Ref, TableError> {
        let (identity, flag) = match value {
            Value::Undefined => return Ok(Ref::UNDEFINED),
            Value::Number(n) if n.is_nan() => return Ok(Ref::boxed(0, TypeFlag::None)),
            Value::Number(n) if *n == 0.0 => return Ok(Ref::boxed(1, TypeFlag::None)),
            Value::Number(n) => return Ok(Ref::number(*n)),
            Value::Null => return Ok(Ref::boxed(2, TypeFlag::None)),
            Value::Bool(true) => return Ok(Ref::boxed(3, TypeFlag::None)),
            Value::Bool(false) => return Ok(Ref::boxed(4, TypeFlag::None)),
            Value::String(s) => (Identity::String(s.clone()), TypeFlag::String),
            Value::Object(id) => {
                let flag = match heap.get(*id).kind {
                    ObjectKind::Function(_) => TypeFlag::Function,
                    _ => TypeFlag::Object,
                };
                (Identity::Object(*id), flag)
            }
        };
        if let Some(&id) = self.ids.get(&identity) {
            let entry = &mut self.entries[id as usize];
            entry.count = entry.count.saturating_add(1);
            return Ok(Ref::boxed(id, flag));
        }
        if self.entries.len() >= self.limit {
            return Err(TableError::Full(self.limit));
        }
        if let Value::String(s) = value {
            self.meter.charge_host(string_cost(s))?;
        }
        let id = self.entries.insert(Entry {
            value: value.clone(),
            count: 1,
        }) as u32;
        self.ids.insert(identity, id);
        Ok(Ref::boxed(id, flag))
    }

    /// Go dropped one reference to `id`. Returns `false` for an id the table
    /// does not hold (a confused or hostile guest; harmless, like in JS).
    pub fn finalize(&mut self, id: u32) -> bool {
        if id < PREDEFINED {
            return true;
        }
        let Some(entry) = self.entries.get_mut(id as usize) else {
            return false;
        };
        entry.count -= 1;
        if entry.count == 0 {
            let entry = self.entries.remove(id as usize);
            let identity = match entry.value {
                Value::String(s) => {
                    self.meter.release_host(string_cost(&s));
                    Identity::String(s)
                }
                Value::Object(o) => Identity::Object(o),
                _ => return true,
            };
            self.ids.remove(&identity);
        }
        true
    }

    /// Every value the table holds: roots for the heap's collector.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, e)| &e.value)
    }
}

impl Drop for RefTable {
    fn drop(&mut self) {
        for (_, entry) in &self.entries {
            if let Value::String(s) = &entry.value {
                self.meter.release_host(string_cost(s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::Object;

    fn setup() -> (Heap, RefTable, ObjectId) {
        let mut heap = Heap::new(1 << 20);
        let global = heap.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        let go = heap.alloc(Object::new(ObjectKind::Ordinary, None)).unwrap();
        let table = RefTable::new(global, go, 100, Arc::clone(heap.meter()));
        (heap, table, global)
    }

    #[test]
    fn predefined_values_have_fixed_refs() {
        let (heap, mut t, global) = setup();
        assert_eq!(
            t.store(&heap, &Value::Null).unwrap(),
            Ref::boxed(2, TypeFlag::None)
        );
        assert_eq!(
            t.store(&heap, &Value::Number(0.0)).unwrap(),
            Ref::boxed(1, TypeFlag::None)
        );
        assert_eq!(
            t.store(&heap, &Value::Number(f64::NAN)).unwrap(),
            Ref::boxed(0, TypeFlag::None)
        );
        assert_eq!(
            t.store(&heap, &Value::Object(global)).unwrap(),
            Ref::boxed(GLOBAL_ID, TypeFlag::Object)
        );
        assert_eq!(t.load(Ref::boxed(3, TypeFlag::None)).unwrap(), true.into());
        assert!(t.load(Ref::boxed(0, TypeFlag::None)).unwrap() != Value::Number(0.0));
        // Finalizing a predefined value never frees it.
        assert!(t.finalize(GLOBAL_ID));
        assert!(t.finalize(GLOBAL_ID));
        assert_eq!(
            t.load(Ref::boxed(GLOBAL_ID, TypeFlag::Object)).unwrap(),
            Value::Object(global)
        );
    }

    #[test]
    fn equal_strings_share_an_id_and_counts_free_them() {
        let (heap, mut t, _) = setup();
        let a = t.store(&heap, &Value::from("hello")).unwrap();
        let b = t.store(&heap, &Value::from("hello")).unwrap();
        assert_eq!(a, b);
        assert_eq!(t.live(), 1);
        let Decoded::Id(id) = a.decode() else {
            panic!("a string must be boxed")
        };
        assert!(t.finalize(id));
        assert_eq!(t.load(a).unwrap(), Value::from("hello"));
        assert!(t.finalize(id));
        assert_eq!(t.load(a), Err(TableError::UnknownId(id)));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn unknown_ids_are_errors_not_panics() {
        let (_, mut t, _) = setup();
        assert_eq!(
            t.load(Ref::boxed(9999, TypeFlag::Object)),
            Err(TableError::UnknownId(9999))
        );
        assert!(!t.finalize(9999));
        assert!(!t.finalize(u32::MAX));
    }

    #[test]
    fn the_table_has_a_limit() {
        let (heap, mut t, _) = setup();
        let mut last = Ok(Ref::UNDEFINED);
        for i in 0..200 {
            last = t.store(&heap, &Value::string(format!("s{i}")));
            if last.is_err() {
                break;
            }
        }
        assert_eq!(last, Err(TableError::Full(100)));
    }

    #[test]
    fn numbers_are_not_stored() {
        let (heap, mut t, _) = setup();
        let r = t.store(&heap, &Value::Number(2.5)).unwrap();
        assert_eq!(r.decode(), Decoded::Number(2.5));
        assert_eq!(t.live(), 0);
    }
}

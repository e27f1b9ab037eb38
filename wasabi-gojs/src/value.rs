//! JavaScript values as the emulated JS world holds them, and the NaN-boxed
//! 64-bit references through which they cross into Go.
//!
//! Go's `syscall/js` never sees a JS value itself: it sees a `ref`, a 64-bit
//! word that is either a plain IEEE-754 number or a NaN whose payload carries a
//! type flag (high word) and a reference-table id (low word). [`Ref`] is that
//! word; [`Value`] is what it stands for on the host.

use std::sync::Arc;

/// The id of an object in the object heap ([`crate::heap::Heap`]). Only the
/// heap hands these out, and only reachable objects keep theirs, so an id
/// held by the host is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub(crate) u32);

/// A JS string. Shared and immutable, as in JS; cheap to clone.
pub type JsString = Arc<str>;

/// A JavaScript value of the emulated world.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `undefined`.
    Undefined,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number (JS has only doubles).
    Number(f64),
    /// A string.
    String(JsString),
    /// An object (plain object, array, typed array, function, error, date...).
    Object(ObjectId),
}

impl Value {
    /// Builds a string value.
    pub fn string(s: impl Into<JsString>) -> Value {
        Value::String(s.into())
    }

    /// The object id, if this value is an object.
    pub fn as_object(&self) -> Option<ObjectId> {
        match self {
            Value::Object(id) => Some(*id),
            _ => None,
        }
    }

    /// `true` for `undefined` and `null`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}

/// The type flag Go reads from bits 32..35 of a boxed reference
/// (`typeFlagNone`, `typeFlagObject`, ... in `syscall/js`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TypeFlag {
    /// Primitive without a finalizer (null, booleans, NaN, zero).
    None = 0,
    /// A non-null object.
    Object = 1,
    /// A string.
    String = 2,
    /// A symbol. Go's ABI reserves the flag; this world has no symbols, so
    /// the host never makes one.
    #[allow(dead_code)]
    Symbol = 3,
    /// A function.
    Function = 4,
}

/// The high word of every boxed reference: a quiet NaN.
pub const NAN_HEAD: u32 = 0x7FF8_0000;

/// A Go-side reference to a JS value: the raw 64-bit word of `syscall/js.ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ref(pub u64);

/// What a [`Ref`] decodes to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoded {
    /// `undefined` (the all-zero word).
    Undefined,
    /// A plain, non-NaN number.
    Number(f64),
    /// An id in the reference table.
    Id(u32),
}

impl Ref {
    /// The reference for `undefined`.
    pub const UNDEFINED: Ref = Ref(0);

    /// Boxes a table id with its type flag.
    pub fn boxed(id: u32, flag: TypeFlag) -> Ref {
        Ref((u64::from(NAN_HEAD | flag as u32) << 32) | u64::from(id))
    }

    /// Encodes a number that is neither zero nor NaN (those live in the table).
    pub fn number(n: f64) -> Ref {
        Ref(n.to_bits())
    }

    /// Decodes the word the way `wasm_exec.js`'s `loadValue` does: zero is
    /// `undefined`, any non-NaN is a number, any NaN is a table id (its low word).
    pub fn decode(self) -> Decoded {
        let f = f64::from_bits(self.0);
        if f == 0.0 && self.0 == 0 {
            Decoded::Undefined
        } else if !f.is_nan() {
            Decoded::Number(f)
        } else {
            Decoded::Id(self.0 as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxing_round_trips_ids_and_flags() {
        let r = Ref::boxed(42, TypeFlag::Function);
        assert_eq!(r.0 >> 32, 0x7FF8_0004);
        assert_eq!(r.decode(), Decoded::Id(42));
    }

    #[test]
    fn numbers_decode_as_numbers() {
        assert_eq!(Ref::number(1.5).decode(), Decoded::Number(1.5));
        assert_eq!(Ref::number(-7.0).decode(), Decoded::Number(-7.0));
        assert_eq!(Ref::UNDEFINED.decode(), Decoded::Undefined);
        // Negative zero is not the undefined word: it is a number.
        assert_eq!(Ref(0x8000_0000_0000_0000).decode(), Decoded::Number(-0.0));
    }

    #[test]
    fn any_nan_payload_is_an_id() {
        // Go's predefined NaN value is id 0 with the NaN head.
        assert_eq!(Ref(u64::from(NAN_HEAD) << 32).decode(), Decoded::Id(0));
        // A signalling or negative NaN still decodes to its low word.
        assert_eq!(Ref(0xFFF0_0000_0000_0007).decode(), Decoded::Id(7));
    }
}

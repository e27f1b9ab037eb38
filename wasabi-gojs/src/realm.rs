//! The realm: the well-known objects of one instance's JS world (the global
//! object, the Go object, the prototypes the host gives the objects it
//! makes). The globals themselves are bound by [`crate::globals`].

use crate::value::{ObjectId, Value};

/// The well-known objects of one instance's JS world.
#[derive(Debug, Clone, Copy)]
pub struct Realm {
    /// `globalThis` (Go's predefined value 5).
    pub global: ObjectId,
    /// The Go object (`this` of `wasm_exec.js`'s `Go` class; predefined value 6).
    pub go: ObjectId,
    /// `Object.prototype`.
    pub object_proto: ObjectId,
    /// `Function.prototype`.
    pub function_proto: ObjectId,
    /// `Array.prototype`.
    pub array_proto: ObjectId,
    /// `Uint8Array.prototype`.
    pub bytes_proto: ObjectId,
    /// `Error.prototype`.
    pub error_proto: ObjectId,
    /// `TypeError.prototype`.
    pub type_error_proto: ObjectId,
    /// `RangeError.prototype`.
    pub range_error_proto: ObjectId,
    /// `Date.prototype`.
    pub date_proto: ObjectId,
    /// The prototype of the `fs.Stats` objects `fs.stat` makes.
    pub stats_proto: ObjectId,
    /// `Promise.prototype` (`then`, `catch`, `finally`).
    pub promise_proto: ObjectId,
    /// The prototype of the responses `fetch` makes (`arrayBuffer`,
    /// `text`, `json`).
    pub response_proto: ObjectId,
    /// `Headers.prototype`.
    pub headers_proto: ObjectId,
    /// The prototype of iterators (`next`).
    pub iterator_proto: ObjectId,
    /// The prototype of response body streams (`getReader`, `cancel`).
    pub stream_proto: ObjectId,
    /// The prototype of body readers (`read`, `cancel`, `releaseLock`).
    pub reader_proto: ObjectId,
    /// `AbortController.prototype` (`abort`).
    pub abort_proto: ObjectId,
}

impl Realm {
    /// The objects the realm keeps alive regardless of Go.
    pub fn roots(&self) -> [Value; 8] {
        [
            Value::Object(self.global),
            Value::Object(self.go),
            // Reachable from no global, but the host makes objects with them.
            Value::Object(self.stats_proto),
            Value::Object(self.promise_proto),
            Value::Object(self.response_proto),
            Value::Object(self.iterator_proto),
            Value::Object(self.stream_proto),
            Value::Object(self.reader_proto),
        ]
    }
}

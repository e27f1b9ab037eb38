//! JSON text into JS values, as `JSON.parse` makes them (what
//! `Response.json()` resolves with).
//!
//! The values are made in the heap as the parser reads, each charged to the
//! budget as it is made: there is no intermediate tree outside the budget,
//! which for a body of small numbers would be many times the text's size.
//! Nesting is bounded by serde_json's recursion limit (128).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::heap::HeapError;
use crate::js::Js;
use crate::value::Value;

/// Why a text did not become a value.
#[derive(Debug)]
pub(crate) enum JsonError {
    /// It is not JSON.
    Syntax(String),
    /// The values do not fit in the budget.
    Heap(HeapError),
}

/// Parses `text` into a value in `js`'s heap.
pub(crate) fn parse(js: &mut Js, text: &[u8]) -> Result<Value, JsonError> {
    let mut failed = None;
    let mut parser = serde_json::Deserializer::from_slice(text);
    let parsed = Seed {
        js,
        failed: &mut failed,
    }
    .deserialize(&mut parser)
    .and_then(|value| parser.end().map(|()| value));
    match (parsed, failed) {
        (_, Some(heap)) => Err(JsonError::Heap(heap)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(JsonError::Syntax(e.to_string())),
    }
}

/// Makes one value; a heap error is kept in `failed` (serde's errors carry
/// only text) and stops the parse.
struct Seed<'a> {
    js: &'a mut Js,
    failed: &'a mut Option<HeapError>,
}

impl Seed<'_> {
    fn reborrow(&mut self) -> Seed<'_> {
        Seed {
            js: self.js,
            failed: self.failed,
        }
    }

    fn heap<T, E: de::Error>(&mut self, made: Result<T, HeapError>) -> Result<T, E> {
        made.map_err(|e| {
            *self.failed = Some(e);
            E::custom("out of budget")
        })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }

    fn visit_str<E: de::Error>(mut self, s: &str) -> Result<Value, E> {
        let charged = self.js.heap.charge(s.len());
        self.heap(charged)?;
        Ok(Value::string(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.reborrow())? {
            let charged = self.js.heap.charge(std::mem::size_of::<Value>());
            self.heap(charged)?;
            items.push(item);
        }
        let array = self.js.new_array(items);
        Ok(Value::Object(self.heap(array)?))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let object = self.js.new_object();
        let object = self.heap(object)?;
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.reborrow())?;
            let charged = self.js.heap.charge(key.len() + 40);
            self.heap(charged)?;
            self.js.heap.define(object, &key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoHostBuilder;
    use crate::heap::Key;

    fn host(budget: usize) -> crate::GoHost {
        GoHostBuilder::new()
            .limits(wasabi_limits::TenantLimits {
                max_object_bytes: budget,
                ..Default::default()
            })
            .build()
            .unwrap()
    }

    #[test]
    fn json_becomes_js_values() {
        let mut host = host(1 << 20);
        let js = &mut host.js;
        let v = parse(js, br#"{"a":[1,-2,3.5,"x",null,true],"b":{"c":"d"}}"#).unwrap();
        let a = js.heap.get_property(&v, Key::Name("a")).unwrap();
        assert_eq!(
            js.heap.get_property(&a, Key::Index(2)).unwrap(),
            Value::Number(3.5)
        );
        assert_eq!(
            js.heap.get_property(&a, Key::Index(4)).unwrap(),
            Value::Null
        );
        let b = js.heap.get_property(&v, Key::Name("b")).unwrap();
        assert_eq!(
            js.heap.get_property(&b, Key::Name("c")).unwrap(),
            Value::from("d")
        );
        for bad in [&b"{"[..], b"[1,]", b"1 2", b"", b"nul"] {
            assert!(
                matches!(parse(js, bad), Err(JsonError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    /// A body of small numbers is charged as it is read, and a deep one
    /// stops at the parser's limit: neither costs the host memory (or
    /// stack) the budget does not count.
    #[test]
    fn hostile_json_stays_within_the_budget_and_the_stack() {
        let mut host = host(1 << 20);
        let wide = format!("[{}0]", "0,".repeat(500_000));
        assert!(matches!(
            parse(&mut host.js, wide.as_bytes()),
            Err(JsonError::Heap(_))
        ));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse(&mut host.js, deep.as_bytes()),
            Err(JsonError::Syntax(_))
        ));
    }
}

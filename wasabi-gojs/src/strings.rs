//! What a JS value reads as, as text: `String(v)` as JS defines it for the
//! values this world has, bounded by JS's own string limit and by the
//! tenant's memory, and safe on arrays that contain themselves.

use crate::heap::{Heap, HeapError, Key, ObjectKind};
use crate::value::{ObjectId, Value};

/// The longest string the JS world makes: V8's limit on 64-bit hosts.
/// Past it, JS throws `RangeError: Invalid string length`.
pub(crate) const MAX_STRING_LEN: usize = (1 << 29) - 24;

/// How deeply arrays nested in arrays are turned into text.
const MAX_NESTING: usize = 64;

/// JS `String(v)`, for messages: never longer than [`MAX_STRING_LEN`] (the
/// text is cut there), and safe on arrays that contain themselves.
pub(crate) fn to_js_string(heap: &Heap, v: &Value) -> String {
    let mut out = String::new();
    let _ = write_js_string(heap, v, &mut out, &mut Vec::new(), MAX_STRING_LEN);
    out
}

/// JS `String(v)` for a value the guest receives: the text is built only
/// while it fits in [`MAX_STRING_LEN`] and in the tenant's memory, and a
/// longer one is a `RangeError`, as in JS. An array inside itself reads as
/// empty, as `Array.prototype.join` does.
pub(crate) fn js_string(heap: &Heap, v: &Value) -> Result<String, HeapError> {
    let mut out = String::new();
    write_js_string(heap, v, &mut out, &mut Vec::new(), string_room(heap))?;
    Ok(out)
}

/// `items` joined by `sep` as `Array.prototype.join` does, under the same
/// bounds as [`js_string`]; `array` is the array itself, if any (so an
/// element that is the array reads as empty).
pub(crate) fn js_join(
    heap: &Heap,
    array: Option<ObjectId>,
    items: &[Value],
    sep: &str,
) -> Result<String, HeapError> {
    let mut out = String::new();
    let mut open: Vec<ObjectId> = array.into_iter().collect();
    write_items(heap, items, sep, &mut out, &mut open, string_room(heap))?;
    Ok(out)
}

/// Bytes a new string may take: the JS limit, or less if the tenant's
/// memory has less room.
fn string_room(heap: &Heap) -> usize {
    let meter = heap.meter();
    let room = meter
        .limit()
        .map_or(u64::MAX, |limit| limit.saturating_sub(meter.total()));
    MAX_STRING_LEN.min(usize::try_from(room).unwrap_or(usize::MAX))
}

fn push_bounded(out: &mut String, text: &str, cap: usize) -> Result<(), HeapError> {
    if out.len().saturating_add(text.len()) > cap {
        return Err(HeapError::StringLength);
    }
    out.push_str(text);
    Ok(())
}

fn write_items(
    heap: &Heap,
    items: &[Value],
    sep: &str,
    out: &mut String,
    open: &mut Vec<ObjectId>,
    cap: usize,
) -> Result<(), HeapError> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            push_bounded(out, sep, cap)?;
        }
        if !item.is_nullish() {
            write_js_string(heap, item, out, open, cap)?;
        }
    }
    Ok(())
}

/// Appends `String(v)` to `out`, failing once `out` would pass `cap`.
/// `open` holds the arrays being written, outermost first.
fn write_js_string(
    heap: &Heap,
    v: &Value,
    out: &mut String,
    open: &mut Vec<ObjectId>,
    cap: usize,
) -> Result<(), HeapError> {
    let text: std::borrow::Cow<'_, str> = match v {
        Value::Undefined => "undefined".into(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string().into(),
        Value::Number(n) => number_to_string(*n).into(),
        Value::String(s) => (&**s).into(),
        Value::Object(id) => {
            let object = heap.get(*id);
            match &object.kind {
                ObjectKind::Array(items) => {
                    // A cycle, or nesting past any sane depth, reads as empty.
                    if open.contains(id) || open.len() >= MAX_NESTING {
                        return Ok(());
                    }
                    open.push(*id);
                    let written = write_items(heap, items, ",", out, open, cap);
                    open.pop();
                    return written;
                }
                ObjectKind::Bytes(b) => {
                    for (i, byte) in b.iter().enumerate() {
                        if i > 0 {
                            push_bounded(out, ",", cap)?;
                        }
                        push_bounded(out, &byte.to_string(), cap)?;
                    }
                    return Ok(());
                }
                ObjectKind::Function(_) => "function () { [native code] }".into(),
                ObjectKind::Date(ms) => iso_string(*ms).into(),
                ObjectKind::Error => {
                    let get = |k| {
                        heap.get_property(v, Key::Name(k))
                            .unwrap_or(Value::Undefined)
                    };
                    let name = match get("name") {
                        Value::String(s) => s.to_string(),
                        _ => "Error".into(),
                    };
                    let message = match get("message") {
                        Value::String(s) => s.to_string(),
                        _ => String::new(),
                    };
                    if message.is_empty() {
                        name.into()
                    } else {
                        format!("{name}: {message}").into()
                    }
                }
                ObjectKind::Promise(_) => "[object Promise]".into(),
                ObjectKind::Headers(_) => "[object Headers]".into(),
                ObjectKind::Ordinary | ObjectKind::Iterator { .. } | ObjectKind::Body(_) => {
                    "[object Object]".into()
                }
            }
        }
    };
    push_bounded(out, &text, cap)
}

/// JS `Number.prototype.toString()` for the shapes that matter: integers
/// without a fraction, exponents past 1e21, `NaN` and `Infinity`.
pub(crate) fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if n == 0.0 {
        return "0".into();
    }
    let abs = n.abs();
    if (1e-7..1e21).contains(&abs) {
        format!("{n}")
    } else {
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

/// `Date.prototype.toISOString`.
pub(crate) fn iso_string(ms: f64) -> String {
    let ms = ms as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

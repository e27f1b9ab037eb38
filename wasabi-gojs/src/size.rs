//! Byte sizes as people write them: `256MiB`, `1GiB`, `64M`, `4096`.

/// A size string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size `{input}`: {reason} (examples: 64MiB, 1GiB, 512KiB, 1048576)")]
pub struct SizeError {
    input: String,
    reason: &'static str,
}

/// Parses a byte size: a whole number with an optional unit (`B`, `KiB`,
/// `MiB`, `GiB`, or `K`/`M`/`G` and `KB`/`MB`/`GB`, all powers of 1024).
///
/// ```
/// assert_eq!(wasabi_gojs::size::parse_size("256MiB"), Ok(256 << 20));
/// assert_eq!(wasabi_gojs::size::parse_size("4096"), Ok(4096));
/// assert!(wasabi_gojs::size::parse_size("lots").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let err = |reason| SizeError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(err("it must start with a number"));
    }
    let n: u64 = digits.parse().map_err(|_| err("the number is too large"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(err("unknown unit")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| err("the size is too large"))
}

/// Formats a byte size for messages: `256 MiB`, `1.5 GiB`, `100 bytes`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, unit) in UNITS {
        if bytes >= unit {
            let whole = bytes / unit;
            let tenth = (bytes % unit) * 10 / unit;
            return if tenth == 0 {
                format!("{whole} {name}")
            } else {
                format!("{whole}.{tenth} {name}")
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("18446744073709551615GiB").is_err());
    }

    #[test]
    fn sizes_format_readably() {
        assert_eq!(format_size(256 << 20), "256 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(100), "100 bytes");
    }
}

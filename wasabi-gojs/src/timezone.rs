//! The guest's local time zone, which Go learns from
//! `new Date().getTimezoneOffset()`.
//!
//! A tenant runs in UTC unless it is given `TZ`. A `TZ` naming a zone is looked
//! up in the host's zoneinfo database (TZif files); a fixed offset such as
//! `UTC+2` or `+05:30` is taken as written. An unknown zone falls back to UTC,
//! as Go itself does.

use std::path::Path;

/// A time zone: a rule giving the UTC offset at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimeZone {
    /// Coordinated Universal Time.
    #[default]
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// Transitions read from a TZif file: (instant in Unix seconds, offset
    /// east of UTC in seconds), sorted, with the offset before the first.
    Rules {
        /// The offset before the first transition.
        initial: i32,
        /// The transitions.
        transitions: Vec<(i64, i32)>,
    },
}

impl TimeZone {
    /// Resolves a `TZ` value against the zoneinfo database in `zoneinfo`
    /// (normally `/usr/share/zoneinfo`).
    pub fn from_tz(tz: &str, zoneinfo: &Path) -> TimeZone {
        let tz = tz.strip_prefix(':').unwrap_or(tz);
        if tz.is_empty() || tz == "UTC" || tz == "Etc/UTC" || tz == "GMT" {
            return TimeZone::Utc;
        }
        if let Some(offset) = parse_fixed(tz) {
            return TimeZone::Fixed(offset);
        }
        // A zone name must stay inside the database: no absolute paths, no `..`.
        if tz.starts_with('/') || tz.split('/').any(|part| part == ".." || part.is_empty()) {
            return TimeZone::Utc;
        }
        match std::fs::read(zoneinfo.join(tz)) {
            Ok(data) => parse_tzif(&data).unwrap_or(TimeZone::Utc),
            Err(_) => TimeZone::Utc,
        }
    }

    /// The offset east of UTC, in seconds, at `unix_seconds`.
    pub fn offset_at(&self, unix_seconds: i64) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Fixed(offset) => *offset,
            TimeZone::Rules {
                initial,
                transitions,
            } => {
                let after = transitions.partition_point(|(at, _)| *at <= unix_seconds);
                if after == 0 {
                    *initial
                } else {
                    transitions[after - 1].1
                }
            }
        }
    }
}

/// `UTC+2`, `GMT-3`, `+05:30`, `-0800`: an offset east of UTC in seconds.
fn parse_fixed(tz: &str) -> Option<i32> {
    let rest = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("GMT"))
        .unwrap_or(tz);
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

fn be_i32(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(data: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Parses a TZif file (RFC 8536), using the 64-bit section when present.
fn parse_tzif(data: &[u8]) -> Option<TimeZone> {
    let header = |base: usize| -> Option<[usize; 6]> {
        if data.get(base..base + 4)? != b"TZif" {
            return None;
        }
        let mut counts = [0usize; 6];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = usize::try_from(be_i32(data, base + 20 + i * 4)?).ok()?;
        }
        Some(counts)
    };
    let v1 = header(0)?;
    let version = *data.get(4)?;
    let v1_len = |c: [usize; 6], time: usize| {
        let [isut, isstd, leap, timecnt, typecnt, charcnt] = c;
        timecnt * time + timecnt + typecnt * 6 + charcnt + leap * (time + 4) + isstd + isut
    };
    let (base, time_size, counts) = if version >= b'2' {
        let base = 44 + v1_len(v1, 4);
        (base, 8, header(base)?)
    } else {
        (0, 4, v1)
    };
    let [_, _, _, timecnt, typecnt, _] = counts;
    if typecnt == 0 || timecnt > 100_000 || typecnt > 256 {
        return None;
    }
    let times_at = base + 44;
    let idx_at = times_at + timecnt * time_size;
    let types_at = idx_at + timecnt;
    let offset_of = |t: usize| be_i32(data, types_at + t * 6);
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let at = if time_size == 8 {
            be_i64(data, times_at + i * 8)?
        } else {
            i64::from(be_i32(data, times_at + i * 4)?)
        };
        let t = usize::from(*data.get(idx_at + i)?);
        if t >= typecnt {
            return None;
        }
        transitions.push((at, offset_of(t)?));
    }
    Some(TimeZone::Rules {
        initial: offset_of(0)?,
        transitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_offsets_parse() {
        let db = Path::new("/nonexistent");
        assert_eq!(TimeZone::from_tz("UTC+2", db), TimeZone::Fixed(7200));
        assert_eq!(TimeZone::from_tz("-05:30", db), TimeZone::Fixed(-19800));
        assert_eq!(TimeZone::from_tz("GMT-0800", db), TimeZone::Fixed(-28800));
        assert_eq!(TimeZone::from_tz("UTC", db), TimeZone::Utc);
        assert_eq!(TimeZone::from_tz("Nowhere/Land", db), TimeZone::Utc);
        assert_eq!(TimeZone::from_tz("../../etc/passwd", db), TimeZone::Utc);
    }

    #[test]
    fn host_zoneinfo_gives_summer_and_winter_offsets() {
        let db = Path::new("/usr/share/zoneinfo");
        if !db.join("Europe/Berlin").exists() {
            // The tzdata package is part of every Debian system this runs on;
            // fail loudly rather than pass without checking.
            panic!("host zoneinfo database missing at {}", db.display());
        }
        let berlin = TimeZone::from_tz("Europe/Berlin", db);
        // 2024-01-15 and 2024-07-15, noon UTC.
        assert_eq!(berlin.offset_at(1_705_320_000), 3600);
        assert_eq!(berlin.offset_at(1_721_044_800), 7200);
    }

    #[test]
    fn garbage_tzif_is_refused() {
        assert_eq!(parse_tzif(b"TZif2garbage"), None);
        assert_eq!(parse_tzif(b""), None);
    }
}

//! One parser and one validator for each field of a [`TenantSpec`]
//! (crate::TenantSpec) that people write, shared by the CLI's flags and the
//! manifest's fields. Each returns what is wrong with the value, without
//! naming the field: the edge says which flag or field it was, in its own
//! words.
//!
//! ```
//! use wasabi_core::fields;
//!
//! assert_eq!(fields::cpu_share("0.5"), Ok(0.5));
//! assert!(fields::cpu_share("0").is_err());
//! assert!(fields::listen_mapping("127.0.0.1:8080", "127.0.0.1:0").is_err());
//! ```

use std::net::SocketAddr;

/// The longest tenant name.
pub const MAX_NAME_LEN: usize = 64;

/// A tenant name: 1 to 64 of `[A-Za-z0-9._-]` (it tags output lines and
/// labels metrics, so nothing that needs quoting).
pub fn tenant_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "invalid tenant name `{name}`: use letters, digits, `.`, `_` and `-`, at most {MAX_NAME_LEN}"
        ))
    }
}

/// A CPU share written as text: a fraction of one core, more than 0.
pub fn cpu_share(text: &str) -> Result<f64, String> {
    let value = text
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("`{text}` is not a fraction of a core, such as 0.5"))?;
    check_cpu_share(value)
}

/// A CPU share: a fraction of one core, finite and more than 0 (`0.5` is
/// half a core; more than 1 lets a tenant use several).
pub fn check_cpu_share(value: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "`{value}` is not a fraction of a core more than 0, such as 0.5"
        ))
    }
}

/// A count cap (sockets, open files, references, timers): at least 1.
pub fn check_count(n: usize) -> Result<usize, String> {
    if n == 0 {
        Err("must be at least 1".into())
    } else {
        Ok(n)
    }
}

/// [`check_count`], written as text.
pub fn count(text: &str) -> Result<usize, String> {
    let n = text
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    check_count(n)
}

/// A size in bytes written as text: `64MiB`, `1GiB`, `512KB`, `1048576`.
pub fn size(text: &str) -> Result<u64, String> {
    wasabi_gojs::size::parse_size(text).map_err(|e| e.to_string())
}

/// A duration written as text: `10s`, `500ms`, `2m`, or a bare number of
/// seconds.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |i| text.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s or 500ms"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => return Err(format!("unknown unit `{other}`: use ms, s or m")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// A server timeout: a [`duration`] of at least 1 ms.
pub fn timeout(text: &str) -> Result<std::time::Duration, String> {
    let d = duration(text)?;
    if d < std::time::Duration::from_millis(1) {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

/// The largest request head the host's HTTP server accepts, in bytes: at
/// least [`HttpLimits::MIN_HEADER_BYTES`](wasabi_limits::HttpLimits::MIN_HEADER_BYTES).
pub fn check_header_size(bytes: u64) -> Result<usize, String> {
    if bytes < wasabi_limits::HttpLimits::MIN_HEADER_BYTES as u64 {
        return Err("must be at least 8 KiB".into());
    }
    Ok(usize::try_from(bytes.min(u64::from(u32::MAX))).unwrap_or(usize::MAX))
}

/// [`check_header_size`], written as a size.
pub fn header_size(text: &str) -> Result<usize, String> {
    check_header_size(size(text)?)
}

/// The certificate chain and key the host serves HTTPS with, from PEM
/// files.
pub fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<wasabi_gojs::ServerTls, String> {
    wasabi_gojs::ServerTls::from_pem_files(cert, key).map_err(|e| e.to_string())
}

/// Whom a tenant's HTTPS requests trust: the system's certificate
/// authorities and those in the PEM files `ca_certs`.
pub fn client_tls(ca_certs: &[std::path::PathBuf]) -> Result<wasabi_gojs::ClientTls, String> {
    let paths: Vec<&std::path::Path> = ca_certs.iter().map(|p| p.as_path()).collect();
    wasabi_gojs::ClientTls::with_extra_roots(&paths).map_err(|e| e.to_string())
}

/// The smallest JS heap: the JS world's own objects (the globals Go
/// reads) take a few KiB of it before the program runs.
pub const MIN_JS_HEAP: u64 = 64 << 10;

/// A JS heap cap in bytes: at least [`MIN_JS_HEAP`].
pub fn check_js_heap(bytes: u64) -> Result<usize, String> {
    if bytes < MIN_JS_HEAP {
        return Err("must be at least 64 KiB".into());
    }
    Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// [`check_js_heap`], written as a size.
pub fn js_heap(text: &str) -> Result<usize, String> {
    check_js_heap(size(text)?)
}

/// A listen mapping: the address the guest listens on, and the host
/// address it is bound on instead. Both are IP:PORT; the host port must be
/// fixed (not 0), so the tenant can be found and two tenants' ports can be
/// checked for clashes.
pub fn listen_mapping(guest: &str, host: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let parse = |a: &str| {
        a.trim()
            .parse::<SocketAddr>()
            .map_err(|_| format!("`{a}` is not an IP:PORT address"))
    };
    let (guest_addr, host_addr) = (parse(guest)?, parse(host)?);
    if host_addr.port() == 0 {
        return Err(format!("the host port of `{guest}` must be fixed, not 0"));
    }
    Ok((guest_addr, host_addr))
}

/// [`listen_mapping`] written as `GUEST=HOST`.
pub fn listen_mapping_text(text: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (guest, host) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not GUEST=HOST"))?;
    listen_mapping(guest, host)
}

/// An environment variable's name: not empty, without `=` or NUL (which
/// no environment can hold).
pub fn env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("the variable name is empty".into())
    } else if name.contains(['=', '\0']) {
        Err(format!(
            "`{}` cannot be a variable name: it holds `=` or NUL",
            name.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// An environment variable's value: anything but NUL.
pub fn env_value(name: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("the value of `{name}` holds a NUL byte"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_takes_the_good_and_says_what_is_wrong_with_the_bad() {
        assert!(tenant_name("blog-1.a_b").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65), "ünï"] {
            assert!(tenant_name(bad).is_err(), "{bad}");
        }
        assert_eq!(cpu_share(" 2 "), Ok(2.0));
        for bad in ["0", "-1", "NaN", "inf", "half"] {
            assert!(cpu_share(bad).is_err(), "{bad}");
        }
        assert_eq!(count("1"), Ok(1));
        assert!(count("0").unwrap_err().contains("at least 1"));
        assert!(count("-3").is_err());
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert!(size("12XB").is_err());
        assert_eq!(js_heap("64KiB"), Ok(64 << 10));
        assert!(js_heap("1KiB").unwrap_err().contains("at least 64 KiB"));
        let (g, h) = listen_mapping_text("127.0.0.1:8080=127.0.0.1:9001").unwrap();
        assert_eq!((g.port(), h.port()), (8080, 9001));
        assert!(listen_mapping_text("127.0.0.1:8080").is_err());
        assert!(
            listen_mapping_text("localhost:80=127.0.0.1:1")
                .unwrap_err()
                .contains("IP:PORT")
        );
        assert!(
            listen_mapping("127.0.0.1:80", "127.0.0.1:0")
                .unwrap_err()
                .contains("fixed")
        );
        assert!(env_name("A").is_ok());
        assert!(env_name("").is_err() && env_name("A=B").is_err() && env_name("A\0").is_err());
        assert!(env_value("A", "x=y").is_ok() && env_value("A", "\0").is_err());
    }
}

//! Guest paths: absolute, `/`-separated, with `.` and `..` folded away.
//!
//! Every path a guest names is made absolute against its working directory
//! and folded *lexically* before it is matched against the mounts, so `..`
//! can never climb out of a mount: `/data/../etc` is `/etc`, which is
//! outside `/data` whatever the host's directories look like. (Symbolic
//! links inside a mount are resolved later, by the kernel, beneath the
//! mount's directory.)

/// `path` made absolute against `cwd` (itself absolute) and folded:
/// no `.`, no `..`, no empty or trailing components. `..` at `/` stays at `/`,
/// as in POSIX.
pub fn normalize(cwd: &str, path: &str) -> String {
    fold(&components(cwd, path))
}

/// The components of `path` made absolute against `cwd`, with empty and
/// `.` components dropped and `..` kept.
pub fn components<'a>(cwd: &'a str, path: &'a str) -> Vec<&'a str> {
    let start = if path.starts_with('/') { "" } else { cwd };
    start
        .split('/')
        .chain(path.split('/'))
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// An absolute path from `components`, with `..` folded lexically.
pub fn fold(components: &[&str]) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(components.len());
    for part in components {
        match *part {
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return "/".into();
    }
    parts.iter().fold(String::new(), |mut out, p| {
        out.push('/');
        out.push_str(p);
        out
    })
}

/// The part of `path` below `root` (both normalized): `Some(".")` when they
/// are equal, `Some("a/b")` for `root/a/b`, `None` when `path` is not inside.
pub fn strip(path: &str, root: &str) -> Option<String> {
    if path == root {
        return Some(".".into());
    }
    if root == "/" {
        return Some(path[1..].to_string());
    }
    path.strip_prefix(root)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(str::to_string)
}

/// Splits a relative path (`a/b/c`, or `a/b/c/`) into its parent (`a/b`,
/// or `.`) and its last component (`c`, or `c/`).
pub fn split_last(rel: &str) -> (&str, &str) {
    // A trailing slash stays on the name (`a/b/` is `b/` in `a`): the
    // kernel's `*at` calls give it its POSIX meaning (follow a link, demand
    // a directory).
    let trimmed = rel.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(at) => (&rel[..at], &rel[at + 1..]),
        None => (".", rel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_and_folded() {
        assert_eq!(normalize("/", "a/b"), "/a/b");
        assert_eq!(normalize("/work", "./x/../y/"), "/work/y");
        assert_eq!(normalize("/work", "/abs//p"), "/abs/p");
        assert_eq!(normalize("/data", "../../../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("/data", ".."), "/");
        assert_eq!(normalize("/", ""), "/");
    }

    #[test]
    fn strip_and_split() {
        assert_eq!(strip("/data", "/data").as_deref(), Some("."));
        assert_eq!(strip("/data/a/b", "/data").as_deref(), Some("a/b"));
        assert_eq!(strip("/database", "/data"), None);
        assert_eq!(strip("/x", "/").as_deref(), Some("x"));
        assert_eq!(split_last("a/b/c"), ("a/b", "c"));
        assert_eq!(split_last("c"), (".", "c"));
        assert_eq!(split_last("a/c/"), ("a", "c/"));
        assert_eq!(split_last("c/"), (".", "c/"));
    }
}

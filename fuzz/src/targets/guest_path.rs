//! Guest path folding: whatever the path, the result is absolute, has no
//! `.` or `..`, and is what folding it again gives.

use wasabi_fs::guest_path::{components, fold, normalize, split_last, strip};

/// The target.
pub const TARGET: crate::Target = crate::Target {
    name: "guest-path",
    about: "guest path folding, mount matching and splitting",
    dictionary: &[
        b"/",
        b"..",
        b".",
        b"//",
        b"/data",
        b"/data/..",
        b"\0",
        b"\\",
    ],
    run,
};

fn run(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let (cwd, path) = text.split_once('\n').unwrap_or(("/", &text));
    let cwd = normalize("/", cwd);
    let folded = normalize(&cwd, path);
    assert!(folded.starts_with('/'), "{folded:?}");
    assert!(
        folded.split('/').all(|c| c != ".." && c != "."),
        "{path:?} folded to {folded:?}"
    );
    assert!(folded == "/" || !folded.ends_with('/'), "{folded:?}");
    assert_eq!(normalize("/", &folded), folded, "folding is idempotent");
    assert_eq!(fold(&components(&cwd, path)), folded);
    for root in ["/", "/data", cwd.as_str()] {
        if let Some(rest) = strip(&folded, root) {
            assert!(!rest.starts_with('/'), "{rest:?}");
            assert!(rest.split('/').all(|c| c != ".."), "{rest:?}");
            let (parent, name) = split_last(&rest);
            assert!(!name.contains('/') || name.ends_with('/'), "{name:?}");
            let _ = parent;
        }
    }
}

//! `cargo xtask conformance`: the Go standard library's own tests as the
//! oracle for how faithful Wasabi's JS world is.
//!
//! Each package's tests are built once for js/wasm and run twice by
//! `go test -exec`: under the Go toolchain's Node.js runner
//! (`lib/wasm/go_js_wasm_exec`) and under `wasabi go-exec`. The table
//! (package, Node.js result, Wasabi result, and the reason for any
//! difference) goes to `target/conformance/results.md`, and with
//! `--publish` to `docs/conformance.md`. A package that passes under
//! Node.js and fails under Wasabi without a written reason in [`REASONS`]
//! fails the task.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{output, step};

/// The packages whose tests are run: a broad slice of the standard library.
pub const PACKAGES: &[&str] = &[
    "archive/tar",
    "archive/zip",
    "bufio",
    "bytes",
    "compress/bzip2",
    "compress/flate",
    "compress/gzip",
    "compress/lzw",
    "compress/zlib",
    "container/heap",
    "container/list",
    "container/ring",
    "context",
    "crypto/aes",
    "crypto/hmac",
    "crypto/md5",
    "crypto/sha1",
    "crypto/sha256",
    "crypto/sha512",
    "embed/internal/embedtest",
    "encoding/base32",
    "encoding/base64",
    "encoding/binary",
    "encoding/csv",
    "encoding/hex",
    "encoding/json",
    "encoding/pem",
    "encoding/xml",
    "errors",
    "flag",
    "fmt",
    "hash/adler32",
    "hash/crc32",
    "hash/crc64",
    "hash/fnv",
    "html",
    "html/template",
    "io",
    "io/fs",
    "io/ioutil",
    "log",
    "maps",
    "math",
    "math/big",
    "math/bits",
    "math/rand",
    "mime",
    "mime/multipart",
    "mime/quotedprintable",
    "net/url",
    "os",
    "path",
    "path/filepath",
    "regexp",
    "slices",
    "sort",
    "strconv",
    "strings",
    "sync",
    "sync/atomic",
    "testing/fstest",
    "text/scanner",
    "text/tabwriter",
    "text/template",
    "time",
    "unicode",
    "unicode/utf16",
    "unicode/utf8",
];

/// Why a package that passes under Node.js does not pass under Wasabi.
/// Every entry is a deliberate difference, explained.
pub const REASONS: &[(&str, &str)] = &[
    (
        "os",
        "By design: (1) the sandbox shows no host system files, and TestChdirAndGetwd (and \
         others that open /etc/group or /usr/bin) need them; (2) chown is refused and \
         getgroups is not provided (TestChown, TestFileChown, TestLchown, TestRoot*Chown); \
         (3) a symbolic link the guest makes may only lead down from its own directory (no \
         `..`; an absolute target only beneath the link's directory), so that no rename, hard \
         link or chain of links can leave a link on the host that leads out of the mount: \
         TestDirFSReadLink, TestCopyFSWithSymlinks, TestOpenInRoot, TestRootSymlinkToRoot and \
         the os.Root tests (TestRoot*, TestRootMulti*) make `..` or absolute links in every \
         case table. Go's own tests skip the absolute-link cases on wasip1 for a like reason.",
    ),
    (
        "path/filepath",
        "By design: TestEvalSymlinks and TestRelativeSymlinkToAbsolute make symbolic links with \
         `..` and absolute targets (`/`, and a temporary directory); a link the guest makes may \
         only lead down from its own directory (see `os`).",
    ),
];

/// One package's result under one runner.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Pass,
    /// The failing top-level tests (empty when the binary failed as a whole).
    Fail(Vec<String>),
    NoTests,
}

impl Verdict {
    fn cell(&self) -> String {
        match self {
            Verdict::Pass => "pass".into(),
            Verdict::NoTests => "no tests".into(),
            Verdict::Fail(tests) if tests.is_empty() => "**fail**".into(),
            Verdict::Fail(tests) => {
                let shown: Vec<&str> = tests.iter().take(4).map(String::as_str).collect();
                let more = tests.len().saturating_sub(4);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("**fail**: {}{more}", shown.join(", "))
            }
        }
    }
}

/// Runs the conformance comparison over `only` (or every package).
pub fn conformance(root: &Path, only: Vec<String>, publish: bool) -> anyhow::Result<()> {
    let packages: Vec<String> = if only.is_empty() {
        PACKAGES.iter().map(|p| p.to_string()).collect()
    } else {
        only
    };
    step("building wasabi");
    let wasabi = crate::build_cli(root)?;
    let node_runner = crate::goroot()?.join("lib/wasm/go_js_wasm_exec");
    if !node_runner.is_file() {
        bail!(
            "{} is missing: this Go toolchain has no Node.js runner",
            node_runner.display()
        );
    }
    let node = output(Command::new("node").arg("--version"))
        .context("Node.js is needed for the comparison: `node` is not on PATH")?;
    let go = output(Command::new("go").arg("version"))?;
    step(&format!(
        "{} packages under Node.js ({})",
        packages.len(),
        node.trim()
    ));
    let under_node = go_test(root, &node_runner.to_string_lossy(), &packages)?;
    step(&format!("{} packages under Wasabi", packages.len()));
    let under_wasabi = go_test(root, &format!("{} go-exec", wasabi.display()), &packages)?;

    let reasons: BTreeMap<&str, &str> = REASONS.iter().copied().collect();
    let mut table = String::from("| Package | Node.js | Wasabi | Note |\n|---|---|---|---|\n");
    let (mut same, mut unexplained) = (0, Vec::new());
    for pkg in &packages {
        let n = under_node
            .get(pkg)
            .cloned()
            .unwrap_or(Verdict::Fail(vec![]));
        let w = under_wasabi
            .get(pkg)
            .cloned()
            .unwrap_or(Verdict::Fail(vec![]));
        let note = match (&n, &w) {
            (a, b) if a == b => {
                same += 1;
                String::new()
            }
            (Verdict::Pass, _) => match reasons.get(pkg.as_str()) {
                Some(r) => r.to_string(),
                None => {
                    unexplained.push(pkg.clone());
                    "**unexplained: a bug**".into()
                }
            },
            (_, Verdict::Pass) => "Wasabi passes where Node.js fails (see below)".into(),
            _ => reasons
                .get(pkg.as_str())
                .map(|r| r.to_string())
                .unwrap_or_default(),
        };
        table.push_str(&format!(
            "| `{pkg}` | {} | {} | {note} |\n",
            n.cell(),
            w.cell()
        ));
    }
    let node_pass = under_node.values().filter(|v| **v == Verdict::Pass).count();
    let wasabi_pass = under_wasabi
        .values()
        .filter(|v| **v == Verdict::Pass)
        .count();
    let summary = format!(
        "{} packages: {node_pass} pass under Node.js, {wasabi_pass} under Wasabi; \
         {same} have the same result under both.\n\nMachine: {}; {}; Node.js {}.\n",
        packages.len(),
        std::env::consts::ARCH,
        go.trim(),
        node.trim()
    );
    let out_dir = root.join("target/conformance");
    std::fs::create_dir_all(&out_dir)?;
    let results = format!("{summary}\n{table}");
    std::fs::write(out_dir.join("results.md"), &results)?;
    println!("\n{results}");
    if publish {
        let doc = root.join("docs/conformance.md");
        let text = std::fs::read_to_string(&doc).unwrap_or_default();
        let marker = "<!-- results: written by cargo xtask conformance --publish -->";
        let head = text.split(marker).next().unwrap_or_default();
        std::fs::write(&doc, format!("{head}{marker}\n\n{results}"))?;
        println!("wrote {}", doc.display());
    }
    if !unexplained.is_empty() {
        bail!(
            "these packages pass under Node.js but fail under Wasabi, with no reason written in \
             xtask/src/conformance.rs: {}",
            unexplained.join(", ")
        );
    }
    Ok(())
}

/// `go test -json` of `packages` for js/wasm with `exec` as the runner:
/// each package's verdict.
fn go_test(
    root: &Path,
    exec: &str,
    packages: &[String],
) -> anyhow::Result<BTreeMap<String, Verdict>> {
    let out = Command::new("go")
        .args(["test", "-count=1", "-json", "-timeout=10m", "-exec", exec])
        .args(packages)
        .current_dir(root.join("target"))
        .env("GOOS", "js")
        .env("GOARCH", "wasm")
        .env("GOWORK", "off")
        .output()
        .context("could not start go test")?;
    let mut verdicts = BTreeMap::new();
    let mut failing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(action), Some(pkg)) = (event["Action"].as_str(), event["Package"].as_str())
        else {
            continue;
        };
        match (action, event["Test"].as_str()) {
            ("fail", Some(test)) if !test.contains('/') => {
                failing.entry(pkg.into()).or_default().push(test.into());
            }
            ("pass", None) => {
                verdicts.insert(pkg.to_string(), Verdict::Pass);
            }
            ("skip", None) => {
                verdicts.insert(pkg.to_string(), Verdict::NoTests);
            }
            ("fail", None) => {
                let tests = failing.remove(pkg).unwrap_or_default();
                verdicts.insert(pkg.to_string(), Verdict::Fail(tests));
            }
            _ => {}
        }
    }
    if verdicts.is_empty() {
        bail!(
            "go test reported nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(verdicts)
}

//! `cargo xtask conformance [--wasip1]`: the Go standard library's own
//! tests as the oracle for how faithful Wasabi's guest worlds are.
//!
//! Each package's tests are built once and run twice by `go test -exec`:
//! for js/wasm under the Go toolchain's Node.js runner
//! (`lib/wasm/go_js_wasm_exec`), for wasip1 under its WASI runner
//! (`lib/wasm/go_wasip1_wasm_exec`) with wasmtime's own CLI — the peer a
//! wasip1 user would pick, installed by the task at a pinned version when
//! missing — and each under `wasabi go-exec`. The table (package, the
//! peer's result, Wasabi's result, and the reason for any difference) goes
//! to `target/conformance/results[-wasip1].md`, and with `--publish` to
//! `docs/conformance[-wasip1].md`. A package that passes under the peer and
//! fails under Wasabi without a written reason ([`REASONS`],
//! [`REASONS_WASIP1`]) fails the task.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// Why a package that passes under wasmtime's CLI does not pass under
/// Wasabi, built for wasip1. Go's runner gives wasmtime the whole host
/// file system (`--dir=/`) and the host's `PATH`; `wasabi go-exec` gives a
/// test its package directory, a private `/tmp` and GOROOT read-only.
pub const REASONS_WASIP1: &[(&str, &str)] = &[(
    "os",
    "By design: the host's file system is not visible. TestFileChdir changes to `/`, which \
         no mount covers; TestUserHomeDir, TestUserConfigDir and TestUserCacheDir stat the \
         directories under `$HOME`, which go-exec passes on with the rest of the environment \
         `go test` sets (as for js/wasm) but does not mount. Go's runner gives wasmtime \
         `--dir=/`.",
)];

/// The wasmtime CLI the wasip1 comparison runs, installed under target/.
const WASMTIME_VERSION: &str = "48.0.8";

/// The peer a comparison runs against.
struct Peer {
    goos: &'static str,
    name: String,
    exec: String,
    /// Added to the front of `PATH` for the peer's runner.
    path: Option<PathBuf>,
    reasons: &'static [(&'static str, &'static str)],
    /// `results` and `docs/conformance` file suffix.
    suffix: &'static str,
}

/// wasmtime's CLI at [`WASMTIME_VERSION`], installed under
/// `target/tools/wasmtime` by `cargo install` when missing (a long build;
/// CI does not run this task).
pub fn wasmtime_cli(root: &Path) -> anyhow::Result<PathBuf> {
    let prefix = root.join("target/tools/wasmtime");
    let bin = prefix.join("bin/wasmtime");
    let have = output(Command::new(&bin).arg("--version")).unwrap_or_default();
    if !have.contains(WASMTIME_VERSION) {
        step(&format!(
            "installing wasmtime-cli {WASMTIME_VERSION} into {} (cargo install; this takes a while)",
            prefix.display()
        ));
        crate::run(
            Command::new("cargo")
                .args([
                    "install",
                    "wasmtime-cli",
                    "--locked",
                    "--version",
                    WASMTIME_VERSION,
                    "--root",
                ])
                .arg(&prefix),
        )?;
    }
    Ok(bin)
}

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

/// The peer for js/wasm: Go's Node.js runner.
fn node_peer() -> anyhow::Result<Peer> {
    let runner = crate::goroot()?.join("lib/wasm/go_js_wasm_exec");
    if !runner.is_file() {
        bail!(
            "{} is missing: this Go toolchain has no Node.js runner",
            runner.display()
        );
    }
    let node = output(Command::new("node").arg("--version"))
        .context("Node.js is needed for the comparison: `node` is not on PATH")?;
    Ok(Peer {
        goos: "js",
        name: format!("Node.js {}", node.trim()),
        exec: runner.to_string_lossy().into_owned(),
        path: None,
        reasons: REASONS,
        suffix: "",
    })
}

/// The peer for wasip1: Go's WASI runner with wasmtime's CLI.
fn wasmtime_peer(root: &Path) -> anyhow::Result<Peer> {
    let runner = crate::goroot()?.join("lib/wasm/go_wasip1_wasm_exec");
    if !runner.is_file() {
        bail!(
            "{} is missing: this Go toolchain has no WASI runner",
            runner.display()
        );
    }
    let wasmtime = wasmtime_cli(root)?;
    let version = output(Command::new(&wasmtime).arg("--version"))?;
    Ok(Peer {
        goos: "wasip1",
        name: version.trim().to_string(),
        exec: runner.to_string_lossy().into_owned(),
        path: wasmtime.parent().map(Path::to_path_buf),
        reasons: REASONS_WASIP1,
        suffix: "-wasip1",
    })
}

/// Runs the conformance comparison over `only` (or every package), for
/// js/wasm against Node.js, or for wasip1 against wasmtime's CLI.
pub fn conformance(
    root: &Path,
    only: Vec<String>,
    publish: bool,
    wasip1: bool,
) -> anyhow::Result<()> {
    let packages: Vec<String> = if only.is_empty() {
        PACKAGES.iter().map(|p| p.to_string()).collect()
    } else {
        only
    };
    step("building wasabi");
    let wasabi = crate::build_cli(root, crate::Binaries::Build)?;
    let peer = if wasip1 {
        wasmtime_peer(root)?
    } else {
        node_peer()?
    };
    let go = output(Command::new("go").arg("version"))?;
    step(&format!("{} packages under {}", packages.len(), peer.name));
    let under_peer = go_test(root, peer.goos, &peer.exec, peer.path.as_deref(), &packages)?;
    step(&format!("{} packages under Wasabi", packages.len()));
    let under_wasabi = go_test(
        root,
        peer.goos,
        &format!("{} go-exec", wasabi.display()),
        None,
        &packages,
    )?;

    let reasons: BTreeMap<&str, &str> = peer.reasons.iter().copied().collect();
    let peer_short = if wasip1 { "wasmtime" } else { "Node.js" };
    let mut table = format!("| Package | {peer_short} | Wasabi | Note |\n|---|---|---|---|\n");
    let (mut same, mut unexplained) = (0, Vec::new());
    for pkg in &packages {
        let n = under_peer
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
            (_, Verdict::Pass) => format!("Wasabi passes where {peer_short} fails"),
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
    let peer_pass = under_peer.values().filter(|v| **v == Verdict::Pass).count();
    let wasabi_pass = under_wasabi
        .values()
        .filter(|v| **v == Verdict::Pass)
        .count();
    let summary = format!(
        "{} packages built for {}: {peer_pass} pass under {peer_short}, {wasabi_pass} under \
         Wasabi; {same} have the same result under both.\n\nMachine: {}; {}; {}.\n",
        packages.len(),
        peer.goos,
        std::env::consts::ARCH,
        go.trim(),
        peer.name
    );
    let out_dir = root.join("target/conformance");
    std::fs::create_dir_all(&out_dir)?;
    let results = format!("{summary}\n{table}");
    std::fs::write(out_dir.join(format!("results{}.md", peer.suffix)), &results)?;
    println!("\n{results}");
    if publish {
        let doc = root.join(format!("docs/conformance{}.md", peer.suffix));
        let text = std::fs::read_to_string(&doc).unwrap_or_default();
        let marker = "<!-- results: written by cargo xtask conformance --publish -->";
        let head = text.split(marker).next().unwrap_or_default();
        std::fs::write(&doc, format!("{head}{marker}\n\n{results}"))?;
        println!("wrote {}", doc.display());
    }
    if !unexplained.is_empty() {
        bail!(
            "these packages pass under {peer_short} but fail under Wasabi, with no reason \
             written in xtask/src/conformance.rs: {}",
            unexplained.join(", ")
        );
    }
    Ok(())
}

/// `go test -json` of `packages` for `goos`/wasm with `exec` as the runner
/// (`path` first on its `PATH`): each package's verdict.
fn go_test(
    root: &Path,
    goos: &str,
    exec: &str,
    path: Option<&Path>,
    packages: &[String],
) -> anyhow::Result<BTreeMap<String, Verdict>> {
    let mut cmd = Command::new("go");
    cmd.args(["test", "-count=1", "-json", "-timeout=10m", "-exec", exec])
        .args(packages)
        .current_dir(root.join("target"))
        .env("GOOS", goos)
        .env("GOARCH", "wasm")
        .env("GOWORK", "off");
    if let Some(dir) = path {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(
            std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&old)),
        )?;
        cmd.env("PATH", joined);
    }
    let out = cmd.output().context("could not start go test")?;
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

//! Project automation: `cargo xtask build-examples | demo | ci | bench | conformance | wasi-testsuite | fuzz | oci | pods | soak`.
//!
//! Everything a fresh machine needs beyond Rust and Go is installed from
//! here, idempotently, so `cargo xtask ci` is the whole of CI.

mod bench;
mod conformance;
mod fuzz;
#[cfg(test)]
mod layers;
mod pods;
mod polyglot;
mod soak;
mod wasi_testsuite;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(name = "xtask", about = "Wasabi's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build every program in programs/ for js/wasm (and natively, for
    /// comparison) into target/programs/, skipping those up to date.
    BuildExamples,
    /// Build what the demo needs, then run the example programs under Wasabi.
    Demo,
    /// Install what the tests need, build the programs, then run formatting
    /// checks, linters and every test.
    Ci,
    /// Compare Wasabi with Node.js and native Go (writes target/bench/results.json,
    /// results.md and chart.svg), then run the criterion benches.
    Bench {
        /// Few repetitions on a debug build: a smoke test, not a measurement.
        #[arg(long, conflicts_with = "publish")]
        quick: bool,
        /// Also write the results into docs/performance.md and docs/performance.svg.
        #[arg(long)]
        publish: bool,
    },
    /// Run standard-library package tests under Node.js and under Wasabi, and
    /// write the comparison (target/conformance/results.md); with --wasip1,
    /// built for wasip1 under wasmtime's CLI and under Wasabi.
    Conformance {
        /// Also write the table into docs/conformance.md
        /// (docs/conformance-wasip1.md with --wasip1).
        #[arg(long)]
        publish: bool,
        /// Build the tests for GOOS=wasip1 and compare with wasmtime's CLI
        /// (installed under target/tools when missing: a long build).
        #[arg(long)]
        wasip1: bool,
        /// Only these packages (default: the whole list in xtask/src/conformance.rs).
        #[arg(value_name = "PACKAGE")]
        packages: Vec<String>,
    },
    /// Run the official WASI test suite's preview-1 tests (Rust, C,
    /// AssemblyScript; tests/wasi-testsuite, or $WASI_TESTSUITE) under
    /// `wasabi run` and write the table (target/wasi-testsuite/results.md).
    WasiTestsuite {
        /// Also write the table into docs/wasi-conformance.md.
        #[arg(long)]
        publish: bool,
    },
    /// Fuzz Wasabi's hostile-input surfaces (the gojs imports of a real
    /// instance, the manifest, the address and mount parsers, guest paths,
    /// module loading), each target for a set time; crashes are kept in
    /// fuzz/crashes/ and replayed by the tests.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Only these targets (default: all; `cargo run -p wasabi-fuzz -- list`).
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
    },
    /// Build an OCI image of a WebAssembly module without Docker: an archive
    /// that `ctr images import` accepts, for containerd's runtime
    /// io.containerd.wasabi.v1 (docs/kubernetes.md).
    Oci {
        /// The module (Go js/wasm or a WASI command).
        module: PathBuf,
        /// The image's name, e.g. `hello` (tagged `:latest`) or
        /// `registry.example.com/team/app:v1`.
        #[arg(long)]
        name: String,
        /// The archive to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Grants and limits for the container: a wasabi.toml put at the
        /// image's root (the fields of a manifest's [[tenant]] table).
        #[arg(long, value_name = "WASABI_TOML")]
        config: Option<PathBuf>,
        /// Leave out the module's own `application/wasm` layer, which lets
        /// the shim compile an image once per node but which containerd
        /// before 1.6.25 and 1.7.7 (Debian 12's 1.6.20 among them) cannot
        /// unpack; the module is still in the image's filesystem.
        #[arg(long)]
        no_wasm_layer: bool,
        /// Arguments for the module, after its name.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// What a pod costs through containerd and Wasabi's shim (start time,
    /// memory), against a tenant of `wasabi serve`, in one run (needs root;
    /// `cargo xtask ci` installs the containerd releases it uses).
    Pods {
        /// Pods (and tenants) to start.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Also write the table into docs/performance.md.
        #[arg(long)]
        publish: bool,
    },
    /// Soak Wasabi under load and faults: 100 tenants under `wasabi serve`
    /// (some crashing, some over their memory limit) taking requests from wrk
    /// while clients reset connections, then 10,000 tenant start/stop
    /// cycles; reports lost requests, panics, descriptors and memory
    /// (target/soak/results.md). Takes minutes; not part of CI.
    Soak {
        /// Requests to send the healthy tenants in all.
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
        /// Tenant start/stop cycles.
        #[arg(long, default_value_t = 10_000)]
        cycles: u64,
        /// Also write the figures into docs/reliability.md.
        #[arg(long)]
        publish: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    match Cli::parse().task {
        Task::BuildExamples => build_examples(&root),
        Task::Demo => demo(&root),
        Task::Ci => ci(&root),
        Task::Bench { quick, publish } => bench::bench(&root, quick, publish, Binaries::Build),
        Task::Conformance {
            publish,
            wasip1,
            packages,
        } => conformance::conformance(&root, packages, publish, wasip1),
        Task::WasiTestsuite { publish } => {
            wasi_testsuite::wasi_testsuite(&root, publish, Binaries::Build)
        }
        Task::Fuzz { seconds, targets } => fuzz::fuzz(&root, seconds, targets),
        Task::Pods { count, publish } => pods::pods(&root, count, publish),
        Task::Oci {
            module,
            name,
            output,
            config,
            no_wasm_layer,
            args,
        } => {
            let head = std::fs::read(&module)
                .with_context(|| format!("cannot read {}", module.display()))?;
            if !head.starts_with(b"\0asm") {
                bail!("{} is not a WebAssembly module", module.display());
            }
            let written = wasabi_oci::build_image(&wasabi_oci::ImageSpec {
                module: &module,
                name: &name,
                output: &output,
                config: config.as_deref(),
                args: &args,
                wasm_layer: !no_wasm_layer,
            })?;
            println!(
                "wrote {} (image {}): ctr images import {}",
                written.display(),
                wasabi_oci::reference(&name),
                written.display()
            );
            Ok(())
        }
        Task::Soak {
            requests,
            cycles,
            publish,
        } => soak::soak(&root, requests, cycles, publish),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where Debian's Go 1.19 lives; it builds the legacy-ABI (`go` module) guest.
const LEGACY_GO: &str = "/usr/lib/go-1.19/bin/go";
/// The Debian package that provides it.
const LEGACY_GO_PACKAGE: &str = "golang-1.19-go";

/// Prints a step's title with the minutes and seconds since the first step,
/// so a log shows which step took the time (CI has a half-hour goal).
fn step(title: &str) {
    static FIRST: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let secs = FIRST
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    println!("\n==> [{}:{:02}] {title}", secs / 60, secs % 60);
}

/// Runs a command, failing with its command line if it fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Go toolchain's root, as `go env GOROOT` says.
fn goroot() -> anyhow::Result<PathBuf> {
    let text = output(Command::new("go").args(["env", "GOROOT"]))?;
    Ok(PathBuf::from(text.trim()))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// A Go program under programs/.
struct Program {
    name: String,
    dir: PathBuf,
    /// Uses `syscall/js`, so it has no native build.
    js_only: bool,
}

fn programs(root: &Path) -> anyhow::Result<Vec<Program>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root.join("programs"))? {
        let dir = entry?.path();
        if !dir.join("main.go").is_file() {
            continue;
        }
        let mut js_only = false;
        for file in go_files(&dir)? {
            js_only |= std::fs::read_to_string(&file)?.contains("\"syscall/js\"");
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        found.push(Program { name, dir, js_only });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn go_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "go"))
        .collect();
    files.sort();
    Ok(files)
}

/// A digest of everything a program's build depends on.
fn fingerprint(root: &Path, program: &Program, toolchain: &str) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(toolchain.as_bytes());
    let mut inputs = go_files(&program.dir)?;
    for shared in ["programs/go.mod", "programs/go.sum", "go.work", "go/go.mod"] {
        inputs.push(root.join(shared));
    }
    if root.join("go").is_dir() {
        // The companion module's sources, not its tests.
        inputs.extend(
            go_files(&root.join("go"))?
                .into_iter()
                .filter(|f| !f.to_string_lossy().ends_with("_test.go")),
        );
    }
    for file in inputs {
        if let Ok(bytes) = std::fs::read(&file) {
            h.update(file.to_string_lossy().as_bytes());
            h.update(&bytes);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn go_version(go: &str) -> anyhow::Result<String> {
    output(Command::new(go).arg("version")).with_context(|| {
        format!("the Go toolchain (`{go}`) is needed to build the example programs")
    })
}

/// Programs also built for `GOOS=wasip1` (into target/programs/wasip1/):
/// the ones that do not need syscall/js (the companion module's networking
/// has a wasip1 build on the WasmEdge socket extension).
const WASIP1_PROGRAMS: &[&str] = &[
    "hello",
    "args-env",
    "timers",
    "panic-exit",
    "cpu-bound",
    "fs-probe",
    "tcp-echo",
    "go-net-example",
    "hello-server",
    "preopened-server",
];

fn build_examples(root: &Path) -> anyhow::Result<()> {
    let out = root.join("target/programs");
    std::fs::create_dir_all(out.join("native"))?;
    std::fs::create_dir_all(out.join("wasip1"))?;
    let toolchain = go_version("go")?;
    let mut built = 0;
    for program in programs(root)? {
        let stamp = out.join(format!("{}.stamp", program.name));
        let wasm = out.join(format!("{}.wasm", program.name));
        let native = out.join("native").join(&program.name);
        let wasip1 = WASIP1_PROGRAMS
            .contains(&program.name.as_str())
            .then(|| out.join("wasip1").join(format!("{}.wasm", program.name)));
        let print = fingerprint(root, &program, &toolchain)?;
        let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s == print)
            && wasm.is_file()
            && (program.js_only || native.is_file())
            && wasip1.as_ref().is_none_or(|w| w.is_file());
        if fresh {
            continue;
        }
        println!(
            "building {} (js/wasm{}{})",
            program.name,
            if wasip1.is_some() { ", wasip1" } else { "" },
            if program.js_only { "" } else { " and native" }
        );
        run(Command::new("go")
            .args(["build", "-o"])
            .arg(&wasm)
            .arg(".")
            .current_dir(&program.dir)
            .env("GOOS", "js")
            .env("GOARCH", "wasm"))?;
        if let Some(wasip1) = &wasip1 {
            run(Command::new("go")
                .args(["build", "-o"])
                .arg(wasip1)
                .arg(".")
                .current_dir(&program.dir)
                .env("GOOS", "wasip1")
                .env("GOARCH", "wasm"))?;
        }
        if !program.js_only {
            run(Command::new("go")
                .args(["build", "-o"])
                .arg(&native)
                .arg(".")
                .current_dir(&program.dir)
                .env_remove("GOOS")
                .env_remove("GOARCH"))?;
        }
        std::fs::write(&stamp, print)?;
        built += 1;
    }
    build_legacy_hello(root, &out)?;
    built += polyglot::build(root, &out)?;
    println!(
        "programs: {built} built, the rest up to date, in {}",
        out.display()
    );
    Ok(())
}

/// Builds `hello` with Go 1.19, whose modules import `go` rather than `gojs`.
fn build_legacy_hello(root: &Path, out: &Path) -> anyhow::Result<()> {
    let target = out.join("legacy/hello.wasm");
    if !Path::new(LEGACY_GO).is_file() {
        println!(
            "note: {LEGACY_GO} is missing, so the legacy-ABI hello is not built \
             (`cargo xtask ci` installs {LEGACY_GO_PACKAGE}; its test fails without it)"
        );
        return Ok(());
    }
    let src = out.join("legacy/src");
    std::fs::create_dir_all(&src)?;
    let main = std::fs::read(root.join("programs/hello/main.go"))?;
    let stamp = out.join("legacy/hello.stamp");
    let print: String = Sha256::digest(&main)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if target.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == print) {
        return Ok(());
    }
    println!("building legacy hello with Go 1.19");
    std::fs::write(src.join("main.go"), main)?;
    std::fs::write(src.join("go.mod"), "module hello\n\ngo 1.19\n")?;
    run(Command::new(LEGACY_GO)
        .args(["build", "-o"])
        .arg(&target)
        .arg(".")
        .current_dir(&src)
        .env("GOOS", "js")
        .env("GOARCH", "wasm")
        .env("GOWORK", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod"))?;
    std::fs::write(stamp, print)?;
    Ok(())
}

/// Whether a task builds the binaries it runs, or finds them built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binaries {
    /// Build them (a task run on its own).
    Build,
    /// `ci` built them in `target/debug` ([`build_as_tested`]).
    Built,
}

/// Builds every binary of the workspace in `target/debug` with the feature
/// set of `cargo test --workspace --all-targets`: `--tests` brings in the
/// dev-dependencies, whose features unify into the whole tree. After the
/// tests this compiles only the binaries themselves; a plain `cargo build
/// -p wasabi-cli` would compile most of the tree again with other features
/// (8 of CI's minutes).
fn build_as_tested(root: &Path) -> anyhow::Result<()> {
    run(cargo()
        .args(["build", "--quiet", "--workspace", "--bins", "--tests"])
        .current_dir(root))
}

/// The debug `wasabi` binary, built unless `binaries` says it is.
fn build_cli(root: &Path, binaries: Binaries) -> anyhow::Result<PathBuf> {
    let wasabi = root.join("target/debug/wasabi");
    match binaries {
        Binaries::Build => run(cargo()
            .args(["build", "--quiet", "-p", "wasabi-cli"])
            .current_dir(root))?,
        Binaries::Built if !wasabi.is_file() => bail!("{} was not built", wasabi.display()),
        Binaries::Built => {}
    }
    Ok(wasabi)
}

fn demo(root: &Path) -> anyhow::Result<()> {
    step("building the example programs");
    build_examples(root)?;
    step("building wasabi");
    let wasabi = build_cli(root, Binaries::Build)?;
    let programs = root.join("target/programs");
    let show = |title: &str, args: &[&str]| -> anyhow::Result<()> {
        step(title);
        println!("$ wasabi {}", args.join(" "));
        let status = Command::new(&wasabi)
            .args(args)
            .current_dir(&programs)
            .status()?;
        println!("(exit status {})", status.code().unwrap_or(-1));
        Ok(())
    };
    show(
        "hello: compiled on first use, then cached",
        &["run", "--verbose", "hello.wasm"],
    )?;
    show(
        "hello again: a cache hit, no compilation",
        &["run", "--verbose", "hello.wasm"],
    )?;
    show(
        "arguments and environment: only what you grant",
        &[
            "run",
            "--env",
            "GREETING=hello",
            "args-env.wasm",
            "--",
            "one",
            "two words",
        ],
    )?;
    show(
        "goroutines, timers, select and context",
        &["run", "timers.wasm"],
    )?;
    show(
        "syscall/js: globals, callbacks, typed arrays",
        &["run", "js-interop.wasm"],
    )?;
    show(
        "CPU-bound work: sha256, JSON, sort",
        &["run", "cpu-bound.wasm"],
    )?;
    show(
        "a Go panic exits with 2, as natively",
        &["run", "panic-exit.wasm", "--", "panic"],
    )?;
    show(
        "a memory limit is enforced",
        &["run", "--max-memory", "32MiB", "cpu-bound.wasm"],
    )?;
    show(
        "networking: an HTTP server and 1000 requests to itself, on real sockets",
        &[
            "run",
            "--allow-listen=127.0.0.1:8080",
            "--allow-connect=127.0.0.1:8080",
            "go-net-example.wasm",
        ],
    )?;
    show(
        "the network is closed unless granted",
        &["run", "go-net-example.wasm", "--", "-n", "1"],
    )?;
    // A mounted directory, with a file inside and a link that leads out.
    let files = programs.join("demo-files");
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files)?;
    std::fs::write(files.join("inside.txt"), "inside\n")?;
    std::os::unix::fs::symlink("..", files.join("out-rel"))?;
    std::os::unix::fs::symlink("/etc/passwd", files.join("out-abs"))?;
    show(
        "files: a mounted directory works like a disk",
        &[
            "run",
            "--dir",
            "demo-files:/data",
            "fs-probe.wasm",
            "--",
            "rw",
            "/data",
        ],
    )?;
    show(
        "files: every way out of the mount is refused",
        &[
            "run",
            "--dir",
            "demo-files:/data",
            "fs-probe.wasm",
            "--",
            "escape",
            "/data",
        ],
    )?;
    // A one-shot HTTP server for a program that uses plain net/http.
    let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hello", server.local_addr()?);
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in server.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nX-Test: from the host\r\nContent-Type: text/plain\r\n\
                  Content-Length: 24\r\nConnection: close\r\n\r\nhello from a Rust server",
            );
        }
    });
    let grant = format!(
        "--allow-connect={}",
        url.trim_start_matches("http://").trim_end_matches("/hello")
    );
    show(
        "http.Get unchanged (no Wasabi import): net/http through the host's fetch",
        &["run", &grant, "http-get.wasm", "--", "get", &url],
    )?;
    show(
        "... and denied without the grant",
        &["run", "http-get.wasm", "--", "get", &url],
    )?;
    step("many tenants in one process: the wasabi-core library example");
    println!("$ cargo run -p wasabi-core --example two_tenants");
    run(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "wasabi-core",
            "--example",
            "two_tenants",
        ])
        .current_dir(root))?;
    if programs.join("legacy/hello.wasm").is_file() {
        show(
            "a Go 1.19 module (legacy `go` imports)",
            &["run", "legacy/hello.wasm"],
        )?;
    }
    Ok(())
}

/// Installs the Debian packages `packages` with apt-get (through sudo when
/// not root).
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let sudo = if output(Command::new("id").arg("-u"))?.trim() == "0" {
        vec![]
    } else {
        vec!["sudo"]
    };
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut all: Vec<&str> = sudo.clone();
        all.push("apt-get");
        all.extend_from_slice(args);
        run(Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q"];
    install.extend_from_slice(packages);
    apt(&install)
}

/// Installs what CI needs and is missing; safe to run again.
fn ensure_tools(root: &Path) -> anyhow::Result<()> {
    go_version("go")?;
    if !Path::new(LEGACY_GO).is_file() {
        step(&format!(
            "installing {LEGACY_GO_PACKAGE} (Go 1.19, for the legacy-ABI test)"
        ));
        apt_install(&[LEGACY_GO_PACKAGE])?;
    }
    // Real clients of the HTTP tests.
    if Command::new("curl").arg("--version").output().is_err() {
        step("installing curl (a client of the HTTP tests)");
        apt_install(&["curl"])?;
    }
    // The containerd shim: protoc (containerd's API) and libseccomp with
    // pkg-config (youki's seccomp) to build it, Debian's containerd to test
    // it under.
    let mut missing = Vec::new();
    if Command::new("protoc").arg("--version").output().is_err() {
        missing.push("protobuf-compiler");
    }
    let seccomp = Command::new("pkg-config")
        .args(["--exists", "libseccomp"])
        .status()
        .is_ok_and(|s| s.success());
    if !seccomp {
        missing.extend(["libseccomp-dev", "pkg-config"]);
    }
    if Command::new("containerd")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push("containerd");
    }
    if !missing.is_empty() {
        step(&format!(
            "installing {} (the containerd shim)",
            missing.join(", ")
        ));
        apt_install(&missing)?;
    }
    layered_containerd(root)?;
    for component in ["rustfmt", "clippy"] {
        let have = Command::new("rustup")
            .args(["component", "list", "--installed"])
            .current_dir(root)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(component))
            .unwrap_or(true);
        if !have {
            run(Command::new("rustup")
                .args(["component", "add", component])
                .current_dir(root))?;
        }
    }
    Ok(())
}

/// Builds the containerd that unpacks images with a WebAssembly layer
/// (`wasabi_oci::testbed::LAYERED_CONTAINERD_VERSION`; the shim's
/// compiler-hook test runs under it) from the Go module proxy, unless it is
/// there.
fn layered_containerd(root: &Path) -> anyhow::Result<()> {
    let version = wasabi_oci::testbed::LAYERED_CONTAINERD_VERSION;
    let bin = wasabi_oci::testbed::layered_containerd_bin(root);
    if bin.join("containerd").is_file() && bin.join("ctr").is_file() {
        return Ok(());
    }
    step(&format!(
        "building containerd {version} from the Go module proxy (the shim's layered-image test)"
    ));
    let module = format!("github.com/containerd/containerd@v{version}");
    let downloaded = output(Command::new("go").args(["mod", "download", "-json", &module]))?;
    let info: serde_json::Value =
        serde_json::from_str(&downloaded).context("go mod download printed no JSON")?;
    let dir = info["Dir"]
        .as_str()
        .context("go mod download named no folder")?;
    std::fs::create_dir_all(&bin)?;
    run(Command::new("go")
        .args([
            "build",
            "-tags",
            "no_btrfs no_devmapper no_zfs no_aufs",
            "-o",
        ])
        .arg(format!("{}/", bin.display()))
        .args(["./cmd/containerd", "./cmd/ctr"])
        .env("GOFLAGS", "-mod=mod")
        .current_dir(dir))
}

fn ci(root: &Path) -> anyhow::Result<()> {
    step("installing what is missing");
    ensure_tools(root)?;
    step("cargo fmt --check");
    run(cargo()
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(root))?;
    step("gofmt -l");
    let unformatted = output(
        Command::new("gofmt")
            .args(["-l", "go", "programs"])
            .current_dir(root),
    )?;
    if !unformatted.trim().is_empty() {
        bail!("gofmt would change these files:\n{unformatted}");
    }
    step("go vet");
    for (dir, goos) in [
        ("go", None),
        ("programs", None),
        ("programs", Some("js")),
        ("go", Some("js")),
        ("programs", Some("wasip1")),
        ("go", Some("wasip1")),
    ] {
        let mut cmd = Command::new("go");
        cmd.args(["vet", "./..."]).current_dir(root.join(dir));
        if let Some(goos) = goos {
            cmd.env("GOOS", goos).env("GOARCH", "wasm");
        }
        run(&mut cmd)?;
    }
    step("go test (the companion module, natively)");
    run(Command::new("go")
        .args(["test", "./..."])
        .current_dir(root.join("go")))?;
    step("building the example programs");
    build_examples(root)?;
    step("cargo clippy");
    run(cargo()
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(root))?;
    // `--all-targets` includes the criterion benches, which run each bench
    // once under `cargo test`; doc tests need their own invocation.
    step("cargo test");
    run(cargo()
        .args(["test", "--workspace", "--all-targets"])
        .current_dir(root))?;
    run(cargo()
        .args(["test", "--workspace", "--doc"])
        .current_dir(root))?;
    step("building the binaries the remaining steps run, with the tests' features");
    build_as_tested(root)?;
    step("cargo xtask wasi-testsuite (the official WASI preview-1 tests)");
    wasi_testsuite::wasi_testsuite(root, false, Binaries::Built)?;
    step("cargo xtask fuzz --seconds 15 (every target, briefly)");
    fuzz::fuzz(root, 15, Vec::new())?;
    step("cargo xtask bench --quick (the comparison harness, as a smoke test)");
    bench::bench(root, true, false, Binaries::Built)?;
    println!("\nci: all checks passed");
    Ok(())
}

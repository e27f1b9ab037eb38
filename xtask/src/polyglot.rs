//! The WASI guests in other languages than Go, built here from source:
//! `programs/c/probe.c` (clang and wasi-libc), `programs/rust/probe.rs`
//! (Debian's rustc with its wasm32-wasi standard library; the rustup
//! toolchain cannot add targets on this machine) and
//! `programs/assemblyscript` (the AssemblyScript compiler and its WASI shim
//! from npm, versions pinned in its package-lock.json). The C and Rust ones
//! are also built natively, to compare. Output: `target/programs/wasi/`
//! and `target/programs/native/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::{apt_install, run, step};

/// Debian's rustc, which has the wasm32-wasi standard library when
/// `libstd-rust-dev-wasm32` is installed.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";

/// The Debian packages the builds need.
const PACKAGES: &[&str] = &[
    "clang",
    "lld",
    "wasi-libc",
    "libclang-rt-14-dev-wasm32",
    "rustc",
    "libstd-rust-dev-wasm32",
];

/// Whether Debian package `package` is installed.
fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Installs the Debian packages the builds need and lack; safe to run
/// again.
pub fn ensure_tools() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    // npm may come with a Node.js that is not Debian's (NodeSource's has
    // its own); Debian's is needed only when there is none.
    if Command::new("npm").arg("--version").output().is_err() {
        missing.push("npm");
    }
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing {} (to build the C, Rust and AssemblyScript guests)",
        missing.join(", ")
    ));
    apt_install(&missing)
}

/// Whether `out` is missing or older than `source` (a file or the files of
/// a folder).
fn stale(out: &Path, sources: &[PathBuf]) -> bool {
    let Ok(built) = std::fs::metadata(out).and_then(|m| m.modified()) else {
        return true;
    };
    sources.iter().any(|s| {
        std::fs::metadata(s)
            .and_then(|m| m.modified())
            .is_ok_and(|changed| changed > built)
    })
}

/// Builds the guests that are missing or older than their source; how
/// many it built.
pub fn build(root: &Path, out: &Path) -> anyhow::Result<usize> {
    ensure_tools()?;
    std::fs::create_dir_all(out.join("wasi"))?;
    std::fs::create_dir_all(out.join("native"))?;
    let mut built = 0;

    let c = root.join("programs/c/probe.c");
    let (wasm, native) = (out.join("wasi/c-probe.wasm"), out.join("native/c-probe"));
    if stale(&wasm, std::slice::from_ref(&c)) || stale(&native, std::slice::from_ref(&c)) {
        println!("building c-probe (wasm32-wasi and native, clang)");
        let flags = ["-O2", "-Wall", "-Wextra", "-Werror"];
        run(Command::new("clang")
            .arg("--target=wasm32-wasi")
            .args(flags)
            .arg(&c)
            .arg("-o")
            .arg(&wasm))?;
        run(Command::new("clang")
            .args(flags)
            .arg(&c)
            .arg("-o")
            .arg(&native))?;
        built += 1;
    }

    let rust = root.join("programs/rust/probe.rs");
    let (wasm, native) = (
        out.join("wasi/rust-probe.wasm"),
        out.join("native/rust-probe"),
    );
    if stale(&wasm, std::slice::from_ref(&rust)) || stale(&native, std::slice::from_ref(&rust)) {
        println!("building rust-probe (wasm32-wasi and native, Debian's rustc)");
        let flags = ["--edition", "2021", "-O", "-D", "warnings"];
        run(Command::new(DEBIAN_RUSTC)
            .args(flags)
            .args(["--target", "wasm32-wasi"])
            .arg(&rust)
            .arg("-o")
            .arg(&wasm))?;
        run(Command::new(DEBIAN_RUSTC)
            .args(flags)
            .arg(&rust)
            .arg("-o")
            .arg(&native))?;
        built += 1;
    }

    let project = root.join("programs/assemblyscript");
    let sources = [
        project.join("assembly/index.ts"),
        project.join("package-lock.json"),
    ];
    let wasm = out.join("wasi/as-probe.wasm");
    if stale(&wasm, &sources) {
        println!("building as-probe (AssemblyScript, WASI shim)");
        if !project.join("node_modules/.bin/asc").exists() {
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&project))
            .context("installing the AssemblyScript compiler from npm")?;
        }
        run(Command::new(project.join("node_modules/.bin/asc"))
            .arg("assembly/index.ts")
            .args([
                "--config",
                "node_modules/@assemblyscript/wasi-shim/asconfig.json",
                "--optimize",
                "--outFile",
            ])
            .arg(&wasm)
            .current_dir(&project))?;
        built += 1;
    }
    Ok(built)
}

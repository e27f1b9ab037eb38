//! `cargo xtask wasi-testsuite`: the official WASI test suite's preview-1
//! tests (`tests/wasi-testsuite/`, prebuilt: Rust, C and AssemblyScript;
//! its README says where they come from) under `wasabi run`, as the suite's specification says a
//! runner reads them: every `*.wasm` of a folder is a test; `NAME.json`
//! beside it gives its `args`, `env`, `root` (a directory of the folder,
//! preopened at `/`, on a fresh copy each run), the expected `exit_code`
//! (default 0) and, when given, the exact `stdout` and `stderr` (the
//! suite's doc/specification.md: "if a `stdout` field is provided, check
//! that the bytes printed to `stdout` match it").
//!
//! Writes `target/wasi-testsuite/results.md`; `--publish` also
//! `docs/wasi-conformance.md`. A test that does not pass must be listed in
//! [`REASONS`] with why, and a listed test that passes must come off the
//! list: either way the task fails, so the table stays true.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{Binaries, step};

/// Tests that do not pass under Wasabi, with why (folder/name).
const REASONS: &[(&str, &str)] = &[];

/// The folders of the suite, in the order of the table.
const FOLDERS: &[(&str, &str)] = &[
    ("rust", "Rust"),
    ("c", "C"),
    ("assemblyscript", "AssemblyScript"),
];

/// How long one test may run.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One test's spec, as its JSON gives it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Spec {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    root: Option<String>,
    dirs: Vec<String>,
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// Where the suite is: `WASI_TESTSUITE`, else the copy in this repository.
fn suite_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("WASI_TESTSUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/wasi-testsuite"));
    if !dir.is_dir() {
        bail!(
            "the WASI test suite is not at {} (set WASI_TESTSUITE to its folder)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Runs the suite and writes the table.
pub fn wasi_testsuite(root: &Path, publish: bool, binaries: Binaries) -> anyhow::Result<()> {
    let suite = suite_dir(root)?;
    step("building wasabi");
    let wasabi = crate::build_cli(root, binaries)?;
    let out = root.join("target/wasi-testsuite");
    let cache = out.join("cache");
    std::fs::create_dir_all(&cache)?;
    let reasons: BTreeMap<&str, &str> = REASONS.iter().copied().collect();
    let mut table = String::from("| Suite | Test | Result | Note |\n|---|---|---|---|\n");
    let (mut passed, mut total) = (0, 0);
    let mut problems = Vec::new();
    for (folder, language) in FOLDERS {
        let dir = suite.join(folder).join("wasm32-wasip1");
        let mut tests: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        tests.sort();
        step(&format!("{} {language} tests", tests.len()));
        for test in tests {
            let name = test
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key = format!("{folder}/{name}");
            total += 1;
            let result = run_test(&wasabi, &cache, &out, &test);
            let reason = reasons.get(key.as_str()).copied();
            let (cell, note) = match (&result, reason) {
                (Ok(()), None) => {
                    passed += 1;
                    ("pass", String::new())
                }
                (Ok(()), Some(_)) => {
                    passed += 1;
                    problems.push(format!("{key} passes: take it off REASONS"));
                    ("pass", String::new())
                }
                (Err(why), Some(reason)) => {
                    eprintln!("{key}: {why}");
                    ("**fail**", reason.to_string())
                }
                (Err(why), None) => {
                    problems.push(format!("{key}: {why}"));
                    ("**fail**", format!("unexplained: {why}"))
                }
            };
            println!("{cell:>10}  {key}");
            table.push_str(&format!(
                "| {language} | `{name}` | {cell} | {} |\n",
                note.replace('|', "\\|").replace('\n', " ")
            ));
        }
    }
    let summary = format!("{passed} of {total} preview-1 tests pass under Wasabi.");
    let text = format!(
        "{summary}\n\n{table}\nThe suite: the official WASI test suite \
         (github.com/WebAssembly/wasi-testsuite), its prebuilt preview-1 tests. \
         Reproduce with `cargo xtask wasi-testsuite`.\n"
    );
    std::fs::write(out.join("results.md"), &text)?;
    println!("\n{summary} (target/wasi-testsuite/results.md)");
    if publish {
        let doc = format!(
            "# WASI preview 1: the official test suite under Wasabi\n\n\
             Wasabi runs WASI preview-1 commands on wasmtime-wasi's implementation of \
             `wasi_snapshot_preview1`. Every preview-1 test of the official suite \
             (Rust, C and AssemblyScript, prebuilt) runs under `wasabi run` with the \
             arguments, environment and preopened directory its spec gives, on a fresh \
             copy of that directory, and must exit with the expected code and print the \
             expected output.\n\n{text}"
        );
        std::fs::write(root.join("docs/wasi-conformance.md"), doc)?;
        println!("wrote docs/wasi-conformance.md");
    }
    if !problems.is_empty() {
        bail!("the table is not true yet:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// Runs one test as its spec says: `Err` says how it failed.
fn run_test(wasabi: &Path, cache: &Path, out: &Path, test: &Path) -> Result<(), String> {
    let spec_file = test.with_extension("json");
    let spec: Spec = match std::fs::read_to_string(&spec_file) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("bad spec: {e}"))?,
        Err(_) => Spec::default(),
    };
    let folder = test.parent().ok_or("no folder")?;
    let mut cmd = Command::new(wasabi);
    cmd.arg("run")
        .arg(format!("--cache-dir={}", cache.display()));
    // Each run on a fresh copy of its directories, without the artifacts
    // (`*.cleanup`) an earlier run may have left.
    let scratch = out.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    let mount = |dir: &str, guest: &str, cmd: &mut Command| -> Result<(), String> {
        let copy = scratch.join(dir);
        copy_dir(&folder.join(dir), &copy).map_err(|e| format!("copying {dir}: {e}"))?;
        cmd.arg(format!("--dir={}:{guest}", copy.display()));
        Ok(())
    };
    if let Some(root) = &spec.root {
        mount(root, "/", &mut cmd)?;
    }
    for dir in &spec.dirs {
        mount(dir, dir, &mut cmd)?;
    }
    for (k, v) in &spec.env {
        cmd.arg(format!("--env={k}={v}"));
    }
    cmd.arg(test);
    if !spec.args.is_empty() {
        cmd.arg("--").args(&spec.args);
    }
    let output = run_with_timeout(&mut cmd, TEST_TIMEOUT)?;
    let code = output.status.code();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if code != Some(spec.exit_code) {
        return Err(format!(
            "exit code {code:?}, expected {}; stderr: {}",
            spec.exit_code,
            stderr.trim()
        ));
    }
    if let Some(expected) = spec.stdout.as_deref()
        && stdout != expected
    {
        return Err(format!("stdout {stdout:?}, expected {expected:?}"));
    }
    if let Some(expected) = spec.stderr.as_deref()
        && stderr != expected
    {
        return Err(format!("stderr {stderr:?}, expected {expected:?}"));
    }
    Ok(())
}

/// Runs `cmd`, killing it after `limit`.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Result<std::process::Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start wasabi: {e}"))?;
    let id = child.id();
    let started = Instant::now();
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match wait.recv_timeout(limit) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            Err(format!("still running after {:?}", started.elapsed()))
        }
    }
}

/// Copies the directory `from` to `to` (files, directories and symbolic
/// links, which the suite's trees hold), leaving out `*.cleanup`.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "cleanup") {
            continue;
        }
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&path)?, &target)?;
        } else if kind.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}

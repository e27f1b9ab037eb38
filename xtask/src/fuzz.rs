//! `cargo xtask fuzz`: runs every fuzz target of `fuzz/` (the `wasabi-fuzz`
//! crate) for a set time each. A target that panics fails the task with
//! the saved input; one that kills the process outright (a stack overflow,
//! an abort) has its last input saved here from `target/fuzz/`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::cargo;

/// The targets, as `wasabi-fuzz list` names them.
const TARGETS: &[&str] = &[
    "gojs-imports",
    "manifest",
    "parsers",
    "guest-path",
    "module",
    "wasi-imports",
];

/// Runs `targets` (all when empty) for `seconds` each.
pub fn fuzz(root: &Path, seconds: u64, targets: Vec<String>) -> anyhow::Result<()> {
    let targets: Vec<String> = if targets.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        targets
    };
    crate::run(
        cargo()
            .args(["build", "-q", "-p", "wasabi-fuzz"])
            .current_dir(root),
    )?;
    let binary = root.join("target/debug/wasabi-fuzz");
    let mut failed = Vec::new();
    for target in &targets {
        let status = Command::new(&binary)
            .args(["run", target, "--seconds", &seconds.to_string()])
            .current_dir(root)
            .status()
            .with_context(|| format!("could not start {}", binary.display()))?;
        if status.success() {
            continue;
        }
        // A panic was saved by the fuzzer; a dead process left its input.
        let current = root.join("target/fuzz").join(format!("{target}.current"));
        if status.code().is_none() && current.is_file() {
            let dir = root.join("fuzz/crashes").join(target);
            std::fs::create_dir_all(&dir)?;
            let kept = dir.join(format!("killed-{}", std::process::id()));
            std::fs::copy(&current, &kept)?;
            eprintln!(
                "{target}: the process died ({status}); its last input is in {}",
                kept.display()
            );
        }
        failed.push(target.clone());
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (each crash is in fuzz/crashes/: fix it, keep the file \
             as a regression test)",
            failed.join(", ")
        );
    }
    Ok(())
}

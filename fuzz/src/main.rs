//! `wasabi-fuzz`: runs a fuzz target for a while, or replays inputs.
//!
//! ```text
//! wasabi-fuzz list
//! wasabi-fuzz run TARGET [--seconds N] [--seed S]
//! wasabi-fuzz replay TARGET FILE...
//! ```
//!
//! `run` mutates the inputs of `fuzz/corpus/TARGET/` (and the mutants it
//! made lately) and runs each; an input that panics is saved in
//! `fuzz/crashes/TARGET/` and the run fails. Before each input runs it is
//! written to `target/fuzz/TARGET.current`, so one that aborts the process
//! (a stack overflow, an abort) is not lost: `cargo xtask fuzz` saves it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasabi_fuzz::mutate::{Rng, mutate};
use wasabi_fuzz::{TARGETS, Target, target};

/// Longest input the mutator makes.
const MAX_LEN: usize = 4096;
/// Recent mutants kept to mutate further.
const RECENT: usize = 256;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn corpus(target: &Target) -> anyhow::Result<Vec<Vec<u8>>> {
    let dir = root().join("corpus").join(target.name);
    let mut inputs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            inputs.push(std::fs::read(&path).with_context(|| path.display().to_string())?);
        }
    }
    if inputs.is_empty() {
        inputs.push(Vec::new());
    }
    Ok(inputs)
}

/// Runs one input; `Err` holds the panic's message.
fn attempt(target: &Target, input: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| (target.run)(input)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

fn save_crash(target: &Target, input: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = root().join("crashes").join(target.name);
    std::fs::create_dir_all(&dir)?;
    let name: String = Sha256::digest(input)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, input)?;
    Ok(path)
}

fn run(target: &Target, seconds: u64, seed: u64) -> anyhow::Result<()> {
    let seeds = corpus(target)?;
    let current = root()
        .join("../target/fuzz")
        .join(format!("{}.current", target.name));
    std::fs::create_dir_all(current.parent().expect("a folder"))?;
    let mut rng = Rng::new(seed);
    let mut recent: Vec<Vec<u8>> = Vec::new();
    // Quiet: a panic is reported once, with its input.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut runs: u64 = 0;
    // The corpus itself first, as it is.
    let mut queue: Vec<Vec<u8>> = seeds.clone();
    while Instant::now() < deadline {
        let input = queue.pop().unwrap_or_else(|| {
            let base = if !recent.is_empty() && rng.below(2) == 0 {
                &recent[rng.below(recent.len())]
            } else {
                &seeds[rng.below(seeds.len())]
            };
            let other = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, base, other, target.dictionary, MAX_LEN)
        });
        std::fs::write(&current, &input)?;
        runs += 1;
        if let Err(message) = attempt(target, &input) {
            let path = save_crash(target, &input)?;
            bail!(
                "{}: the input in {} panics: {message}",
                target.name,
                path.display()
            );
        }
        if recent.len() < RECENT {
            recent.push(input);
        } else {
            let i = rng.below(RECENT);
            recent[i] = input;
        }
    }
    let _ = std::fs::remove_file(&current);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: {runs} inputs in {secs:.0} s ({:.0}/s), no panic (seed {seed})",
        target.name,
        runs as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<&String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    match args.first().map(String::as_str) {
        Some("list") | None => {
            for t in TARGETS {
                println!("{:14} {}", t.name, t.about);
            }
            Ok(())
        }
        Some("run") => {
            let name = args.get(1).context("run TARGET")?;
            let target = target(name).with_context(|| format!("no target `{name}`"))?;
            let seconds = flag("--seconds").map_or(Ok(60), |s| s.parse())?;
            let seed = match flag("--seed") {
                Some(s) => s.parse()?,
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_nanos() as u64,
            };
            run(target, seconds, seed)
        }
        Some("replay") => {
            let name = args.get(1).context("replay TARGET FILE...")?;
            let target = target(name).with_context(|| format!("no target `{name}`"))?;
            for file in &args[2..] {
                let input = std::fs::read(file).with_context(|| file.clone())?;
                attempt(target, &input).map_err(|m| anyhow::anyhow!("{file}: {m}"))?;
                println!("{file}: no panic");
            }
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`: list, run or replay"),
    }
}

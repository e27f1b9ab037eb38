//! `wasabi cache`: what the compiled-module cache holds, and keeping it in
//! hand; and `wasabi cache add`, which a run starts detached to compile a
//! new module with Cranelift while the program runs on Winch code.

use std::io::{Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use wasabi_core::cache::DEFAULT_MAX_BYTES;
use wasabi_core::{
    BackgroundCompile, CompileRequest, Filled, Runtime, RuntimeConfig, Tiering, fields, format_size,
};

pub(crate) const HELP: &str = "\
The cache holds machine code compiled from modules, keyed by the module's bytes, the \
compiler (winch or cranelift) and this build of Wasabi, and sealed with this \
installation's key. A run of a module it does not hold starts on Winch code at once \
and compiles Cranelift code in the background (`wasabi cache add`, detached, at low \
priority); every later run loads that. Past its size cap (--cache-max-size or \
WASABI_CACHE_MAX_SIZE, default 1GiB) the least recently used entries are removed.

Examples:
  wasabi cache list
  wasabi cache add app.wasm          # compile ahead, e.g. while building an image
  wasabi cache prune --max-size 256MiB
  wasabi cache clear";

#[derive(Subcommand)]
pub(crate) enum CacheCommand {
    /// List the entries, most recently used first: module, compiler, size, last use.
    List(Where),
    /// Remove least recently used entries until the cache fits its cap.
    Prune {
        #[command(flatten)]
        place: Where,
        /// The size to prune to [default: --cache-max-size].
        #[arg(long, value_name = "SIZE", value_parser = fields::size)]
        max_size: Option<u64>,
    },
    /// Remove every entry.
    Clear(Where),
    /// Compile modules with Cranelift into the cache (a module it holds is skipped).
    Add {
        #[command(flatten)]
        place: Where,
        /// The modules (.wasm); `-` reads one from standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// The name the listing shows for a module read from standard input.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Run as a run's background compile: detached from the terminal, at low
        /// priority, silent.
        #[arg(long, hide = true)]
        background: bool,
    },
}

/// Which cache.
#[derive(Args)]
pub(crate) struct Where {
    /// Folder of the cache [default: $XDG_CACHE_HOME/wasabi or ~/.cache/wasabi].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Size cap of the cache [default: 1GiB].
    #[arg(long, value_name = "SIZE", env = "WASABI_CACHE_MAX_SIZE", value_parser = fields::size)]
    cache_max_size: Option<u64>,

    /// Report what is done.
    #[arg(short, long)]
    verbose: bool,
}

impl Where {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        self.cache_dir
            .clone()
            .or_else(wasabi_core::cache::default_cache_dir)
            .context("no cache folder: set --cache-dir, XDG_CACHE_HOME or HOME")
    }

    /// A runtime over this cache (compiling only with Cranelift).
    fn runtime(&self) -> anyhow::Result<Runtime> {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(self.dir()?),
            cache_max_bytes: self.cache_max_size,
            tiering: Tiering::Cranelift,
            background: BackgroundCompile::Off,
            ..RuntimeConfig::default()
        })
        .map_err(|e| anyhow::anyhow!("could not start the engine: {e:#}"))?;
        if runtime.cache().is_none() {
            bail!("the compiled-module cache is off: no installation key (run with --verbose)");
        }
        Ok(runtime)
    }
}

pub(crate) fn run(command: CacheCommand) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::List(place) => {
            crate::init_logging(place.verbose);
            list(&place)
        }
        CacheCommand::Prune { place, max_size } => {
            crate::init_logging(place.verbose);
            let runtime = place.runtime()?;
            let cache = runtime.cache().context("cache")?;
            let cap = max_size.unwrap_or(cache.max_bytes());
            let pruned = cache
                .prune(cap)
                .with_context(|| format!("pruning {}", cache.dir().display()))?;
            println!(
                "removed {} entries, {} freed; the cache fits in {}",
                pruned.entries,
                format_size(pruned.bytes),
                format_size(cap)
            );
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Clear(place) => {
            crate::init_logging(place.verbose);
            let runtime = place.runtime()?;
            let cache = runtime.cache().context("cache")?;
            let pruned = cache
                .clear()
                .with_context(|| format!("clearing {}", cache.dir().display()))?;
            println!(
                "removed {} entries, {} freed",
                pruned.entries,
                format_size(pruned.bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Add {
            place,
            files,
            name,
            background,
        } => {
            if background {
                detach();
            } else {
                crate::init_logging(place.verbose);
            }
            add(&place, &files, name.as_deref(), background)
        }
    }
}

fn list(place: &Where) -> anyhow::Result<ExitCode> {
    let dir = place.dir()?;
    // Listing needs no key: it reads the entries' headers, and loads none.
    let entries =
        wasabi_core::cache::list(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    let cap = place.cache_max_size.unwrap_or(DEFAULT_MAX_BYTES);
    println!(
        "{}: {} entries, {} of {}",
        dir.display(),
        entries.len(),
        format_size(total),
        format_size(cap)
    );
    if entries.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12}  {:<9}  {:>9}  {:>10}  MODULE",
        "KEY", "COMPILER", "SIZE", "LAST USE"
    );
    let now = SystemTime::now();
    for entry in entries {
        println!(
            "{:<12}  {:<9}  {:>9}  {:>10}  {}",
            &entry.key[..12],
            entry.tier.map_or("?", |t| t.name()),
            format_size(entry.bytes),
            ago(now, entry.last_used),
            entry.module.escape_debug()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `when`, as time before `now`: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn ago(now: SystemTime, when: SystemTime) -> String {
    let secs = now.duration_since(when).map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

fn add(
    place: &Where,
    files: &[PathBuf],
    name: Option<&str>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let runtime = place.runtime()?;
    for file in files {
        let (wasm, shown) = if file.as_os_str() == "-" {
            let mut wasm = Vec::new();
            std::io::stdin()
                .read_to_end(&mut wasm)
                .context("reading the module from standard input")?;
            (wasm, name.unwrap_or("stdin").to_string())
        } else {
            let wasm = std::fs::read(file).with_context(|| file.display().to_string())?;
            let shown = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (wasm, shown)
        };
        if !wasm.starts_with(b"\0asm") {
            bail!("{}: not a WebAssembly module", file.display());
        }
        let filled = runtime.fill_cache(&wasm, &shown, quiet)?;
        if !quiet {
            match filled {
                Filled::AlreadyCached => println!("{shown}: already in the cache"),
                Filled::InProgress => println!("{shown}: another process is compiling it"),
                Filled::Busy => println!("{shown}: skipped, the cache's compilers are busy"),
                Filled::Compiled(took) => {
                    println!("{shown}: compiled with cranelift in {took:.2?}")
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A background compile leaves the terminal's foreground process group
/// (Ctrl-C on the run does not stop it; it finishes or not, and never
/// leaves half an entry) and runs only on CPU time nobody else wants.
///
/// Why `SCHED_IDLE` rather than a nice value: with the kernel's
/// autogroups, nice only orders threads of one session, and a compile at
/// nice 10 still took a third of the run's CPU (a cold `hello` went from
/// 0.13 s to 0.2–0.5 s); a `SCHED_IDLE` thread runs only when a core would
/// otherwise idle, such as the second core while a Go program runs on one.
/// It stays in the run's session for the same reason: `setsid` would give
/// it an autogroup of its own, which the scheduler shares the CPU with
/// evenly.
fn detach() {
    // SAFETY: these calls take no pointers but the parameter block, which
    // lives across the call; each failure leaves things as they were,
    // which only costs speed.
    unsafe {
        libc::setpgid(0, 0);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        let param = libc::sched_param { sched_priority: 0 };
        // Threads started from here on (the compiler's) inherit it.
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// Starts `wasabi cache add --background` for `request`, detached: the
/// module's bytes go through an in-memory file on its standard input (the
/// `.wasm` may be gone by the time it reads: `go test` deletes its test
/// binaries), its output goes nowhere, and nobody waits for it.
pub(crate) fn cache_add_detached(request: &CompileRequest<'_>) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let wasm = memory_file(request.wasm)?;
    std::process::Command::new(exe)
        .args(["cache", "add", "--background", "--name", request.name])
        .arg("--cache-dir")
        .arg(request.cache_dir)
        .arg("-")
        .stdin(Stdio::from(wasm))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
}

/// An anonymous in-memory file holding `bytes`, positioned at its start.
fn memory_file(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated literal; the result is checked.
    let fd = unsafe { libc::memfd_create(c"wasabi-module".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file.into())
}

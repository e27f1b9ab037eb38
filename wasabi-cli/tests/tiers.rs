//! Two compiler tiers and the cache that manages itself: a new module
//! starts on Winch code while Cranelift's fills the cache; every guarantee
//! holds on Winch code as on Cranelift's; the cache keeps under its cap,
//! survives concurrent writers, and never serves one tier's code as the
//! other's.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

/// `wasabi run --verbose --cache-dir <cache> [flags] <wasm>`.
fn run_cached(cache: &Path, flags: &[&str], wasm: &Path) -> Output {
    let mut cmd = wasabi();
    cmd.args(["run", "--verbose", "--cache-dir"])
        .arg(cache)
        .args(flags)
        .arg(wasm);
    finish(cmd)
}

/// `wasabi cache <args> --cache-dir <cache>`.
fn cache_command(cache: &Path, args: &[&str]) -> Output {
    let mut cmd = wasabi();
    cmd.arg("cache").args(args).arg("--cache-dir").arg(cache);
    finish(cmd)
}

/// The lines of `wasabi cache list` after its heading: (key prefix,
/// compiler, module).
fn listed(cache: &Path) -> Vec<(String, String, String)> {
    let out = cache_command(cache, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .skip(2)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols.last().unwrap().to_string(),
            )
        })
        .collect()
}

/// The entry files of `cache`.
fn entry_files(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(cache)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    files.sort();
    files
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const HELLO: &str = "Hello from Go, running inside Wasabi!\n";

#[test]
fn a_new_module_starts_on_winch_and_every_later_run_loads_cranelift_code() {
    let cache = scratch("tiers-first-run");
    let hello = program("hello.wasm");
    let first = run_cached(&cache, &[], &hello);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(stdout(&first), HELLO);
    let log = stderr(&first);
    assert!(log.contains("compiled with winch"), "{log}");
    assert!(
        log.contains("compiling with cranelift in the background"),
        "{log}"
    );
    // The run did not wait for Cranelift: its entry comes from the
    // detached `wasabi cache add`, whole or not at all.
    wait_for("the background compile's entry", || {
        listed(&cache)
            .iter()
            .any(|(_, tier, module)| tier == "cranelift" && module == "hello.wasm")
    });
    let second = run_cached(&cache, &[], &hello);
    assert_eq!(stdout(&second), HELLO);
    let log = stderr(&second);
    assert!(
        log.contains("loaded from the compiled-module cache (cranelift code)"),
        "{log}"
    );
    assert!(!log.contains("compiled with"), "{log}");
    // Nothing is left of the compile but its entry.
    wait_for("the background compiler to let go of its locks", || {
        std::fs::read_dir(&cache).unwrap().all(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.ends_with(".cwasm") || name.starts_with("background-")
        })
    });
    assert_eq!(entry_files(&cache).len(), 1);
}

/// Traps with backtraces, the memory limit, the CPU share and a WASI guest,
/// each on Winch code and on Cranelift code.
#[test]
fn winch_code_keeps_every_guarantee_cranelift_code_does() {
    // Cranelift code from the shared cache, so its seconds of compiling
    // do not count against the CPU share measured below.
    let shared = cache_dir();
    warm(&program("spin.wasm"));
    for (tier, cache_flags) in [
        ("winch", vec!["--no-cache"]),
        ("cranelift", vec!["--cache-dir", shared.to_str().unwrap()]),
    ] {
        let flags = [cache_flags, vec!["--tier", tier]].concat();
        let run = |extra: &[&str], wasm: &Path, args: &[&str]| {
            let mut cmd = wasabi();
            cmd.arg("run").args(&flags).args(extra).arg(wasm);
            if !args.is_empty() {
                cmd.arg("--").args(args);
            }
            finish(cmd)
        };
        let out = run(&["--verbose"], &program("hello.wasm"), &[]);
        assert_eq!(stdout(&out), HELLO, "{tier}");
        assert!(
            stderr(&out).contains(&format!("compiled with {tier}"))
                || stderr(&out).contains(&format!("({tier} code)")),
            "{tier}: {}",
            stderr(&out)
        );

        // A Go panic: exit code 2 and Go's own message.
        let out = run(&[], &program("panic-exit.wasm"), &["panic"]);
        assert_eq!(out.status.code(), Some(2), "{tier}: {}", stderr(&out));

        // A wasm trap names the function it happened in.
        let wat = r#"(module
          (import "gojs" "runtime.wasmExit" (func $exit (param i32)))
          (memory (export "mem") 1)
          (func $deep (export "deep") unreachable)
          (func (export "run") (param i32 i32) (call $deep))
          (func (export "resume"))
          (func (export "getsp") (result i32) (i32.const 1024)))"#;
        let trap = scratch(&format!("tiers-trap-{tier}")).join("guest.wasm");
        std::fs::write(&trap, wat::parse_str(wat).unwrap()).unwrap();
        let out = run(&[], &trap, &[]);
        assert_eq!(out.status.code(), Some(134), "{tier}");
        let err = stderr(&out);
        assert!(err.contains("unreachable"), "{tier}: {err}");
        assert!(err.contains("guest backtrace"), "{tier}: {err}");
        assert!(err.contains("deep"), "{tier}: {err}");

        // The memory limit.
        let out = run(&["--max-memory", "32MiB"], &program("cpu-bound.wasm"), &[]);
        assert_eq!(out.status.code(), Some(134), "{tier}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("memory limit exceeded"),
            "{tier}: {}",
            stderr(&out)
        );

        // A WASI command.
        let out = run(&[], &program("wasip1/hello.wasm"), &[]);
        assert_eq!(out.status.code(), Some(0), "{tier}: {}", stderr(&out));
        assert!(stdout(&out).contains("Hello"), "{tier}");

        // Preemption: a spinning guest held to a fifth of a core.
        let mut child = wasabi()
            .arg("run")
            .args(&flags)
            .args(["--max-cpu", "0.2"])
            .arg(program("spin.wasm"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        let used = cpu_time(child.id());
        let _ = child.kill();
        let _ = child.wait();
        // A fifth of 3 s, the burst credit, and startup (compiling).
        assert!(
            used < Duration::from_millis(2000),
            "{tier}: spin used {used:?} of CPU in 3 s under --max-cpu 0.2"
        );
    }
}

#[test]
fn winch_code_runs_in_serve_on_the_pooling_allocator() {
    let dir = scratch("tiers-serve-winch");
    let addr = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.join("manifest.toml"),
        format!(
            "[[tenant]]\nname = \"w\"\nmodule = \"{}\"\nenv = {{ GREETING = \"winch\" }}\n\
             listen = {{ \"127.0.0.1:8080\" = \"{addr}\" }}\n",
            program("hello-server.wasm").display()
        ),
    )
    .unwrap();
    let mut child = wasabi()
        .args([
            "serve",
            "--no-cache",
            "--tier",
            "winch",
            "--max-instances",
            "4",
        ])
        .arg(dir.join("manifest.toml"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = connect(&addr);
    std::io::Write::write_all(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("winch\n"), "{response}");
}

/// In `serve`, a tenant started on Winch code keeps it; its restarts run
/// the Cranelift code the background compile made.
#[test]
fn a_restarted_tenant_in_serve_runs_the_cranelift_code() {
    let dir = scratch("tiers-serve-upgrade");
    let cache = dir.join("cache");
    std::fs::write(
        dir.join("manifest.toml"),
        format!(
            "[[tenant]]\nname = \"again\"\nmodule = \"{}\"\nrestart = \"always\"\n",
            program("hello.wasm").display()
        ),
    )
    .unwrap();
    let log = dir.join("stderr");
    let mut child = wasabi()
        .args(["serve", "--verbose", "--cache-dir"])
        .arg(&cache)
        .arg(dir.join("manifest.toml"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("a restart on cranelift code", || {
        read().contains("a new tenant runs the cranelift code")
    });
    let _ = child.kill();
    let _ = child.wait();
    let text = read();
    assert!(text.contains("compiled with winch"), "{text}");
    assert!(
        listed(&cache)
            .iter()
            .any(|(_, tier, m)| tier == "cranelift" && m == "hello.wasm"),
        "the in-process compile filled the cache"
    );
}

/// An entry of Winch code put where Cranelift code is expected (same key,
/// same seal) is refused and recompiled: the header inside the seal names
/// its tier.
#[test]
fn a_winch_entry_is_never_served_as_cranelift_code() {
    let cache = scratch("tiers-confused");
    let hello = program("hello.wasm");
    let winch = run_cached(&cache, &["--tier", "winch"], &hello);
    assert_eq!(stdout(&winch), HELLO, "{}", stderr(&winch));
    let cranelift = run_cached(&cache, &["--tier", "cranelift"], &hello);
    assert_eq!(stdout(&cranelift), HELLO);
    let entries = listed(&cache);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let file_of = |tier: &str| {
        let (prefix, _, _) = entries.iter().find(|(_, t, _)| t == tier).unwrap();
        entry_files(&cache)
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(prefix.as_str())
            })
            .unwrap()
    };
    let (winch_file, cranelift_file) = (file_of("winch"), file_of("cranelift"));
    std::fs::copy(&winch_file, &cranelift_file).unwrap();
    let out = run_cached(&cache, &["--tier", "cranelift"], &hello);
    assert_eq!(stdout(&out), HELLO);
    let log = stderr(&out);
    assert!(
        log.contains("cache entry refused: it holds winch code, not cranelift code"),
        "{log}"
    );
    assert!(log.contains("compiled with cranelift"), "{log}");
    // And the other way round.
    std::fs::copy(&cranelift_file, &winch_file).unwrap();
    let out = run_cached(&cache, &["--tier", "winch"], &hello);
    assert_eq!(stdout(&out), HELLO);
    assert!(
        stderr(&out).contains("it holds cranelift code, not winch code"),
        "{}",
        stderr(&out)
    );
}

/// Past its cap the cache drops the least recently used entry; `prune`
/// and `clear` do so by hand.
#[test]
fn the_cache_evicts_the_least_recently_used_entries_past_its_cap() {
    let cache = scratch("tiers-evict");
    // Each of these three is about 6 MiB of Cranelift code: two fit.
    let modules = ["hello.wasm", "args-env.wasm", "panic-exit.wasm"];
    let cap = ["--cache-max-size", "13MiB"];
    let add = |name: &str| {
        let mut cmd = wasabi();
        cmd.args(["cache", "add", "--cache-dir"])
            .arg(&cache)
            .args(cap)
            .arg(program(name));
        let out = finish(cmd);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(add(modules[0]).contains("compiled with cranelift"));
    assert!(add(modules[0]).contains("already in the cache"));
    std::thread::sleep(Duration::from_millis(1100));
    add(modules[1]);
    std::thread::sleep(Duration::from_millis(1100));
    // Use the first again: the second is now the least recently used.
    let out = run_cached(
        &cache,
        &["--tier", "cranelift", cap[0], cap[1]],
        &program(modules[0]),
    );
    assert!(stderr(&out).contains("loaded from the compiled-module cache"));
    std::thread::sleep(Duration::from_millis(1100));
    add(modules[2]);
    let names: Vec<String> = listed(&cache).into_iter().map(|(_, _, m)| m).collect();
    assert_eq!(
        names,
        ["panic-exit.wasm", "hello.wasm"],
        "most recent first"
    );

    let out = cache_command(&cache, &["prune", "--max-size", "7MiB"]);
    assert!(
        stdout(&out).contains("removed 1 entries"),
        "{}",
        stdout(&out)
    );
    let names: Vec<String> = listed(&cache).into_iter().map(|(_, _, m)| m).collect();
    assert_eq!(names, ["panic-exit.wasm"]);
    let out = cache_command(&cache, &["clear"]);
    assert!(
        stdout(&out).contains("removed 1 entries"),
        "{}",
        stdout(&out)
    );
    assert!(listed(&cache).is_empty());
    assert!(entry_files(&cache).is_empty());
}

/// Several processes compiling one module into one cache at once leave
/// one sound entry and no temporary files: through the fill lock (`cache
/// add`), and without it (runs that compile before they start).
#[test]
fn concurrent_writers_leave_one_good_entry() {
    let cache = scratch("tiers-concurrent");
    let hello = program("hello.wasm");
    let adders: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = wasabi();
            cmd.args(["cache", "add", "--cache-dir"])
                .arg(&cache)
                .arg(&hello);
            std::thread::spawn(move || finish(cmd))
        })
        .collect();
    let said: Vec<String> = adders
        .into_iter()
        .map(|t| {
            let out = t.join().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            stdout(&out)
        })
        .collect();
    let compiled = said.iter().filter(|s| s.contains("compiled")).count();
    assert!(compiled >= 1, "{said:?}");
    assert_eq!(entry_files(&cache).len(), 1);

    // Runs compiling the same module at once: each writes, one remains.
    std::fs::remove_file(&entry_files(&cache)[0]).unwrap();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let cache = cache.clone();
            let hello = hello.clone();
            std::thread::spawn(move || run_cached(&cache, &["--tier", "cranelift"], &hello))
        })
        .collect();
    for run in runs {
        assert_eq!(stdout(&run.join().unwrap()), HELLO);
    }
    let files: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("background-"))
        .collect();
    assert_eq!(files.len(), 1, "one entry and nothing else: {files:?}");
    let out = run_cached(&cache, &["--tier", "cranelift"], &hello);
    assert!(
        stderr(&out).contains("loaded from the compiled-module cache (cranelift code)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cache_commands_explain_themselves_and_refuse_nonsense() {
    let out = finish({
        let mut cmd = wasabi();
        cmd.args(["cache", "--help"]);
        cmd
    });
    let help = stdout(&out);
    for word in ["list", "prune", "clear", "add", "WASABI_CACHE_MAX_SIZE"] {
        assert!(help.contains(word), "{word} in {help}");
    }
    let cache = scratch("tiers-nonsense");
    let out = cache_command(&cache, &["list"]);
    assert!(stdout(&out).contains("0 entries"), "{}", stdout(&out));
    assert!(stdout(&out).contains("of 1 GiB"), "{}", stdout(&out));
    // The cap from the environment.
    let out = finish({
        let mut cmd = wasabi();
        cmd.env("WASABI_CACHE_MAX_SIZE", "5MiB")
            .args(["cache", "list", "--cache-dir"])
            .arg(&cache);
        cmd
    });
    assert!(stdout(&out).contains("of 5 MiB"), "{}", stdout(&out));
    let out = cache_command(&cache, &["prune", "--max-size", "lots"]);
    assert_ne!(out.status.code(), Some(0));
    let not_wasm = cache.join("x.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let out = cache_command(&cache, &["add", not_wasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a WebAssembly module"),
        "{}",
        stderr(&out)
    );
    let out = finish({
        let mut cmd = wasabi();
        cmd.args(["run", "--tier", "fastest"])
            .arg(program("hello.wasm"));
        cmd
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("use auto, winch or cranelift"),
        "{}",
        stderr(&out)
    );
    // A foreign file in the cache folder is listed as unknown, not loaded.
    std::fs::write(cache.join(format!("{}.cwasm", "ab".repeat(32))), b"junk").unwrap();
    let entries = listed(&cache);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, "?");
}

/// Things planted in the cache folder under the names Wasabi uses: a FIFO
/// where an entry belongs (opening it would block the run forever) and a
/// symbolic link where a fill lock belongs (following it would create or
/// lock a file elsewhere). Neither hangs or escapes; the module compiles.
#[test]
fn planted_fifos_and_links_in_the_cache_folder_neither_hang_nor_lead_out() {
    let cache = scratch("tiers-planted");
    let hello = program("hello.wasm");
    let out = run_cached(&cache, &["--tier", "cranelift"], &hello);
    assert_eq!(stdout(&out), HELLO);
    let entry = entry_files(&cache).remove(0);
    let key = entry.file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(&entry).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&entry)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run_cached(&cache, &["--tier", "cranelift"], &hello);
    assert_eq!(stdout(&out), HELLO, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );

    // A link where `cache add` takes its fill lock.
    std::fs::remove_file(&entry).unwrap();
    let elsewhere = scratch("tiers-planted-target").join("created-by-wasabi");
    std::os::unix::fs::symlink(&elsewhere, cache.join(format!("{key}.lock"))).unwrap();
    let mut cmd = wasabi();
    cmd.args(["cache", "add", "--cache-dir"])
        .arg(&cache)
        .arg(&hello);
    let out = finish(cmd);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!elsewhere.exists(), "the lock followed a planted link");
}

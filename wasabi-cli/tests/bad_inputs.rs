//! Bad files, flags and caches: each gets a clear error that names the file
//! and the reason, and a non-zero exit. Also the cache and AOT paths.

mod support;

use std::path::Path;

use support::*;

fn assert_refused(out: &std::process::Output, path: &Path, reason: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("wasabi: "), "{err}");
    assert!(
        err.contains(&path.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}

#[test]
fn a_missing_file_is_named() {
    let path = scratch("missing").join("nope.wasm");
    assert_refused(&run_no_cache(&path), &path, "No such file or directory");
}

#[test]
fn files_that_are_not_wasm_are_refused() {
    let dir = scratch("not-wasm");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello, I am text").unwrap();
    assert_refused(&run_no_cache(&text), &text, "not a WebAssembly file");
    let empty = dir.join("empty.wasm");
    std::fs::write(&empty, "").unwrap();
    assert_refused(&run_no_cache(&empty), &empty, "the file is empty");
    let elf = dir.join("native");
    std::fs::copy(native("hello"), &elf).unwrap();
    assert_refused(&run_no_cache(&elf), &elf, "looks like a native executable");
    let wat = dir.join("module.wat");
    std::fs::write(&wat, "(module)").unwrap();
    assert_refused(&run_no_cache(&wat), &wat, "WebAssembly text");
}

#[test]
fn a_truncated_module_is_called_truncated() {
    let dir = scratch("truncated");
    let bytes = std::fs::read(program("hello.wasm")).unwrap();
    let cut = dir.join("cut.wasm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&run_no_cache(&cut), &cut, "truncated module");
}

#[test]
fn wasm_that_is_no_guest_kind_wasabi_runs_is_refused_with_what_it_is() {
    let dir = scratch("not-a-guest");
    let empty = dir.join("empty-module.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    assert_refused(
        &run_no_cache(&empty),
        &empty,
        "it imports nothing and exports no `_start`",
    );
    let write = |name: &str, wat: &str| {
        let path = dir.join(name);
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        path
    };
    let no_start = write(
        "wasi-no-start.wasm",
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1))"#,
    );
    assert_refused(
        &run_no_cache(&no_start),
        &no_start,
        "a WASI module without `_start`",
    );
    let reactor = write(
        "reactor.wasm",
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1) (func (export "_initialize")))"#,
    );
    assert_refused(&run_no_cache(&reactor), &reactor, "a WASI reactor");
    let other = write(
        "other.wasm",
        r#"(module (import "env" "f" (func)) (func (export "_start")))"#,
    );
    assert_refused(&run_no_cache(&other), &other, "it imports from `env`");
    let component = dir.join("component.wasm");
    std::fs::write(&component, b"\0asm\x0d\0\x01\0").unwrap();
    assert_refused(&run_no_cache(&component), &component, "component");
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0\x02\x05\xff\xff\xff\xff\xff").unwrap();
    let out = run_no_cache(&garbage);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&garbage.display().to_string()));
}

#[test]
fn a_bad_size_flag_is_explained() {
    let mut cmd = wasabi();
    cmd.args(["run", "--max-memory", "lots"])
        .arg(program("hello.wasm"));
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid size `lots`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_explains_the_commands() {
    let mut cmd = wasabi();
    cmd.args(["run", "--help"]);
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for needle in [
        "--env",
        "--max-memory",
        "--cache-dir",
        "--no-cache",
        "--allow-listen",
        "--allow-connect",
        "--allow-net",
        "--max-connections",
        "Exit status",
    ] {
        assert!(help.contains(needle), "run --help mentions {needle}");
    }
    let mut cmd = wasabi();
    cmd.args(["serve", "--help"]);
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for needle in [
        "MANIFEST",
        "--admin",
        "--grace",
        "--log-format",
        "--max-instances",
        "[[tenant]]",
        "restart = \"on-failure\"",
        "SIGHUP",
    ] {
        assert!(help.contains(needle), "serve --help mentions {needle}");
    }
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let cache = scratch("cache-corrupt");
    let run = || run_hello_verbose(&cache);
    assert_eq!(run().status.code(), Some(0));
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1);
    // Damage the entry in place: flip bytes in the middle, keep the size.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&entries[0], &bytes).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cache entry refused: its seal does not match"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "Hello from Go, running inside Wasabi!\n");
    // The entry was rewritten and is sound again.
    assert!(stderr(&run()).contains("loaded from the compiled-module cache"));
    // A truncated entry is caught the same way.
    std::fs::write(&entries[0], &bytes[..100]).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("recompiling"), "{}", stderr(&out));
}

/// An entry planted in the cache folder (another installation's, or
/// wasmtime's own unsealed output under the right name) is never
/// deserialized: its machine code would run outside the sandbox.
#[test]
fn a_planted_cache_entry_is_never_loaded() {
    let cache = scratch("cache-planted");
    assert_eq!(run_hello_verbose(&cache).status.code(), Some(0));
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("one entry");
    // Another installation (another key) using the same folder.
    let stranger = scratch("cache-planted-home");
    let mut cmd = wasabi();
    cmd.env("WASABI_HOME", &stranger)
        .args(["run", "--verbose", "--tier", "cranelift", "--cache-dir"])
        .arg(&cache)
        .arg(program("hello.wasm"));
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its seal does not match"),
        "{}",
        stderr(&out)
    );
    // wasmtime's own artifact, unsealed, put in place of ours.
    let sealed = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &sealed[..sealed.len() - 48]).unwrap();
    let out = run_hello_verbose(&cache);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("carries no seal"), "{}", stderr(&out));
}

#[test]
fn the_default_cache_is_per_user_and_no_cache_writes_nothing() {
    let home = scratch("cache-default");
    let mut cmd = wasabi();
    cmd.env("XDG_CACHE_HOME", &home)
        .args(["run", "--no-cache"])
        .arg(program("hello.wasm"));
    assert_eq!(finish(cmd).status.code(), Some(0));
    assert!(!home.join("wasabi").exists(), "--no-cache wrote a cache");
    let mut cmd = wasabi();
    cmd.env("XDG_CACHE_HOME", &home)
        .args(["run", "--tier", "cranelift"])
        .arg(program("hello.wasm"));
    assert_eq!(finish(cmd).status.code(), Some(0));
    let written = std::fs::read_dir(home.join("wasabi")).unwrap().count();
    assert_eq!(written, 1, "one sealed artifact");
}

/// `wasabi run --allow-precompiled --no-cache FILE`.
fn run_precompiled(path: &Path) -> std::process::Output {
    let mut cmd = wasabi();
    cmd.args(["run", "--allow-precompiled", "--verbose", "--no-cache"])
        .arg(path);
    finish(cmd)
}

/// `wasabi compile hello.wasm -o DIR/hello.cwasm`; the output's path.
fn compile_hello(dir: &Path) -> std::path::PathBuf {
    let cwasm = dir.join("hello.cwasm");
    let mut cmd = wasabi();
    cmd.arg("compile")
        .arg(program("hello.wasm"))
        .arg("-o")
        .arg(&cwasm);
    let out = finish(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    cwasm
}

#[test]
fn compile_writes_a_sealed_module_that_run_accepts_when_allowed() {
    let dir = scratch("aot");
    let cwasm = compile_hello(&dir);
    let out = run_precompiled(&cwasm);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello from Go, running inside Wasabi!\n");
    assert!(
        !stderr(&out).contains("compiled"),
        "a .cwasm needs no compilation"
    );
    // Not without the explicit permission.
    let out = run_no_cache(&cwasm);
    assert_refused(&out, &cwasm, "not a WebAssembly module");
    assert!(
        stderr(&out).contains("--allow-precompiled"),
        "{}",
        stderr(&out)
    );
    // `compile` takes WebAssembly only.
    let mut cmd = wasabi();
    cmd.arg("compile")
        .arg(&cwasm)
        .arg("-o")
        .arg(dir.join("again.cwasm"));
    assert_refused(&finish(cmd), &cwasm, "not a WebAssembly module");

    // A damaged precompiled module is refused with a clear reason.
    let bytes = std::fs::read(&cwasm).unwrap();
    let cut = dir.join("cut.cwasm");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    assert_refused(
        &run_precompiled(&cut),
        &cut,
        "precompiled module is not usable",
    );
}

/// The probe's critical finding: precompiled machine code saved under a
/// `.wasm` name ran its own native code. Now nothing that is not `\0asm`
/// runs unless allowed, and what is allowed must carry this installation's
/// seal over every byte.
#[test]
fn precompiled_code_from_elsewhere_never_runs() {
    let dir = scratch("aot-hostile");
    let cwasm = compile_hello(&dir);
    let sealed = std::fs::read(&cwasm).unwrap();

    // Machine code under an innocent name is not WebAssembly.
    let innocent = dir.join("innocent.wasm");
    std::fs::write(&innocent, &sealed).unwrap();
    assert_refused(
        &run_no_cache(&innocent),
        &innocent,
        "not a WebAssembly module",
    );

    // wasmtime's own output, with no seal (what the probe patched and ran).
    let unsealed = dir.join("unsealed.wasm");
    std::fs::write(&unsealed, &sealed[..sealed.len() - 48]).unwrap();
    assert_refused(
        &run_no_cache(&unsealed),
        &unsealed,
        "not a WebAssembly module",
    );
    assert_refused(&run_precompiled(&unsealed), &unsealed, "carries no seal");

    // Patched machine code, the seal left as it was.
    let patched = dir.join("patched.cwasm");
    let mut bytes = sealed.clone();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x90;
    }
    std::fs::write(&patched, &bytes).unwrap();
    assert_refused(&run_precompiled(&patched), &patched, "seal does not match");

    // Sealed by another installation (another key).
    let mut cmd = wasabi();
    cmd.env("WASABI_HOME", scratch("aot-hostile-home"))
        .args(["run", "--allow-precompiled", "--no-cache"])
        .arg(&cwasm);
    assert_refused(&finish(cmd), &cwasm, "seal does not match");

    // A key file others can read vouches for nothing.
    let open_home = scratch("aot-open-home");
    let key = open_home.join("install.key");
    std::fs::copy(wasabi_home().join("install.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut cmd = wasabi();
    cmd.env("WASABI_HOME", &open_home)
        .args(["run", "--allow-precompiled", "--no-cache"])
        .arg(&cwasm);
    assert_refused(&finish(cmd), &cwasm, "others may read");
}

#[test]
fn the_memory_limit_stops_a_growing_guest() {
    let out = run_guest(&program("cpu-bound.wasm"), &["--max-memory", "32MiB"], &[]);
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("memory limit exceeded"), "{err}");
    assert!(
        err.contains("its limit is 32 MiB: raise it with --max-memory"),
        "{err}"
    );
    // The same program runs to completion with room to spare.
    let out = run_guest(&program("cpu-bound.wasm"), &["--max-memory", "1GiB"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_limit_below_the_initial_memory_is_refused_at_start() {
    let out = run_guest(&program("hello.wasm"), &["--max-memory", "64KiB"], &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("memory limit exceeded"),
        "{}",
        stderr(&out)
    );
}

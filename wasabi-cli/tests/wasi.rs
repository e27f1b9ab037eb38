//! WASI preview-1 commands under `wasabi run`: what they are given (args,
//! exactly the granted environment, output, exit codes, mounts as
//! preopens) and what a hostile one cannot do (leave its mounts, write a
//! read-only mount, fault the host with bad pointers, outgrow its memory,
//! its open files or its CPU share). The official suite's 72 tests run in
//! `cargo xtask wasi-testsuite`; these are Wasabi's own rules.

mod support;

use std::time::Duration;

use support::{scratch, stderr, stdout, wasabi};

/// A WASI command whose `_start` runs `body` (the data segment at 1024
/// holds `data`; 0..1024 is scratch), then exits with what `body` left.
fn command(name: &str, data: &str, body: &str) -> std::path::PathBuf {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 1024) "{data}")
          (func (export "_start") (local i32 i32) (call $exit {body})))"#
    );
    let path = scratch(name).join("guest.wasm");
    std::fs::write(&path, wat::parse_str(&wat).expect("valid wat")).unwrap();
    path
}

/// `wasabi run --no-cache [flags] guest -- args`.
fn run(guest: &std::path::Path, flags: &[&str], args: &[&str]) -> std::process::Output {
    let mut cmd = wasabi();
    cmd.args(["run", "--no-cache"]).args(flags).arg(guest);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    support::finish(cmd)
}

/// `path_open` of the `len` bytes at 1024 under the first preopen (fd 3),
/// with `oflags` (1 = create): 0 or the WASI errno.
fn open_at_1024(len: usize, oflags: i32) -> String {
    format!(
        "(call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const {len}) \
         (i32.const {oflags}) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0))"
    )
}

#[test]
fn a_wasi_command_writes_its_output_and_exits_with_its_code() {
    // iovec at 0: {1024, 6}; "hello\n" at 1024; then exit 7.
    let guest = command(
        "wasi-hello",
        "hello\\n",
        "(block (result i32)
           (i32.store (i32.const 0) (i32.const 1024))
           (i32.store (i32.const 4) (i32.const 6))
           (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
           (i32.const 7))",
    );
    let out = run(&guest, &[], &[]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
}

#[test]
fn arguments_and_only_the_granted_environment_reach_it() {
    // Exits with argc * 10 + the number of environment variables.
    let guest = command(
        "wasi-args-env",
        "",
        "(block (result i32)
           (drop (call $args_sizes (i32.const 0) (i32.const 4)))
           (drop (call $env_sizes (i32.const 8) (i32.const 12)))
           (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10)) (i32.load (i32.const 8))))",
    );
    let mut cmd = wasabi();
    // The host's own environment is not the guest's.
    cmd.env("SECRET", "host-only")
        .args(["run", "--no-cache", "--env", "A=1", "--env", "B=2"])
        .arg(&guest)
        .args(["--", "x", "y"]);
    let out = support::finish(cmd);
    assert_eq!(out.status.code(), Some(32), "{}", stderr(&out));
}

#[test]
fn a_mount_is_a_preopen_and_read_only_means_read_only() {
    let dir = scratch("wasi-mount");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let guest = command("wasi-create", "made.txt", &open_at_1024(8, 1));
    let rw = format!("{}:/data", data.display());
    let out = run(&guest, &["--dir", &rw], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(data.join("made.txt").is_file(), "created through the mount");
    std::fs::remove_file(data.join("made.txt")).unwrap();
    let ro = format!("{}:/data:ro", data.display());
    let out = run(&guest, &["--dir", &ro], &[]);
    // ENOTCAPABLE (76), or EROFS/EPERM: a WASI error, not a trap.
    let code = out.status.code().unwrap_or(-1);
    assert!(code > 0 && code < 128, "{code}: {}", stderr(&out));
    assert!(
        !data.join("made.txt").exists(),
        "nothing written through :ro"
    );
}

#[test]
fn paths_that_lead_out_of_a_mount_are_refused() {
    let dir = scratch("wasi-escape");
    let inside = dir.join("inside");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(dir.join("secret.txt"), "host secret").unwrap();
    std::os::unix::fs::symlink("../secret.txt", inside.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", inside.join("abs")).unwrap();
    let mount = format!("{}:/in", inside.display());
    for (name, path) in [
        ("dotdot", "../secret.txt"),
        ("absolute", "/etc/passwd"),
        ("link-out", "link"),
        ("link-absolute", "abs"),
    ] {
        let guest = command(
            &format!("wasi-escape-{name}"),
            path,
            &open_at_1024(path.len(), 0),
        );
        let out = run(&guest, &["--dir", &mount], &[]);
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code > 0 && code < 128,
            "{path}: opened ({code}): {}",
            stderr(&out)
        );
    }
}

#[test]
fn pointers_outside_memory_trap_the_guest_with_what_it_did() {
    // An iovec that points past the end of memory, and a count that would
    // read past it: the guest traps (as with every import's bad address),
    // the message says which region, and nothing else is touched.
    for (name, iovs, count) in [("far", 70000, 1), ("count", 0, 100000)] {
        let guest = command(
            &format!("wasi-fault-{name}"),
            "",
            &format!(
                "(call $fd_write (i32.const 1) (i32.const {iovs}) (i32.const {count}) (i32.const 8))"
            ),
        );
        let out = run(&guest, &[], &[]);
        assert_eq!(out.status.code(), Some(134), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("out of bounds"),
            "{name}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_guest_past_its_memory_limit_ends_alone_with_a_clear_error() {
    // Grows by 64 MiB under a 32 MiB limit.
    let guest = command(
        "wasi-grow",
        "",
        "(i32.add (memory.grow (i32.const 1024)) (i32.const 1))",
    );
    let out = run(&guest, &["--max-memory", "32MiB"], &[]);
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
    assert!(stderr(&out).contains("memory"), "{}", stderr(&out));
}

#[test]
fn a_guest_past_its_open_files_cap_gets_emfile() {
    let dir = scratch("wasi-files");
    std::fs::write(dir.join("f"), "x").unwrap();
    // Opens `f` until an open fails (at most 1000 times), keeping every
    // descriptor; exits with the failure's errno if exactly 20 opened.
    let guest = command(
        "wasi-open-loop",
        "f",
        &format!(
            "(block (result i32) (local.set 0 (i32.const 0))
               (loop $again
                 (local.set 1 {})
                 (if (i32.eqz (local.get 1)) (then
                   (local.set 0 (i32.add (local.get 0) (i32.const 1)))
                   (br_if $again (i32.lt_u (local.get 0) (i32.const 1000))))))
               (if (i32.ne (local.get 0) (i32.const 20)) (then (call $exit (i32.const 100))))
               (local.get 1))",
            open_at_1024(1, 0)
        ),
    );
    let mount = format!("{}:/d", dir.display());
    let out = run(&guest, &["--dir", &mount, "--max-open-files", "20"], &[]);
    assert_eq!(out.status.code(), Some(33), "EMFILE; {}", stderr(&out));
}

#[test]
fn a_spinning_guest_is_held_to_its_cpu_share() {
    let guest = command(
        "wasi-spin",
        "",
        "(block (result i32) (loop $again (br $again)) (i32.const 0))",
    );
    let wall = Duration::from_secs(2);
    let used = support::cpu_used_under_share(&guest, "0.2", wall);
    assert!(
        used < Duration::from_millis(900),
        "a spinning WASI guest used {used:?} of CPU in {wall:?} under --max-cpu 0.2"
    );
}

#[test]
fn a_wasi_command_compiles_ahead_of_time_and_runs_sealed() {
    let guest = command("wasi-aot", "", "(i32.const 5)");
    let cwasm = guest.with_extension("cwasm");
    let mut cmd = wasabi();
    cmd.arg("compile").arg(&guest).arg("-o").arg(&cwasm);
    let out = support::finish(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&cwasm, &["--allow-precompiled"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[test]
fn a_guest_cannot_plant_a_link_that_leads_out_of_its_mount() {
    // The Go probe built for wasip1 tries every way out, planting links
    // included: wasmtime-wasi alone would create `new-rel -> ../../secret.txt`.
    let dir = scratch("wasi-plant-link").join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let mount = format!("{}:/d", dir.display());
    let out = support::run_guest(
        &support::program("wasip1/fs-probe.wasm"),
        &["--dir", &mount],
        &["escape", "/d"],
    );
    let text = stdout(&out);
    assert!(
        text.contains("new symlink climbing out: Operation not permitted"),
        "{text}"
    );
    assert!(!text.contains("allowed"), "{text}");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        assert!(
            !entry.file_type().unwrap().is_symlink(),
            "a link was planted: {:?}",
            entry.path()
        );
    }
}

//! The filesystem: `--dir` mounts seen by a real Go program, every escape
//! refused, `:ro` enforced, and `wasabi go-exec` as the runner of
//! `go test -exec`.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use support::*;

/// A mount with a file inside, a secret beside it, and two symbolic links
/// that lead out (one relative, one absolute).
fn tree(name: &str) -> std::path::PathBuf {
    let root = scratch(name);
    let m = root.join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(root.join("secret.txt"), "secret\n").unwrap();
    std::fs::write(m.join("inside.txt"), "inside\n").unwrap();
    symlink("..", m.join("out-rel")).unwrap();
    symlink(root.join("secret.txt"), m.join("out-abs")).unwrap();
    root
}

fn dir_flag(host: &Path, guest: &str) -> String {
    format!("--dir={}:{guest}", host.display())
}

#[test]
fn every_escape_fails_with_a_clear_error() {
    let root = tree("fs-escape");
    let out = run_guest(
        &program("fs-probe.wasm"),
        &[&dir_flag(&root.join("m"), "/data")],
        &["escape", "/data"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "absolute path outside: No such file or directory\n\
         dot-dot out of the mount: No such file or directory\n\
         dot-dot to a sibling: No such file or directory\n\
         relative symlink out: Permission denied\n\
         absolute symlink out: Permission denied\n\
         listing through a symlink out: Permission denied\n\
         new symlink to /etc/passwd: Operation not permitted\n\
         new symlink climbing out: Operation not permitted\n\
         write outside: No such file or directory\n\
         reading inside: allowed\n\
         inside.txt: \"inside\\n\"\n"
    );
    // Nothing was created on the host, inside or out.
    let mut left: Vec<String> = std::fs::read_dir(root.join("m"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["inside.txt", "out-abs", "out-rel"]);
    assert!(!Path::new("/tmp-outside.txt").exists());
}

#[test]
fn files_behave_as_in_a_native_run() {
    let root = tree("fs-rw");
    let m = root.join("m");
    let guest = run_guest(
        &program("fs-probe.wasm"),
        &[&dir_flag(&m, "/data")],
        &["rw", "/data"],
    );
    let m_text = m.to_str().unwrap();
    let native = run_native("fs-probe", &[], &["rw", m_text]);
    assert_eq!(
        guest.status.code(),
        Some(0),
        "{}{}",
        stdout(&guest),
        stderr(&guest)
    );
    assert_eq!(stdout(&guest), stdout(&native));
    assert!(stdout(&guest).contains("content: \"Hello, files\\n\""));
    assert!(stdout(&guest).contains("gone: true"));
}

#[test]
fn read_only_mounts_refuse_changes() {
    let root = tree("fs-ro");
    let m = root.join("m");
    let flag = format!("--dir={}:/data:ro", m.display());
    let out = run_guest(&program("fs-probe.wasm"), &[&flag], &["ro", "/data"]);
    assert_eq!(
        stdout(&out),
        "reading: allowed\n\
         inside.txt: \"inside\\n\"\n\
         writing: Read-only file system\n\
         creating: Read-only file system\n\
         removing: Read-only file system\n\
         mkdir: Read-only file system\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.join("inside.txt")).unwrap(),
        "inside\n"
    );
}

#[test]
fn the_working_directory_is_a_guest_path() {
    let root = tree("fs-cwd");
    let wasm = program("fs-probe.wasm");
    // Nothing mounted: a root with only /dev/null and /etc/hosts, and / as
    // the working directory.
    let out = run_guest(&wasm, &[], &["cwd"]);
    assert_eq!(stdout(&out), "cwd: / <nil>\nroot: dev,etc <nil>\n");
    // The first mount is the working directory; its parents are listed.
    let a = dir_flag(&root.join("m"), "/srv/data");
    let b = format!("--dir={}:/srv/other:ro", root.display());
    let out = run_guest(&wasm, &[&a, &b], &["cwd"]);
    assert_eq!(
        stdout(&out),
        "cwd: /srv/data <nil>\nroot: dev,etc,srv <nil>\n"
    );
    let out = run_guest(&wasm, &[&a, &b, "--cwd=/srv"], &["cwd"]);
    assert_eq!(stdout(&out), "cwd: /srv <nil>\nroot: dev,etc,srv <nil>\n");
    // Relative paths are relative to it.
    let out = run_guest(&wasm, &[&a], &["ro", "."]);
    assert!(
        stdout(&out).starts_with("reading: allowed\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_mounts_are_refused_before_the_program_starts() {
    let wasm = program("fs-probe.wasm");
    for (flags, expected) in [
        (
            vec!["--dir=/no/such/dir/for/wasabi:/d"],
            "cannot mount /no/such/dir/for/wasabi",
        ),
        (vec!["--dir=/tmp:relative"], "must be absolute"),
        (vec!["--dir=/tmp:/a:/b:ro"], "is not HOST[:GUEST][:ro]"),
        (
            vec!["--dir=/tmp:/a", "--cwd=/elsewhere"],
            "the working directory /elsewhere is neither mounted nor above a mount",
        ),
        (
            vec!["--dir=/tmp:/a", "--dir=/var:/a"],
            "two directories are mounted at /a",
        ),
    ] {
        let out = run_guest(&wasm, &flags, &["cwd"]);
        assert_ne!(out.status.code(), Some(0), "{flags:?}");
        assert!(
            stderr(&out).contains(expected),
            "{flags:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{flags:?} ran the program");
    }
}

/// `GOOS=js GOARCH=wasm go test -exec "<wasabi> go-exec <flags>" <args>` in `dir`.
fn go_test_exec(dir: &Path, exec_flags: &str, args: &[&str]) -> std::process::Output {
    go_test_exec_for("js", dir, exec_flags, args)
}

/// [`go_test_exec`] with `GOOS=goos` (`js` or `wasip1`).
fn go_test_exec_for(
    goos: &str,
    dir: &Path,
    exec_flags: &str,
    args: &[&str],
) -> std::process::Output {
    let exec = format!("{} go-exec {exec_flags}", env!("CARGO_BIN_EXE_wasabi"));
    let mut cmd = Command::new("go");
    cmd.args(["test", "-count=1", "-exec", &exec])
        .args(args)
        .current_dir(dir)
        .env("GOOS", goos)
        .env("GOARCH", "wasm")
        .env("WASABI_PROBE", "passed-through");
    if let Some(name) = loopback_name() {
        cmd.env("WASABI_TEST_HOSTNAME", name);
    }
    finish(cmd)
}

/// This machine's own name, when it resolves to 127.0.0.1 (from
/// /etc/hosts, usually): a host name the companion's tests can dial
/// without a network (TestDialByName).
fn loopback_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    let found = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 1)).ok()?;
    let loopback = found
        .into_iter()
        .any(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST);
    (loopback && !name.is_empty()).then_some(name)
}

/// go-exec flags for the companion module's tests: loopback, and the
/// machine's name when it is one.
fn companion_grants() -> String {
    match loopback_name() {
        Some(name) => format!("--allow-net=127.0.0.1 --allow-connect={name}"),
        None => "--allow-net=127.0.0.1".to_string(),
    }
}

/// Asserts that `go test -v` output `text` reports each test as passed.
fn assert_passed(text: &str, tests: &[&str]) {
    for test in tests {
        assert!(
            text.contains(&format!("--- PASS: {test} ")),
            "{test}:\n{text}"
        );
    }
}

/// Runs the probe package's tests built for `goos` under go-exec: every
/// test passes, and with `-must-fail` the exit code is the test binary's
/// (that run's output is returned).
fn the_probe_package_passes_for(goos: &str) -> std::process::Output {
    let dir = root().join("programs/gotest-probe");
    let out = go_test_exec_for(goos, &dir, "", &["-v", "."]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_passed(
        &text,
        &[
            "TestWorkingDirectory",
            "TestTempDir",
            "TestEnvironment",
            "TestFailOnRequest",
            // The probe's finding: httptest + http.Get failed under go-exec
            // ("connecting to 127.0.0.1:N is not allowed").
            "TestHTTPTestServer",
        ],
    );
    // Arguments pass through, and the exit code is the test binary's.
    let out = go_test_exec_for(goos, &dir, "", &[".", "-args", "-must-fail"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    out
}

#[test]
fn go_test_exec_runs_a_package_s_tests() {
    let out = the_probe_package_passes_for("js");
    assert!(
        stdout(&out).contains("failing on request"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn go_test_exec_runs_a_wasip1_package_s_tests() {
    // The same package built with GOOS=wasip1: a WASI command that gets
    // the same world (its directory, a private /tmp, GOROOT, the
    // environment go test sets) through preopens.
    the_probe_package_passes_for("wasip1");
}

#[test]
fn the_companion_module_s_tests_pass_under_go_test_exec() {
    let out = go_test_exec(&root().join("go"), &companion_grants(), &["-v", "."]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_passed(
        &text,
        &[
            "TestEchoWithHalfClose",
            "TestConcurrentConnections",
            "TestReadDeadline",
            "TestCloseUnblocksReadAndAccept",
            "TestDialRefused",
            "TestHTTPThroughRoundTripper",
            "TestListenAndServe",
            "TestPolicyDenials",
        ],
    );
    assert!(!text.contains("--- FAIL"), "{text}");
}

/// The same tests, built for wasip1: the module's sockets there are WASI
/// descriptors made through the socket extension and handed to the
/// standard library, and keep the same contract (deadlines, Close that
/// unblocks with net.ErrClosed, CloseWrite, Go's error values).
#[test]
fn the_companion_module_s_tests_pass_under_go_test_exec_for_wasip1() {
    let out = go_test_exec_for(
        "wasip1",
        &root().join("go"),
        &companion_grants(),
        &["-v", "."],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_passed(
        &text,
        &[
            "TestEchoWithHalfClose",
            "TestConcurrentConnections",
            "TestReadDeadline",
            "TestCloseUnblocksReadAndAccept",
            "TestDialRefused",
            "TestDialContextCancelled",
            "TestHTTPThroughRoundTripper",
            "TestListenAndServe",
        ],
    );
    if loopback_name().is_some() {
        assert_passed(&text, &["TestDialByName"]);
    }
    assert!(!text.contains("--- FAIL"), "{text}");
}

/// Two goroutines looping on file calls once starved every other goroutine
/// (file callbacks completed inside the call, so neither ever blocked): the
/// sleeping main goroutine never woke. Callbacks now come in a later turn,
/// as under Node.js, and the program ends as it does natively.
#[test]
fn goroutines_looping_on_file_calls_do_not_starve_the_others() {
    let root = scratch("fs-busy");
    let out = run_guest(
        &program("fs-probe.wasm"),
        &[&dir_flag(&root, "/data")],
        &["busy", "/data"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let native = run_native("fs-probe", &[], &["busy", root.to_str().unwrap()]);
    assert_eq!(stdout(&out), "both looped: true\n");
    assert_eq!(stdout(&out), stdout(&native));
}

/// Every `os.File.Write` makes a host `Uint8Array` that Go finalizes only
/// when its own collector runs, which host memory does not prompt: writing
/// 1 GiB to stdout died with "out of memory for JS objects" after about
/// 256 MiB, and a file in a mount failed at 253 MiB. A gigabyte each way
/// now streams through a 64 MiB limit, byte for byte as natively.
#[test]
fn a_program_streams_gigabytes_through_a_small_memory_limit() {
    use std::io::Read;
    let wasm = program("stream.wasm");
    warm(&wasm);
    let mut cmd = wasabi();
    cmd.arg("run")
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(["--max-memory", "64MiB"])
        .arg(&wasm)
        .args(["--", "stdout", "1024"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start wasabi");
    let mut out = child.stdout.take().expect("stdout");
    let (mut total, mut buf) = (0usize, vec![0u8; 1 << 16]);
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    let status = child.wait().expect("wait");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(total, 1 << 30, "{err}");

    let dir = scratch("fs-stream");
    let out = run_guest(
        &wasm,
        &["--max-memory", "64MiB", &dir_flag(&dir, "/data")],
        &["file", "/data/big", "1024"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let native = run_native(
        "stream",
        &[],
        &["file", dir.join("native").to_str().unwrap(), "1024"],
    );
    assert_eq!(stdout(&out), stdout(&native));
    assert!(stdout(&out).contains("(1073741824 bytes)"));
    let _ = std::fs::remove_dir_all(&dir);
}

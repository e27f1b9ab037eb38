//! Helpers for the CLI's integration tests: locating the guest programs that
//! `cargo xtask build-examples` builds, warming the shared compiled-module
//! cache once per module, and running `wasabi` or a native binary with a
//! deadline.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A guest built by `cargo xtask build-examples`.
pub fn program(name: &str) -> PathBuf {
    let path = root().join("target/programs").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-examples` first (cargo xtask ci does)",
        path.display()
    );
    path
}

/// The native build of a program, for comparison.
pub fn native(name: &str) -> PathBuf {
    program(&format!("native/{name}"))
}

/// The compiled-module cache shared by every test run.
pub fn cache_dir() -> PathBuf {
    root().join("target/test-cache")
}

/// The Wasabi directory (`WASABI_HOME`) of every test run: it holds the
/// installation key that seals the shared cache's entries.
pub fn wasabi_home() -> PathBuf {
    root().join("target/test-home")
}

static WARMED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Compiles `wasm` into the shared cache once per test process, so parallel
/// tests do not each compile the same module on a two-core machine.
pub fn warm(wasm: &Path) {
    let mut warmed = WARMED.lock().unwrap_or_else(|e| e.into_inner());
    let set = warmed.get_or_insert_with(HashSet::new);
    if set.contains(wasm) {
        return;
    }
    let runtime = wasabi_core::Runtime::new(wasabi_core::RuntimeConfig {
        cache_dir: Some(cache_dir()),
        // What every test run then loads: Cranelift code, as a steady
        // state runs (tiers.rs tests the way there).
        tiering: wasabi_core::Tiering::Cranelift,
        key: wasabi_core::KeySource::File(wasabi_home().join(wasabi_core::seal::KEY_FILE_NAME)),
        ..Default::default()
    })
    .expect("engine");
    runtime
        .load(wasm, Default::default())
        .expect("module compiles");
    set.insert(wasm.to_path_buf());
}

/// `wasabi` with the shared cache.
pub fn wasabi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasabi"));
    cmd.env_clear().env("WASABI_HOME", wasabi_home());
    cmd
}

/// `wasabi run --cache-dir <shared> [flags] <wasm> -- <args>`, after warming
/// the cache for `wasm`.
pub fn run_guest(wasm: &Path, flags: &[&str], args: &[&str]) -> Output {
    warm(wasm);
    let mut cmd = wasabi();
    cmd.arg("run").arg("--cache-dir").arg(cache_dir());
    cmd.args(flags).arg(wasm);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    finish(cmd)
}

/// `wasabi run --no-cache <path>`.
pub fn run_no_cache(path: &Path) -> Output {
    let mut cmd = wasabi();
    cmd.args(["run", "--no-cache"]).arg(path);
    finish(cmd)
}

/// `wasabi run --verbose --tier cranelift --cache-dir <cache> hello.wasm`:
/// the cache entry is written before the run ends.
pub fn run_hello_verbose(cache: &Path) -> Output {
    let mut cmd = wasabi();
    cmd.args(["run", "--verbose", "--tier", "cranelift", "--cache-dir"])
        .arg(cache)
        .arg(program("hello.wasm"));
    finish(cmd)
}

/// Runs a command with no stdin and a generous deadline; a hang is a failure.
pub fn finish(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {shown}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    // Read the pipes on threads so a chatty child cannot block on them.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).map(|_| v)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{shown} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout thread").expect("read stdout"),
        stderr: err.join().expect("stderr thread").expect("read stderr"),
    }
}

/// Runs a native program with exactly `env`.
pub fn run_native(name: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(native(name));
    cmd.env_clear().envs(env.iter().copied()).args(args);
    finish(cmd)
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty folder for one test under target/test-scratch.
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A guest running in the background (a server), killed when dropped.
pub struct Background {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Background {
    /// Starts `wasabi run [flags] <wasm> -- <args>` with its stdout piped.
    pub fn start(wasm: &Path, flags: &[&str], args: &[&str]) -> Background {
        warm(wasm);
        let mut cmd = wasabi();
        cmd.arg("run").arg("--cache-dir").arg(cache_dir());
        cmd.args(flags).arg(wasm).arg("--").args(args);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wasabi");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Background { child, stdout }
    }

    /// The next line the guest prints (without the newline); fails if it
    /// exits first.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.stdout, &mut line).expect("read stdout");
        assert!(!line.is_empty(), "the guest exited before printing a line");
        line.trim_end().to_string()
    }

    /// The host process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` distinct loopback addresses (`127.0.0.1:PORT`) that were free a
/// moment ago: every probe stays open until all are chosen, so none repeats.
pub fn free_addrs(n: usize) -> Vec<String> {
    let probes: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    probes
        .iter()
        .map(|p| p.local_addr().expect("address").to_string())
        .collect()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// CPU time a process has used so far, from /proc.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces): utime is the
    // 12th and stime the 13th of those.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// CPU time `wasabi run --no-cache --max-cpu <share> <guest>` uses in
/// `wall` of wall time, after which it is killed: for guests that spin.
pub fn cpu_used_under_share(guest: &Path, share: &str, wall: Duration) -> Duration {
    let mut child = wasabi()
        .args(["run", "--no-cache", "--max-cpu", share])
        .arg(guest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wasabi");
    std::thread::sleep(wall);
    let used = cpu_time(child.id());
    let _ = child.kill();
    let _ = child.wait();
    used
}

/// Generous bound for any single network step; a hang is a failure.
pub const NET_STEP: Duration = Duration::from_secs(30);

/// A connection to `addr`, retried while the server starts, with a read
/// timeout of [`NET_STEP`].
pub fn connect(addr: &str) -> std::net::TcpStream {
    use std::net::TcpStream;
    let started = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_read_timeout(Some(NET_STEP)).expect("timeout");
                return s;
            }
            Err(e) if started.elapsed() < NET_STEP => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("could not connect to {addr}: {e}"),
        }
    }
}

/// Sends `payload` to `addr`, half-closes, and reads everything back.
pub fn echo_once(addr: &str, payload: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = connect(addr);
    s.write_all(payload).expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("half close");
    let mut back = Vec::new();
    s.read_to_end(&mut back).expect("read to the end");
    back
}

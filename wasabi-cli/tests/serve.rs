//! `wasabi serve`: many tenants in one process, on real sockets, driven by
//! real signals.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Generous bound for a step; a hang is a failure.
const STEP: Duration = Duration::from_secs(60);

/// A `wasabi serve` process, killed when dropped.
struct Serve {
    child: Child,
    dir: PathBuf,
    admin: String,
}

impl Serve {
    /// Writes `manifest` into a scratch folder `name` and serves it, with
    /// an admin endpoint.
    fn start(name: &str, manifest: &str, extra: &[&str]) -> Serve {
        let dir = scratch(name);
        std::fs::write(dir.join("manifest.toml"), manifest).expect("write manifest");
        for module in [
            "hello-server.wasm",
            "spin.wasm",
            "mem-hog.wasm",
            "crash-loop.wasm",
        ] {
            warm(&program(module));
        }
        let admin = format!("127.0.0.1:{}", free_port());
        let mut cmd = wasabi();
        cmd.args(["serve", "--cache-dir"])
            .arg(cache_dir())
            .args(["--admin", &admin])
            .args(extra)
            .arg(dir.join("manifest.toml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"));
        let child = cmd.spawn().expect("start wasabi serve");
        let serve = Serve { child, dir, admin };
        eventually("the admin endpoint", || {
            try_get(&serve.admin, "/tenants").is_ok()
        });
        serve
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Rewrites the manifest (for a reload).
    fn edit(&self, manifest: &str) {
        std::fs::write(self.dir.join("manifest.toml"), manifest).expect("rewrite manifest");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its status code.
    fn wait_exit(&mut self) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(started.elapsed() < STEP, "wasabi serve did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/tenants`, as JSON.
    fn tenants(&self) -> serde_json::Value {
        let (status, body) = get(&self.admin, "/tenants");
        assert_eq!(status, 200);
        serde_json::from_str(&body).expect("JSON")
    }

    /// One tenant's entry in `/tenants`.
    fn tenant(&self, name: &str) -> serde_json::Value {
        self.tenants()["tenants"]
            .as_array()
            .expect("array")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no tenant {name}"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `ready` holds, polling; fails with `what` after [`STEP`].
fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < STEP, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 GET with `Connection: close`: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    try_get(addr, path).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

fn try_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(STEP))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    parse_response(&response)
}

fn parse_response(response: &str) -> std::io::Result<(u16, String)> {
    let bad = || std::io::Error::other(format!("bad response {response:?}"));
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let body = response.split_once("\r\n\r\n").ok_or_else(bad)?.1;
    Ok((status, body.to_string()))
}

/// A `[[tenant]]` table for hello-server on guest 127.0.0.1:8080.
fn hello_tenant(name: &str, greeting: &str, host: &str) -> String {
    format!(
        "[[tenant]]\nname = \"{name}\"\nmodule = \"{}\"\nenv = {{ GREETING = \"{greeting}\" }}\n\
         listen = {{ \"127.0.0.1:8080\" = \"{host}\" }}\n\n",
        module("hello-server.wasm")
    )
}

fn module(name: &str) -> String {
    program(name).display().to_string()
}

fn answers(addr: &str, expected: &str) -> bool {
    matches!(try_get(addr, "/"), Ok((200, body)) if body == format!("{expected}\n"))
}

#[test]
fn fifty_tenants_on_one_guest_address_each_answer_on_their_own_port() {
    let hosts = free_addrs(50);
    let manifest: String = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| hello_tenant(&format!("t{i}"), &format!("greetings from t{i}"), host))
        .collect();
    let serve = Serve::start("serve-fifty", &manifest, &[]);
    for (i, host) in hosts.iter().enumerate() {
        eventually(&format!("t{i} on {host}"), || {
            answers(host, &format!("greetings from t{i}"))
        });
    }
    // Each sees the guest address it asked for, and says so on its own line.
    let out = serve.stdout();
    for i in 0..50 {
        assert!(
            out.contains(&format!("t{i} | listening on 127.0.0.1:8080\n")),
            "{out}"
        );
    }
    let tenants = serve.tenants();
    assert_eq!(tenants["tenants"].as_array().expect("array").len(), 50);
}

#[test]
fn a_spinning_tenant_is_preempted_and_its_neighbour_keeps_answering() {
    let [hello, spin, capped]: [String; 3] = free_addrs(3).try_into().expect("three addresses");
    let manifest = format!(
        "{}[[tenant]]\nname = \"spin\"\nmodule = \"{spin_wasm}\"\nlisten = {{ \"127.0.0.1:8080\" = \"{spin}\" }}\n\n\
         [[tenant]]\nname = \"capped\"\nmodule = \"{spin_wasm}\"\nmax-cpu = 0.2\n\
         listen = {{ \"127.0.0.1:8080\" = \"{capped}\" }}\n",
        hello_tenant("hello", "still here", &hello),
        spin_wasm = module("spin.wasm")
    );
    let serve = Serve::start("serve-spin", &manifest, &[]);
    eventually("spin to start", || {
        serve.stdout().contains("spin | listening on")
    });
    eventually("hello to answer", || answers(&hello, "still here"));
    eventually("capped to start", || {
        serve.stdout().contains("capped | listening on")
    });
    let cpu = |name: &str| serve.tenant(name)["cpu_seconds"].as_f64().expect("cpu");
    let cpu_before = cpu("spin");
    let (capped_before, started) = (cpu("capped"), Instant::now());
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get(&hello, "/"), (200, "still here\n".to_string()));
        // Generous: a starved neighbour would wait forever, not 2 s.
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    thread::sleep(Duration::from_millis(500));
    let spin_now = serve.tenant("spin");
    assert_eq!(spin_now["state"], "running", "preempted, not killed");
    assert!(spin_now["cpu_seconds"].as_f64().expect("cpu") > cpu_before);
    // The capped spinner used at most its fifth of a core (plus the 0.1 s of
    // credit a budget starts with, and slack for one scheduling slice).
    let (capped_used, wall) = (cpu("capped") - capped_before, started.elapsed());
    assert!(
        capped_used > 0.0 && capped_used <= 0.2 * wall.as_secs_f64() + 0.15,
        "capped used {capped_used:.3} s of CPU in {wall:?}"
    );
    assert_eq!(serve.tenant("capped")["state"], "running");
}

#[test]
fn a_memory_hog_ends_at_its_limit_and_restarts_with_backoff() {
    let hello = format!("127.0.0.1:{}", free_port());
    let manifest = format!(
        "{}[[tenant]]\nname = \"hog\"\nmodule = \"{}\"\nmax-memory = \"64MiB\"\nrestart = \"on-failure\"\n",
        hello_tenant("neighbour", "unbothered", &hello),
        module("mem-hog.wasm")
    );
    let serve = Serve::start("serve-hog", &manifest, &[]);
    eventually("two restarts of hog", || {
        serve.tenant("hog")["restarts"].as_u64() >= Some(2)
    });
    let err = serve.stderr();
    assert!(
        err.contains(
            "hog | wasabi: memory limit exceeded: the guest needed 64.5 MiB (64.5 MiB of linear memory, "
        ) && err.contains(
            "of host objects and strings) but its limit is 64 MiB: raise the tenant's max-memory \
             in the manifest"
        ),
        "{err}"
    );
    assert!(err.contains("hog | wasabi: restarting in 100ms (restart = \"on-failure\")"));
    assert!(err.contains("hog | wasabi: restarting in 200ms"), "{err}");
    let hog = serve.tenant("hog");
    assert!(
        hog["last_exit"]
            .as_str()
            .is_some_and(|e| e.contains("memory limit exceeded")),
        "{hog}"
    );
    assert_eq!(hog["last_exit_ok"], false);
    assert!(answers(&hello, "unbothered"));
    assert_eq!(serve.tenant("neighbour")["restarts"], 0);
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let hello = format!("127.0.0.1:{}", free_port());
    let mut serve = Serve::start(
        "serve-term",
        &hello_tenant("hello", "finished", &hello),
        &["--grace", "20s"],
    );
    eventually("hello to answer", || answers(&hello, "finished"));
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let hello = hello.clone();
            thread::spawn(move || get(&hello, "/?delay=1500ms"))
        })
        .collect();
    // Let the requests reach the guest, then ask wasabi to stop.
    thread::sleep(Duration::from_millis(500));
    serve.signal("TERM");
    for request in in_flight {
        assert_eq!(request.join().expect("request"), (200, "finished\n".into()));
    }
    assert_eq!(serve.wait_exit(), Some(0), "{}", serve.stderr());
    let err = serve.stderr();
    assert!(
        err.contains("hello | wasabi: drained: stopped accepting and finished its connections"),
        "{err}"
    );
    assert!(
        TcpStream::connect(&hello).is_err(),
        "nothing listens any more"
    );
}

#[test]
fn sighup_applies_an_edited_manifest() {
    let [keep, remove, change, add]: [String; 4] =
        free_addrs(4).try_into().expect("four addresses");
    let before = format!(
        "{}{}{}",
        hello_tenant("keep", "kept", &keep),
        hello_tenant("remove", "removed", &remove),
        hello_tenant("change", "old", &change)
    );
    let serve = Serve::start("serve-hup", &before, &["--grace", "2s"]);
    eventually("all three to answer", || {
        answers(&keep, "kept") && answers(&remove, "removed") && answers(&change, "old")
    });
    // A keep-alive connection to the untouched tenant.
    let mut conn = BufReader::new(TcpStream::connect(&keep).expect("connect"));
    let request = format!("GET / HTTP/1.1\r\nHost: {keep}\r\n\r\n");
    let exchange = |conn: &mut BufReader<TcpStream>| -> String {
        conn.get_mut().write_all(request.as_bytes()).expect("send");
        let mut length = 0;
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).expect("header");
            if line.trim_end().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).expect("body");
        String::from_utf8(body).expect("utf-8")
    };
    assert_eq!(exchange(&mut conn), "kept\n");
    serve.edit(&format!(
        "{}{}{}",
        hello_tenant("keep", "kept", &keep),
        hello_tenant("change", "new", &change),
        hello_tenant("add", "added", &add)
    ));
    serve.signal("HUP");
    eventually("the reload", || serve.stderr().contains("wasabi: reloaded"));
    eventually("the changed and added tenants", || {
        answers(&change, "new") && answers(&add, "added")
    });
    eventually("the removed tenant to stop", || {
        TcpStream::connect(&remove).is_err()
    });
    // The untouched tenant kept its connection (and was not restarted).
    assert_eq!(exchange(&mut conn), "kept\n");
    assert_eq!(serve.tenant("keep")["restarts"], 0);
    let names: Vec<String> = serve.tenants()["tenants"]
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names, ["add", "change", "keep"]);
}

#[test]
fn admin_metrics_json_logs_and_a_tenant_that_ends_for_good() {
    let hello = format!("127.0.0.1:{}", free_port());
    let manifest = format!(
        "{}[[tenant]]\nname = \"crash\"\nmodule = \"{}\"\nrestart = \"never\"\n",
        hello_tenant("hello", "hi", &hello),
        module("crash-loop.wasm")
    );
    let serve = Serve::start("serve-admin", &manifest, &["--log-format", "json"]);
    eventually("hello to answer", || answers(&hello, "hi"));
    let (status, metrics) = get(&serve.admin, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "# TYPE wasabi_tenant_up gauge",
        "wasabi_tenant_up{tenant=\"hello\"} 1",
        "wasabi_tenant_restarts_total{tenant=\"hello\"} 0",
        "# TYPE wasabi_tenant_cpu_seconds_total counter",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    let memory = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wasabi_tenant_memory_bytes{tenant=\"hello\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("a memory figure");
    assert!(memory > 1e6, "{memory}");
    // hello answered through the host's HTTP server: its requests count.
    let figure = |prefix: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{prefix}\n{metrics}"))
    };
    assert!(figure("wasabi_tenant_http_responses_total{tenant=\"hello\",class=\"2xx\"} ") >= 1.0);
    assert_eq!(
        figure("wasabi_tenant_http_responses_total{tenant=\"hello\",class=\"5xx\"} "),
        0.0
    );
    assert!(figure("wasabi_tenant_http_request_duration_seconds_count{tenant=\"hello\"} ") >= 1.0);
    assert!(
        figure("wasabi_tenant_http_request_duration_seconds_bucket{tenant=\"hello\",le=\"+Inf\"} ")
            >= 1.0
    );
    assert!(figure("wasabi_tenant_http_response_bytes_total{tenant=\"hello\"} ") >= 3.0);
    assert!(serve.tenant("hello")["http"]["responses"]["2xx"].as_u64() >= Some(1));
    assert_eq!(get(&serve.admin, "/nope").0, 404);
    let records: Vec<serde_json::Value> = serve
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(records.iter().any(|r| r["tenant"] == "hello"
        && r["stream"] == "stdout"
        && r["line"] == "listening on 127.0.0.1:8080"));
    // crash-loop panics after a second and, with restart = "never", ends.
    eventually("crash to end", || serve.tenant("crash")["state"] == "ended");
    let crash = serve.tenant("crash");
    assert_eq!(crash["last_exit"], "exited with status 2");
    assert_eq!(crash["restarts"], 0);
    let err = serve.stderr();
    assert!(
        err.contains(r#""line":"panic: crash-loop crashes, as it always does""#)
            && err.contains(r#""tenant":"crash""#),
        "{err}"
    );
    assert!(answers(&hello, "hi"), "its neighbour is untouched");
}

/// `wasabi serve` on a manifest with an error: (exit code, stderr).
fn serve_bad(name: &str, manifest: &str) -> (Option<i32>, String, PathBuf) {
    let dir = scratch(name);
    let path = dir.join("bad.toml");
    std::fs::write(&path, manifest).expect("write");
    let mut cmd = wasabi();
    cmd.args(["serve", "--cache-dir"])
        .arg(cache_dir())
        .arg(&path);
    let out = finish(cmd);
    assert!(out.stdout.is_empty(), "something started: {}", stdout(&out));
    (out.status.code(), stderr(&out), path)
}

#[test]
fn a_manifest_error_names_its_line_and_starts_nothing() {
    let good = format!("127.0.0.1:{}", free_port());
    let first = hello_tenant("good", "hi", &good);
    let hello = module("hello-server.wasm");
    let cases: Vec<(&str, String, usize, String)> = vec![
        (
            "unknown field",
            format!("{first}[[tenant]]\nname = \"x\"\ncolour = \"red\"\n"),
            9,
            "unknown field `colour`".into(),
        ),
        (
            "duplicate",
            format!("{first}{}", hello_tenant("good", "again", "127.0.0.1:1")),
            8,
            "duplicate tenant name `good` (first used on line 2)".into(),
        ),
        (
            "same host port",
            format!("{first}{}", hello_tenant("other", "x", &good)),
            11,
            format!("tenants `good` (line 5) and `other` both listen on host address {good}"),
        ),
        (
            "missing module",
            format!("{first}[[tenant]]\nname = \"x\"\nmodule = \"nowhere.wasm\"\n"),
            9,
            "tenant `x`: module `nowhere.wasm` not found".into(),
        ),
        (
            "bad size",
            format!(
                "{first}[[tenant]]\nname = \"x\"\nmodule = \"{hello}\"\nmax-memory = \"lots\"\n"
            ),
            10,
            "tenant `x`: max-memory:".into(),
        ),
        (
            "bad address",
            format!(
                "{first}[[tenant]]\nname = \"x\"\nmodule = \"{hello}\"\nlisten = {{ \"127.0.0.1:8080\" = \"nowhere\" }}\n"
            ),
            10,
            "tenant `x`: listen: `nowhere` is not an IP:PORT address".into(),
        ),
    ];
    for (i, (what, manifest, line, message)) in cases.iter().enumerate() {
        let (code, err, path) = serve_bad(&format!("serve-bad-{i}"), manifest);
        assert_eq!(code, Some(1), "{what}: {err}");
        let located = format!("{}:{line}:", path.display());
        assert!(
            err.starts_with(&format!("wasabi: {located}")) && err.contains(message.as_str()),
            "{what}: expected {located} … {message}\n got: {err}"
        );
        assert!(
            TcpStream::connect(&good).is_err(),
            "{what}: a tenant started"
        );
    }
}

#[test]
fn each_tenant_sees_only_its_own_directories() {
    let dir = scratch("serve-dirs-data");
    for (name, text) in [("a", "for a"), ("b", "for b")] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("inside.txt"), format!("{text}\n")).unwrap();
    }
    let tenant = |name: &str, dirs: &str| {
        format!(
            "[[tenant]]\nname = \"{name}\"\nmodule = \"{}\"\nargs = [\"ro\", \"/data\"]\n{dirs}\n",
            module("fs-probe.wasm")
        )
    };
    warm(&program("fs-probe.wasm"));
    let manifest = format!(
        "{}{}{}",
        tenant(
            "a",
            &format!("dirs = [\"{}:/data:ro\"]", dir.join("a").display())
        ),
        tenant(
            "b",
            &format!(
                "dirs = [\"{}:/data\"]\ncwd = \"/data\"",
                dir.join("b").display()
            )
        ),
        tenant("none", ""),
    );
    let serve = Serve::start("serve-dirs", &manifest, &[]);
    eventually("every tenant to report", || {
        serve.stdout().matches("mkdir:").count() == 3
    });
    let out = serve.stdout();
    for line in [
        "a | inside.txt: \"for a\\n\"",
        "a | writing: Read-only file system",
        "b | inside.txt: \"for b\\n\"",
        "b | writing: allowed",
        "none | reading: No such file or directory",
    ] {
        assert!(out.lines().any(|l| l == line), "{line}\n{out}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("a/inside.txt")).unwrap(),
        "for a\n"
    );
    // b may write: its probe rewrote, created and removed files.
    assert!(!dir.join("b/inside.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("b/new.txt")).unwrap(),
        "new"
    );
}

/// A manifest named by a bare file name (`wasabi serve m.toml` from its own
/// folder) has the parent "": its relative paths once resolved against `/`,
/// so `./etc` mounted the host's /etc. They resolve against the manifest's
/// folder.
#[test]
fn a_manifest_named_by_a_bare_file_name_mounts_from_its_own_folder() {
    let site = scratch("serve-bare-manifest");
    std::fs::create_dir_all(site.join("etc")).unwrap();
    std::fs::write(site.join("etc/inside.txt"), "the site's own\n").unwrap();
    std::fs::copy(program("fs-probe.wasm"), site.join("probe.wasm")).unwrap();
    warm(&site.join("probe.wasm"));
    std::fs::write(
        site.join("m.toml"),
        "[[tenant]]\nname = \"site\"\nmodule = \"probe.wasm\"\nargs = [\"ro\", \"/cfg\"]\ndirs = [\"./etc:/cfg:ro\"]\n",
    )
    .unwrap();
    let mut cmd = wasabi();
    cmd.current_dir(&site)
        .args(["serve", "--cache-dir"])
        .arg(cache_dir())
        .arg("m.toml");
    let out = finish(cmd);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l == "site | inside.txt: \"the site's own\\n\""),
        "{text}\n{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Host memory a tenant holds (here, four 16 MiB strings Go keeps) shows in
/// `/tenants` and `/metrics`, within its memory total: the probe saw 131 MiB
/// in `/tenants` while one tenant held 2 GiB of the process.
#[test]
fn host_memory_shows_in_tenants_and_metrics() {
    warm(&program("host-hog.wasm"));
    let manifest = format!(
        "[[tenant]]\nname = \"hold\"\nmodule = \"{}\"\nargs = [\"hold\"]\nmax-memory = \"512MiB\"\n",
        module("host-hog.wasm")
    );
    let serve = Serve::start("serve-host-memory", &manifest, &[]);
    eventually("the strings to be held", || {
        serve
            .stdout()
            .contains("hold | holding 4 strings of 16 MiB")
    });
    let hold = serve.tenant("hold");
    let host = hold["host_memory_bytes"].as_u64().expect("host memory");
    let total = hold["memory_bytes"].as_u64().expect("memory");
    assert!(host >= 64 << 20, "{hold}");
    assert!(
        total >= host + (1 << 20),
        "the total includes linear memory: {hold}"
    );
    let (_, metrics) = get(&serve.admin, "/metrics");
    assert!(
        metrics.contains("wasabi_tenant_host_memory_bytes{tenant=\"hold\"}"),
        "{metrics}"
    );
}

/// Under `serve`, a refusal names the manifest field that would grant or
/// raise it, never a flag; `/tenants` and `/metrics` show every limit.
#[test]
fn refusals_name_the_manifest_field_and_every_limit_is_shown() {
    let manifest = format!(
        "[[tenant]]\nname = \"dialer\"\nmodule = \"{probe}\"\nargs = [\"read\", \"127.0.0.1:1\"]\n\
         max-open-files = 7\nmax-timers = 9\n\n\
         [[tenant]]\nname = \"listener\"\nmodule = \"{probe}\"\nargs = [\"listen\", \"127.0.0.1:7000\"]\n\
         max-js-heap = \"32MiB\"\nmax-js-refs = 5000\nmax-connections = 4\nmax-cpu = 0.5\n",
        probe = module("net-probe.wasm")
    );
    let serve = Serve::start("serve-words", &manifest, &[]);
    eventually("both tenants to end", || {
        serve.tenant("dialer")["state"] == "ended" && serve.tenant("listener")["state"] == "ended"
    });
    let err = serve.stderr();
    assert!(
        err.contains(
            "dialer | net-probe: dial tcp 127.0.0.1:1: connecting to 127.0.0.1:1 is not allowed: \
             grant it in the tenant's allow-connect list, e.g. allow-connect = [\"127.0.0.1:1\"]"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "listener | net-probe: listen tcp 127.0.0.1:7000: listening on 127.0.0.1:7000 is not \
             allowed: map it in the tenant's listen table, e.g. listen = { \"127.0.0.1:7000\" = \
             \"127.0.0.1:PORT\" }"
        ),
        "{err}"
    );
    assert!(!err.contains("--allow") && !err.contains("--max"), "{err}");
    let limits = |name: &str| serve.tenant(name)["limits"].clone();
    let dialer = limits("dialer");
    assert_eq!(dialer["open_files"], 7.0);
    assert_eq!(dialer["timers"], 9.0);
    assert_eq!(dialer["memory_bytes"], serde_json::Value::Null);
    assert_eq!(dialer["sockets"], 1024.0, "the default");
    let listener = limits("listener");
    assert_eq!(listener["js_heap_bytes"], f64::from(32u32 << 20));
    assert_eq!(listener["js_references"], 5000.0);
    assert_eq!(listener["sockets"], 4.0);
    assert_eq!(listener["cpu_cores"], 0.5);
    let (_, metrics) = get(&serve.admin, "/metrics");
    assert!(
        metrics.contains("wasabi_tenant_limit{tenant=\"dialer\",limit=\"open_files\"} 7\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasabi_tenant_limit{tenant=\"listener\",limit=\"cpu_cores\"} 0.5\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("limit=\"memory_bytes\""),
        "not capped, not shown"
    );
}

/// One HTTP/1.1 GET of `path` on `addr` with `Host: host`: (status,
/// retry-after header present, body).
fn get_host(addr: &str, host: &str, path: &str) -> (u16, bool, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the router");
    s.set_read_timeout(Some(STEP)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read");
    let retry = response.to_ascii_lowercase().contains("\r\nretry-after: ");
    let (status, body) = parse_response(&response).expect("a response");
    (status, retry, body)
}

#[test]
fn one_router_port_reaches_each_tenant_by_host_and_path() {
    let [router, one, two]: [String; 3] = free_addrs(3).try_into().expect("three addresses");
    let manifest = format!(
        "[router]\nlisten = \"{router}\"\n\n{}routes = [\"one.test\"]\n\n{}routes = [\"two.test/api\"]\n\n\
         [[tenant]]\nname = \"idle\"\nmodule = \"{}\"\nroutes = [\"idle.test\"]\n",
        hello_tenant("one", "from one", &one),
        hello_tenant("two", "from two", &two),
        module("idle.wasm"),
    );
    let _serve = Serve::start("serve-router", &manifest, &[]);
    eventually("both tenants to answer", || {
        answers(&one, "from one") && answers(&two, "from two")
    });
    assert_eq!(
        get_host(&router, "one.test", "/"),
        (200, false, "from one\n".into())
    );
    assert_eq!(
        get_host(&router, "ONE.test:8080", "/anything"),
        (200, false, "from one\n".into())
    );
    assert_eq!(
        get_host(&router, "two.test", "/api"),
        (200, false, "from two\n".into())
    );
    assert_eq!(
        get_host(&router, "two.test", "/api/deeper?x=1"),
        (200, false, "from two\n".into())
    );
    // A fully qualified name (trailing dot) is the same host.
    assert_eq!(
        get_host(&router, "one.test.:80", "/"),
        (200, false, "from one\n".into())
    );
    // Outside the prefix, and an unknown host: the router answers 404.
    assert_eq!(get_host(&router, "two.test", "/apiary").0, 404);
    assert_eq!(get_host(&router, "nobody.test", "/").0, 404);
    // Hosts that only look like a route's, an empty one, a path that
    // climbs out of a prefix: 404 from the router, or (a malformed Host)
    // 400 from its HTTP parser; never another tenant.
    for (host, path) in [
        ("one.test..", "/"),
        ("xone.test", "/"),
        ("one.test.evil", "/"),
        ("", "/"),
        ("two.test", "/ap"),
        ("two.test", "/apiary/../api"),
    ] {
        let (status, _, body) = get_host(&router, host, path);
        assert!(
            status == 404 || status == 400,
            "Host {host:?} {path}: {status} {body:?}"
        );
    }
    // A tenant that does not serve through the host gets 503 with
    // Retry-After: the client may come back.
    let (status, retry, _) = get_host(&router, "idle.test", "/");
    assert_eq!((status, retry), (503, true));
}

#[test]
fn a_wasi_command_is_a_tenant_beside_go_ones() {
    let [addr]: [String; 1] = free_addrs(1).try_into().expect("one address");
    // A WASI command that prints a line and exits 0 (run once).
    let wasi = scratch("serve-wasi").join("hello-wasi.wasm");
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 1024) "from wasi\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 10))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;
    std::fs::write(&wasi, wat::parse_str(wat).unwrap()).unwrap();
    let manifest = format!(
        "{}[[tenant]]\nname = \"wasi\"\nmodule = \"{}\"\nrestart = \"never\"\n",
        hello_tenant("go", "from go", &addr),
        wasi.display()
    );
    let serve = Serve::start("serve-wasi-mixed", &manifest, &[]);
    eventually("the Go tenant to answer", || answers(&addr, "from go"));
    eventually("the WASI tenant to end", || {
        serve.tenant("wasi")["state"] == "ended"
    });
    assert_eq!(serve.tenant("wasi")["last_exit_ok"], true);
    assert!(
        serve.stdout().contains("wasi | from wasi\n"),
        "{}",
        serve.stdout()
    );
    assert_eq!(serve.tenant("go")["state"], "running");
}

#[test]
fn c_rust_and_assemblyscript_guests_are_tenants_beside_go_ones() {
    let [go, c]: [String; 2] = free_addrs(2).try_into().expect("two addresses");
    let tenant = |name: &str, module: &str, extra: &str| {
        format!(
            "[[tenant]]\nname = \"{name}\"\nmodule = \"{}\"\n{extra}\n",
            program(module).display()
        )
    };
    let manifest = format!(
        "{}{}{}{}",
        hello_tenant("go", "from go", &go),
        // The C server finds its listener (the mapped guest address)
        // opened for it, and serves 3 requests before it ends.
        tenant(
            "c",
            "wasi/c-probe.wasm",
            &format!(
                "args = [\"serve\", \"3\"]\nrestart = \"never\"\nlisten = {{ \"127.0.0.1:8080\" = \"{c}\" }}"
            ),
        ),
        tenant(
            "rust",
            "wasi/rust-probe.wasm",
            "args = [\"primes\", \"20000\"]\nrestart = \"never\""
        ),
        tenant(
            "as",
            "wasi/as-probe.wasm",
            "args = [\"x\"]\nrestart = \"never\""
        ),
    );
    let serve = Serve::start("serve-polyglot", &manifest, &[]);
    eventually("the Go tenant to answer", || answers(&go, "from go"));
    for i in 1..=3 {
        let mut body = String::new();
        eventually("the C tenant to answer", || match try_get(&c, "/c") {
            Ok((200, b)) => {
                body = b;
                true
            }
            _ => false,
        });
        assert_eq!(
            body,
            format!("hello from C, request {i}: GET /c HTTP/1.1\n")
        );
    }
    for name in ["c", "rust", "as"] {
        eventually(&format!("the {name} tenant to end"), || {
            serve.tenant(name)["state"] == "ended"
        });
    }
    assert_eq!(serve.tenant("c")["last_exit_ok"], true);
    let out = serve.stdout();
    assert!(out.contains("rust | primes below 20000: 2262\n"), "{out}");
    assert!(
        out.contains("as | hello from AssemblyScript with 1 arguments\n"),
        "{out}"
    );
    assert_eq!(serve.tenant("go")["state"], "running");
}

#[test]
fn wasi_servers_drain_on_sigterm() {
    let [c, go]: [String; 2] = free_addrs(2).try_into().expect("two addresses");
    let tenant = |name: &str, module: &str, addr: &str, args: &str| {
        format!(
            "[[tenant]]\nname = \"{name}\"\nmodule = \"{}\"\n{args}\nlisten = {{ \"127.0.0.1:8080\" = \"{addr}\" }}\n\n",
            program(module).display()
        )
    };
    // A C server blocked in accept, and Go's own server (wasip1) waiting in
    // its poller, each on the listener opened for it.
    let manifest = format!(
        "{}{}",
        tenant("c", "wasi/c-probe.wasm", &c, "args = [\"serve\", \"1000\"]"),
        tenant("go", "wasip1/preopened-server.wasm", &go, ""),
    );
    let mut serve = Serve::start("serve-wasi-drain", &manifest, &["--grace", "30s"]);
    eventually("the C tenant to answer", || {
        matches!(try_get(&c, "/"), Ok((200, _)))
    });
    eventually("the Go tenant to answer", || {
        matches!(try_get(&go, "/"), Ok((200, _)))
    });
    let started = Instant::now();
    serve.signal("TERM");
    assert_eq!(serve.wait_exit(), Some(0), "{}", serve.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "drained, not stopped after the grace period"
    );
    let err = serve.stderr();
    for name in ["c", "go"] {
        assert!(
            err.contains(&format!(
                "{name} | wasabi: drained: stopped accepting and finished its connections"
            )),
            "{err}"
        );
    }
}

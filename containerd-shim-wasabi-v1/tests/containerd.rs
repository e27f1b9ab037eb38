//! The shim under a real containerd (Debian's, installed by `cargo xtask
//! ci`): each test starts its own containerd with its own root, state and
//! socket in a temporary folder, imports images made by `wasabi-oci`, and
//! runs them with `ctr run --runtime io.containerd.wasabi.v1`.
//!
//! If this machine cannot make containers (no namespaces, no cgroups), the
//! tests fail with containerd's own words for why.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use std::time::{Duration, Instant};
use wasabi_oci::testbed::{CGROUP_MOUNT, Containerd, PodNetwork, layered_containerd_bin};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasabi-v1");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A program built by `cargo xtask build-examples`.
fn program(name: &str) -> PathBuf {
    let path = workspace()
        .join("target/programs")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-examples`",
        path.display()
    );
    path
}

/// The test's own containerd: Debian's.
fn start(name: &str) -> Containerd {
    let dir = std::env::temp_dir().join(format!("wasabi-ctd-{name}-{}", std::process::id()));
    Containerd::start(dir, Path::new(SHIM), None).unwrap()
}

/// A containerd that unpacks images with a WebAssembly layer.
fn start_layered(name: &str) -> Containerd {
    let bin = layered_containerd_bin(&workspace());
    assert!(
        bin.join("containerd").is_file(),
        "{} is missing: `cargo xtask ci` builds it",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("wasabi-ctd-{name}-{}", std::process::id()));
    Containerd::start(dir, Path::new(SHIM), Some(bin)).unwrap()
}

/// `ctr run` of `image` as `id`, to its end.
fn run_to_end(
    containerd: &Containerd,
    flags: &[&str],
    image: &str,
    id: &str,
    args: &[&str],
) -> Run {
    let output = containerd
        .run_command(flags, image, id, args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(output, containerd)
}

/// What a container printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output, containerd: &Containerd) -> Run {
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if run.stderr.contains("failed to create shim") || run.stderr.contains("OCI runtime") {
            panic!(
                "this machine could not create the container: {}\ncontainerd's log:\n{}",
                run.stderr,
                containerd.log()
            );
        }
        run
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET of `/` on 127.0.0.1:`port`: the status line and body, or `None`
/// if nothing answers.
fn http_get(port: u16) -> Option<String> {
    use std::io::Write;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn hello_prints_and_exits_as_the_program_does() {
    let containerd = start("hello");
    containerd
        .image("hello", &program("hello"), None, false)
        .unwrap();
    let run = run_to_end(&containerd, &[], "hello", "hello-1", &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("Hello from Go"), "{run:?}");

    // The exit code is the program's, and a Go panic's is 2.
    containerd
        .image("panic-exit", &program("panic-exit"), None, false)
        .unwrap();
    let run = run_to_end(
        &containerd,
        &[],
        "panic-exit",
        "exit-7",
        &["/panic-exit.wasm", "exit", "7"],
    );
    assert_eq!(run.code, Some(7), "{run:?}");
    let run = run_to_end(
        &containerd,
        &[],
        "panic-exit",
        "panics",
        &["/panic-exit.wasm", "panic"],
    );
    assert_eq!(run.code, Some(2), "{run:?}");

    // The container's arguments and environment are the program's, and
    // nothing of the host's.
    containerd
        .image("args-env", &program("args-env"), None, false)
        .unwrap();
    let run = run_to_end(
        &containerd,
        &["--env", "GREETING=hi"],
        "args-env",
        "args",
        &["/args-env.wasm", "one", "two words"],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("arg[2] = \"two words\""), "{run:?}");
    assert!(run.stdout.contains("GREETING=hi"), "{run:?}");
    assert!(!run.stdout.contains("WASABI_HOME"), "{run:?}");
}

#[test]
fn a_server_answers_http_and_stops_within_its_grace_period() {
    let containerd = start("server");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    containerd
        .image(
            "hello-server",
            &program("hello-server"),
            Some(&format!("listen = {{ \"{address}\" = \"{address}\" }}\n")),
            false,
        )
        .unwrap();
    let mut server = containerd
        .run_command(
            &["--net-host"],
            "hello-server",
            "server",
            &["/hello-server.wasm", "-addr", &address],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reply = loop {
        if let Some(reply) = http_get(port) {
            break reply;
        }
        if let Ok(Some(status)) = server.try_wait() {
            let mut stderr = String::new();
            server
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the server ended ({status}) before answering: {stderr}");
        }
        assert!(Instant::now() < deadline, "the server never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("hello\n"), "{reply}");

    // SIGTERM (ctr's default): it stops accepting, finishes, and ends.
    let asked = Instant::now();
    let killed = containerd
        .ctr(&["tasks", "kill", "server"])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let (status, took) = wait_for_exit(
        &mut server,
        asked,
        Duration::from_secs(10),
        "the server did not stop within its grace period",
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(status.code(), Some(0), "a drained server ends cleanly");
    assert!(http_get(port).is_none(), "nothing listens after the stop");
}

/// Starts `idle` as container `id`, waits until it prints, sends
/// `signal`, and returns its exit code and how long it took to end.
fn stop_idle(containerd: &Containerd, id: &str, signal: &str) -> (Option<i32>, Duration) {
    let mut idle = containerd
        .run_command(&[], "idle", id, &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = [0u8; 5];
    idle.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
    assert_eq!(&line, b"idle\n");
    let killed = containerd
        .ctr(&["tasks", "kill", "-s", signal, id])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let (status, took) = wait_for_exit(
        &mut idle,
        Instant::now(),
        Duration::from_secs(10),
        &format!("{signal} did not end it"),
    );
    (status.code(), took)
}

/// Waits for `child` to exit, asked to at `asked`; fails with `failure`
/// after `limit`. Its status and how long it took.
fn wait_for_exit(
    child: &mut std::process::Child,
    asked: Instant,
    limit: Duration,
    failure: &str,
) -> (std::process::ExitStatus, Duration) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, asked.elapsed());
        }
        assert!(asked.elapsed() < limit, "{failure}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_an_idle_program_and_sigkill_at_once() {
    let containerd = start("signals");
    containerd
        .image("idle", &program("idle"), None, false)
        .unwrap();
    // Nothing in flight to finish: a clean stop, at once.
    let (code, took) = stop_idle(&containerd, "idle-term", "SIGTERM");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let (code, _) = stop_idle(&containerd, "idle-kill", "SIGKILL");
    assert_eq!(code, Some(137));

    // A stop while the module is still compiling (seconds, for 10 MB of
    // Go) is not held up by the compile.
    containerd
        .image("big", &program("http-check"), None, false)
        .unwrap();
    let mut big = containerd
        .run_command(&[], "big", "big", &[])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&containerd.ctr(&["tasks", "ls"]).output().unwrap().stdout)
        .contains("RUNNING")
    {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = containerd.ctr(&["tasks", "kill", "big"]).output().unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let (status, _) = wait_for_exit(
        &mut big,
        Instant::now(),
        Duration::from_secs(20),
        "SIGTERM did not end it",
    );
    assert!(
        status.code() == Some(143) || status.code() == Some(0),
        "{status:?}"
    );
}

#[test]
fn a_guest_listens_in_the_pods_network_namespace() {
    let containerd = start("pod");
    let pod = PodNetwork::create(std::process::id() % 200 + 20).unwrap();
    containerd.image(
        "go-net-example",
        &program("go-net-example"),
        Some("listen = { \"0.0.0.0:8080\" = \"0.0.0.0:8080\" }\nallow-connect = [\"0.0.0.0:8080\"]\n"),
        false,
    ).unwrap();
    let netns = pod.ctr_flag();
    let mut server = containerd
        .run_command(
            &["--with-ns", &netns],
            "go-net-example",
            "pod",
            &[
                "/go-net-example.wasm",
                "-addr",
                "0.0.0.0:8080",
                "-n",
                "3",
                "-serve",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // From the host, as a Service's traffic comes: to the pod's address.
    let url = format!("http://{}:8080/hello/42", pod.pod_ip);
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let out = Command::new("curl")
            .args(["-s", "-m", "2", &url])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server ended before answering"
        );
        assert!(Instant::now() < deadline, "the pod never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, format!("hello #42 from {}:8080\n", pod.pod_ip));
    // Nothing listens on the host's own loopback: the guest's socket is
    // the pod's.
    assert!(http_get(8080).is_none_or(|r| !r.contains("hello #")));
    let killed = containerd.ctr(&["tasks", "kill", "pod"]).output().unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("3 requests served and answered"),
        "{stderr}"
    );
}

#[test]
fn the_container_memory_limit_is_the_guest_limit() {
    let containerd = start("memory");
    containerd
        .image("mem-hog", &program("mem-hog"), None, false)
        .unwrap();
    let run = run_to_end(
        &containerd,
        &["--memory-limit", "201326592", "--mount", CGROUP_MOUNT],
        "mem-hog",
        "hog",
        &[],
    );
    // Refused by Wasabi's limit, with its message, before the kernel's
    // OOM killer (137) had to step in.
    assert_eq!(run.code, Some(134), "{run:?}");
    assert!(run.stderr.contains("max-memory"), "{run:?}");
    assert!(run.stdout.contains("holding 64 MiB"), "{run:?}");
    // A limit from /wasabi.toml below the container's holds too.
    containerd
        .image(
            "small-hog",
            &program("mem-hog"),
            Some("max-memory = \"40MiB\"\n"),
            false,
        )
        .unwrap();
    let run = run_to_end(
        &containerd,
        &["--memory-limit", "201326592", "--mount", CGROUP_MOUNT],
        "small-hog",
        "small-hog",
        &[],
    );
    assert_eq!(run.code, Some(134), "{run:?}");
    assert!(!run.stdout.contains("holding 64 MiB"), "{run:?}");
}

#[test]
fn nothing_is_granted_without_wasabi_toml() {
    let containerd = start("deny");
    containerd
        .image("server-ungranted", &program("hello-server"), None, false)
        .unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let run = run_to_end(
        &containerd,
        &["--net-host"],
        "server-ungranted",
        "ungranted",
        &["/hello-server.wasm", "-addr", &address],
    );
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("listen"),
        "the refusal names the field: {run:?}"
    );
    assert!(http_get(port).is_none());
}

#[test]
fn hostile_images_are_refused_with_a_reason() {
    let containerd = start("hostile");
    // A configuration may not rename the module or replace its arguments.
    containerd
        .image(
            "renamed",
            &program("hello"),
            Some("module = \"/bin/sh\"\n"),
            false,
        )
        .unwrap();
    let run = run_to_end(&containerd, &[], "renamed", "renamed", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("come from the container"), "{run:?}");

    // An environment entry with no name is refused, not passed on.
    containerd
        .image("plain", &program("hello"), None, false)
        .unwrap();
    let run = run_to_end(&containerd, &["--env", "=sneaky"], "plain", "nameless", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("environment"), "{run:?}");

    // An unknown field is an error, not ignored.
    containerd
        .image(
            "typo",
            &program("hello"),
            Some("allow-everything = true\n"),
            false,
        )
        .unwrap();
    let run = run_to_end(&containerd, &[], "typo", "typo", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("/wasabi.toml"), "{run:?}");

    // Machine code in the image is never run, however it is sealed: code
    // sealed with another installation's key is refused.
    let dir = containerd.dir.join("forger");
    let forger = wasabi_core::Runtime::new(wasabi_core::RuntimeConfig {
        key: wasabi_core::KeySource::File(dir.join("install.key")),
        ..wasabi_core::RuntimeConfig::default()
    })
    .unwrap();
    let sealed = forger
        .compile_bytes(
            Path::new("hello.wasm"),
            std::fs::read(program("hello")).unwrap(),
        )
        .unwrap();
    let forged = dir.join("forged.wasm");
    std::fs::write(&forged, sealed).unwrap();
    containerd.image("forged", &forged, None, false).unwrap();
    let run = run_to_end(&containerd, &[], "forged", "forged", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("precompiled"), "{run:?}");
    assert!(!run.stdout.contains("Hello"), "{run:?}");

    // Nor is a native program named .wasm.
    let native = dir.join("native.wasm");
    std::fs::copy("/bin/true", &native).unwrap();
    containerd.image("native", &native, None, false).unwrap();
    let run = run_to_end(&containerd, &[], "native", "native", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("native executable"), "{run:?}");
}

#[test]
fn a_second_container_of_an_image_compiles_nothing() {
    let containerd = start_layered("layers");
    containerd
        .image("hello", &program("hello"), None, true)
        .unwrap();
    for id in ["first", "second", "third"] {
        let run = run_to_end(&containerd, &[], "hello", id, &[]);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.stdout.contains("Hello from Go"), "{run:?}");
    }
    let log = containerd.log();
    // The shim's compiler made the image's code once, sealed with the
    // node's key; containerd keeps it beside the image, and every
    // container ran it.
    assert_eq!(
        log.matches("precompiling layers for image: hello:latest")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("running /hello.wasm (Precompiled)").count(),
        3,
        "{log}"
    );
    assert!(containerd.dir.join("wasabi/install.key").is_file());
}

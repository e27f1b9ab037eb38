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
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.wasabi.v1";
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

/// The containerd release that unpacks images with a WebAssembly layer
/// (1.6.25+, 1.7.7+: Debian 12's 1.6.20 does not), which `cargo xtask ci`
/// builds from the Go module proxy.
pub const LAYERED_CONTAINERD: &str = "containerd-1.7.27";

/// A containerd of the test's own, stopped (with its containers) on drop.
struct Containerd {
    dir: PathBuf,
    daemon: Child,
    /// Where its `containerd` and `ctr` are; `None`: the system's.
    bin: Option<PathBuf>,
}

impl Containerd {
    /// The system's containerd (Debian's).
    fn start(name: &str) -> Containerd {
        Containerd::start_from(name, None)
    }

    /// The containerd that can unpack images with a WebAssembly layer.
    fn start_layered(name: &str) -> Containerd {
        let bin = workspace()
            .join("target/tools")
            .join(LAYERED_CONTAINERD)
            .join("bin");
        assert!(
            bin.join("containerd").is_file(),
            "{} is missing: `cargo xtask ci` builds it",
            bin.display()
        );
        Containerd::start_from(name, Some(bin))
    }

    fn tool(&self, name: &str) -> PathBuf {
        match &self.bin {
            Some(bin) => bin.join(name),
            None => PathBuf::from(name),
        }
    }

    fn start_from(name: &str, bin: Option<PathBuf>) -> Containerd {
        let dir = std::env::temp_dir().join(format!("wasabi-ctd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n"
            ),
        )
        .unwrap();
        let shim_dir = Path::new(SHIM).parent().unwrap();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let program = match &bin {
            Some(bin) => bin.join("containerd"),
            None => PathBuf::from("containerd"),
        };
        let daemon = Command::new(program)
            .arg("--config")
            .arg(dir.join("config.toml"))
            // Not the workspace: containerd looks for the shim in its
            // working directory too, where a folder has the shim's name.
            .current_dir(&dir)
            .env("PATH", path)
            .env("WASABI_HOME", dir.join("wasabi"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start containerd ({e}): `cargo xtask ci` installs Debian's containerd"
                )
            });
        let containerd = Containerd { dir, daemon, bin };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let version = containerd.ctr(&["version"]).output().unwrap();
            if version.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}\n{}",
                String::from_utf8_lossy(&version.stderr),
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut ctr = Command::new(self.tool("ctr"));
        ctr.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args);
        ctr
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Builds an image of `module` (with `wasabi.toml` text `config`, and
    /// the module as its own layer when `wasm_layer`) and imports it.
    fn image(&self, name: &str, module: &Path, config: Option<&str>, wasm_layer: bool) {
        let config_path = self.dir.join(format!("{name}.toml"));
        if let Some(text) = config {
            std::fs::write(&config_path, text).unwrap();
        }
        let archive = self.dir.join(format!("{name}.tar"));
        wasabi_oci::build_image(&wasabi_oci::ImageSpec {
            module,
            name,
            output: &archive,
            config: config.map(|_| config_path.as_path()),
            args: &[],
            wasm_layer,
        })
        .unwrap();
        let imported = self
            .ctr(&["images", "import", "--all-platforms"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            imported.status.success(),
            "ctr images import: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }

    /// `ctr run` of `image` as container `id` with `flags` before the
    /// image and `args` (the whole command line, module first) after.
    fn run_command(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Command {
        let mut ctr = self.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--platform",
            "wasip1/wasm",
        ]);
        ctr.args(flags)
            .arg(format!("{image}:latest"))
            .arg(id)
            .args(args);
        ctr
    }

    fn run(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Run {
        let output = self
            .run_command(flags, image, id, args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(output, self)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Ok(tasks) = self.ctr(&["tasks", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&tasks.stdout).lines() {
                let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
                std::thread::sleep(Duration::from_millis(200));
                let _ = self.ctr(&["tasks", "delete", id]).output();
                let _ = self.ctr(&["containers", "rm", id]).output();
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

/// The cgroup of the container, mounted where Kubernetes mounts it for
/// every container: the shim reads the memory limit there.
const CGROUP_MOUNT: &str =
    "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev";

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
    let containerd = Containerd::start("hello");
    containerd.image("hello", &program("hello"), None, false);
    let run = containerd.run(&[], "hello", "hello-1", &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("Hello from Go"), "{run:?}");

    // The exit code is the program's, and a Go panic's is 2.
    containerd.image("panic-exit", &program("panic-exit"), None, false);
    let run = containerd.run(
        &[],
        "panic-exit",
        "exit-7",
        &["/panic-exit.wasm", "exit", "7"],
    );
    assert_eq!(run.code, Some(7), "{run:?}");
    let run = containerd.run(&[], "panic-exit", "panics", &["/panic-exit.wasm", "panic"]);
    assert_eq!(run.code, Some(2), "{run:?}");

    // The container's arguments and environment are the program's, and
    // nothing of the host's.
    containerd.image("args-env", &program("args-env"), None, false);
    let run = containerd.run(
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
    let containerd = Containerd::start("server");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    containerd.image(
        "hello-server",
        &program("hello-server"),
        Some(&format!("listen = {{ \"{address}\" = \"{address}\" }}\n")),
        false,
    );
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
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the server did not stop within its grace period"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?}",
        asked.elapsed()
    );
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
    let asked = Instant::now();
    loop {
        if let Some(status) = idle.try_wait().unwrap() {
            return (status.code(), asked.elapsed());
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{signal} did not end it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_an_idle_program_and_sigkill_at_once() {
    let containerd = Containerd::start("signals");
    containerd.image("idle", &program("idle"), None, false);
    // Nothing in flight to finish: a clean stop, at once.
    let (code, took) = stop_idle(&containerd, "idle-term", "SIGTERM");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let (code, _) = stop_idle(&containerd, "idle-kill", "SIGKILL");
    assert_eq!(code, Some(137));

    // A stop while the module is still compiling (seconds, for 10 MB of
    // Go) is not held up by the compile.
    containerd.image("big", &program("http-check"), None, false);
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
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = big.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "SIGTERM did not end it"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.code() == Some(143) || status.code() == Some(0),
        "{status:?}"
    );
}

/// A network namespace with a veth pair to the host, as a pod has (made
/// with iproute2; removed on drop).
struct PodNetwork {
    name: String,
    host_link: String,
    pod_ip: String,
}

impl PodNetwork {
    fn create() -> PodNetwork {
        let n = std::process::id() % 200 + 20;
        let name = format!("wasabi-pod-{n}");
        let host_link = format!("wsb{n}h");
        let pod_link = format!("wsb{n}p");
        let pod_ip = format!("10.213.{n}.2");
        let ip = |args: &str| {
            let out = Command::new("ip")
                .args(args.split(' '))
                .output()
                .expect("iproute2's `ip`");
            assert!(
                out.status.success(),
                "ip {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let network = PodNetwork {
            name: name.clone(),
            host_link: host_link.clone(),
            pod_ip: pod_ip.clone(),
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &host_link])
            .output();
        ip(&format!("netns add {name}"));
        ip(&format!(
            "link add {host_link} type veth peer name {pod_link}"
        ));
        ip(&format!("link set {pod_link} netns {name}"));
        ip(&format!("addr add 10.213.{n}.1/24 dev {host_link}"));
        ip(&format!("link set {host_link} up"));
        ip(&format!(
            "netns exec {name} ip addr add {pod_ip}/24 dev {pod_link}"
        ));
        ip(&format!("netns exec {name} ip link set {pod_link} up"));
        ip(&format!("netns exec {name} ip link set lo up"));
        network
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
fn a_guest_listens_in_the_pods_network_namespace() {
    let containerd = Containerd::start("pod");
    let pod = PodNetwork::create();
    containerd.image(
        "go-net-example",
        &program("go-net-example"),
        Some("listen = { \"0.0.0.0:8080\" = \"0.0.0.0:8080\" }\nallow-connect = [\"0.0.0.0:8080\"]\n"),
        false,
    );
    let netns = format!("network:/var/run/netns/{}", pod.name);
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
    let containerd = Containerd::start("memory");
    containerd.image("mem-hog", &program("mem-hog"), None, false);
    let run = containerd.run(
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
    containerd.image(
        "small-hog",
        &program("mem-hog"),
        Some("max-memory = \"40MiB\"\n"),
        false,
    );
    let run = containerd.run(
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
    let containerd = Containerd::start("deny");
    containerd.image("server-ungranted", &program("hello-server"), None, false);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let run = containerd.run(
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
    let containerd = Containerd::start("hostile");
    // A configuration may not rename the module or replace its arguments.
    containerd.image(
        "renamed",
        &program("hello"),
        Some("module = \"/bin/sh\"\n"),
        false,
    );
    let run = containerd.run(&[], "renamed", "renamed", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("come from the container"), "{run:?}");

    // An unknown field is an error, not ignored.
    containerd.image(
        "typo",
        &program("hello"),
        Some("allow-everything = true\n"),
        false,
    );
    let run = containerd.run(&[], "typo", "typo", &[]);
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
    containerd.image("forged", &forged, None, false);
    let run = containerd.run(&[], "forged", "forged", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("precompiled"), "{run:?}");
    assert!(!run.stdout.contains("Hello"), "{run:?}");

    // Nor is a native program named .wasm.
    let native = dir.join("native.wasm");
    std::fs::copy("/bin/true", &native).unwrap();
    containerd.image("native", &native, None, false);
    let run = containerd.run(&[], "native", "native", &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("native executable"), "{run:?}");
}

#[test]
fn a_second_container_of_an_image_compiles_nothing() {
    let containerd = Containerd::start_layered("layers");
    containerd.image("hello", &program("hello"), None, true);
    for id in ["first", "second", "third"] {
        let run = containerd.run(&[], "hello", id, &[]);
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

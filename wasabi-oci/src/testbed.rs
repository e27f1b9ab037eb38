//! A private containerd for tests and benches: its own root, state and
//! socket in a folder, the shim found on its `PATH`, images imported from
//! archives [`build_image`](crate::build_image) writes, and pod-like
//! network namespaces. Everything it starts is stopped on drop.
//!
//! It needs root, containerd and `ctr` (Debian's, or a folder of other
//! builds), and iproute2 for [`PodNetwork`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The containerd runtime name of Wasabi's shim.
pub const RUNTIME: &str = "io.containerd.wasabi.v1";

/// The containerd release that unpacks images with a WebAssembly layer
/// (1.6.25+ and 1.7.7+ do; Debian 12's 1.6.20 does not), which `cargo
/// xtask ci` builds from the Go module proxy into
/// `target/tools/containerd-<version>/bin`.
pub const LAYERED_CONTAINERD_VERSION: &str = "1.7.27";

/// The folder `cargo xtask ci` builds [`LAYERED_CONTAINERD_VERSION`] into,
/// under the workspace `root`.
pub fn layered_containerd_bin(root: &Path) -> PathBuf {
    root.join("target/tools")
        .join(format!("containerd-{LAYERED_CONTAINERD_VERSION}"))
        .join("bin")
}

/// The container's cgroup, mounted where Kubernetes mounts it for every
/// container (`ctr run` does not): the shim reads its memory limit there.
pub const CGROUP_MOUNT: &str =
    "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev";

/// A containerd of its own, stopped (with its containers) on drop.
pub struct Containerd {
    /// Its folder: configuration, root, state, socket, log, images.
    pub dir: PathBuf,
    daemon: Child,
    /// Where its `containerd` and `ctr` are; `None`: the system's.
    bin: Option<PathBuf>,
}

impl Containerd {
    /// Starts containerd (from `bin`, or the system's) in the empty folder
    /// `dir`, with the shim binary `shim` on its `PATH` and `WASABI_HOME`
    /// (where the shim keeps the node's key) in `dir`.
    pub fn start(dir: PathBuf, shim: &Path, bin: Option<PathBuf>) -> anyhow::Result<Containerd> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
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
        )?;
        let shim_dir = shim.parent().context("the shim's folder")?;
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let program = match &bin {
            Some(bin) => bin.join("containerd"),
            None => PathBuf::from("containerd"),
        };
        let daemon = Command::new(&program)
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
            .with_context(|| {
                format!(
                    "cannot start {} (`cargo xtask ci` installs Debian's containerd)",
                    program.display()
                )
            })?;
        let containerd = Containerd { dir, daemon, bin };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let version = containerd.ctr(&["version"]).output()?;
            if version.status.success() {
                return Ok(containerd);
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not start: {}\n{}",
                    String::from_utf8_lossy(&version.stderr),
                    containerd.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr` with this containerd's socket and `args`.
    pub fn ctr(&self, args: &[&str]) -> Command {
        let program = match &self.bin {
            Some(bin) => bin.join("ctr"),
            None => PathBuf::from("ctr"),
        };
        let mut ctr = Command::new(program);
        ctr.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args);
        ctr
    }

    /// containerd's log, where the shim's lines go too.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Builds an image `name` of `module` (with `wasabi.toml` text
    /// `config`, and the module as a layer of its own when `wasm_layer`)
    /// and imports it.
    pub fn image(
        &self,
        name: &str,
        module: &Path,
        config: Option<&str>,
        wasm_layer: bool,
    ) -> anyhow::Result<()> {
        let config_path = self.dir.join(format!("{name}.toml"));
        if let Some(text) = config {
            std::fs::write(&config_path, text)?;
        }
        let archive = self.dir.join(format!("{name}.tar"));
        crate::build_image(&crate::ImageSpec {
            module,
            name,
            output: &archive,
            config: config.map(|_| config_path.as_path()),
            args: &[],
            wasm_layer,
        })?;
        let imported = self
            .ctr(&["images", "import", "--all-platforms"])
            .arg(&archive)
            .output()?;
        if !imported.status.success() {
            bail!(
                "ctr images import: {}",
                String::from_utf8_lossy(&imported.stderr)
            );
        }
        Ok(())
    }

    /// `ctr run --rm` of `image` as container `id` on Wasabi's runtime,
    /// with `flags` before the image and `args` (the whole command line,
    /// module first; empty: the image's) after.
    pub fn run_command(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Command {
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
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Ok(tasks) = self.ctr(&["tasks", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&tasks.stdout).lines() {
                let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
            }
            std::thread::sleep(Duration::from_millis(200));
            for id in String::from_utf8_lossy(&tasks.stdout).lines() {
                let _ = self.ctr(&["tasks", "delete", id]).output();
                let _ = self.ctr(&["containers", "rm", id]).output();
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A network namespace with a veth pair to the host, as a pod has; removed
/// on drop.
pub struct PodNetwork {
    /// The namespace's name (`/var/run/netns/<name>`).
    pub name: String,
    host_link: String,
    /// The pod's address, reachable from the host.
    pub pod_ip: String,
}

impl PodNetwork {
    /// Pod network number `n` (0..=250): 10.213.`n`.2, its host side .1.
    pub fn create(n: u32) -> anyhow::Result<PodNetwork> {
        let name = format!("wasabi-pod-{n}");
        let host_link = format!("wsb{n}h");
        let pod_link = format!("wsb{n}p");
        let pod_ip = format!("10.213.{n}.2");
        let ip = |args: &str| -> anyhow::Result<()> {
            let out = Command::new("ip")
                .args(args.split(' '))
                .output()
                .context("iproute2's `ip`")?;
            if !out.status.success() {
                bail!("ip {args}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &host_link])
            .output();
        let network = PodNetwork {
            name: name.clone(),
            host_link: host_link.clone(),
            pod_ip: pod_ip.clone(),
        };
        ip(&format!("netns add {name}"))?;
        ip(&format!(
            "link add {host_link} type veth peer name {pod_link}"
        ))?;
        ip(&format!("link set {pod_link} netns {name}"))?;
        ip(&format!("addr add 10.213.{n}.1/24 dev {host_link}"))?;
        ip(&format!("link set {host_link} up"))?;
        ip(&format!(
            "netns exec {name} ip addr add {pod_ip}/24 dev {pod_link}"
        ))?;
        ip(&format!("netns exec {name} ip link set {pod_link} up"))?;
        ip(&format!("netns exec {name} ip link set lo up"))?;
        Ok(network)
    }

    /// `ctr run`'s flag that puts a container in this namespace.
    pub fn ctr_flag(&self) -> String {
        format!("network:/var/run/netns/{}", self.name)
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

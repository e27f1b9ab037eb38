//! `cargo xtask pods`: what a pod costs through containerd and Wasabi's
//! shim, against a tenant of `wasabi serve`, measured in one run.
//!
//! - **pod start**: from `ctr run` to the pod's hello-server answering
//!   HTTP on its own network namespace's address (what a Service would
//!   reach), for `count` pods, each with a namespace of its own; under
//!   containerd 1.7 with the image's WebAssembly layer (compiled once per
//!   node by the shim's compiler, then loaded), and under Debian's 1.6
//!   (the module compiled in every container).
//! - **memory per pod**: the proportional set size (PSS: shared pages
//!   split between their users) of every process of the shim — its daemon,
//!   its zygote and the container's own process — with all the pods
//!   running, divided by their number.
//! - **serve**: a hello-server tenant's spawn to accepting (the bench's
//!   `spawn`), and the resident memory each idle tenant adds to `wasabi
//!   serve` (the bench's density figure).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasabi_oci::testbed::{Containerd, PodNetwork, layered_containerd_bin};

use crate::bench::{Tools, density};
use crate::{Binaries, output, step};

/// The pods' configuration: the server on the pod's port 8080.
const POD_CONFIG: &str = "listen = { \"0.0.0.0:8080\" = \"0.0.0.0:8080\" }\n";

/// Measures and prints (and with `publish` writes into
/// docs/performance.md) the figures above for `count` pods and tenants.
pub fn pods(root: &Path, count: usize, publish: bool) -> anyhow::Result<()> {
    if !(2..=200).contains(&count) {
        bail!("--count must be between 2 and 200");
    }
    crate::build_examples(root)?;
    let tools = Tools::build(
        root,
        "release",
        &["containerd-shim-wasabi-v1"],
        Binaries::Build,
    )?;
    let shim = root.join("target/release/containerd-shim-wasabi-v1");
    let server = tools.programs.join("hello-server.wasm");
    let out = root.join("target/pods");
    std::fs::create_dir_all(&out)?;

    step(&format!(
        "{count} pods under containerd {} (a WebAssembly layer, compiled once per node)",
        wasabi_oci::testbed::LAYERED_CONTAINERD_VERSION
    ));
    let layered = Containerd::start(
        out.join("containerd-layered"),
        &shim,
        Some(layered_containerd_bin(root)),
    )?;
    layered.image("server", &server, Some(POD_CONFIG), true)?;
    let layered_figures = measure_pods(&layered, &shim, count)?;
    drop(layered);

    step(&format!(
        "{count} pods under Debian's containerd (the module compiled in each)"
    ));
    let debian = Containerd::start(out.join("containerd-debian"), &shim, None)?;
    debian.image("server", &server, Some(POD_CONFIG), false)?;
    let debian_figures = measure_pods(&debian, &shim, count)?;
    drop(debian);

    step("wasabi serve: spawn and memory per tenant");
    let spawn_out = output(
        std::process::Command::new(&tools.spawn)
            .arg(&server)
            .arg("20"),
    )?;
    let spawn: serde_json::Value = serde_json::from_str(spawn_out.trim())?;
    let spawn_ms = spawn["median_ms"].as_f64().context("median_ms")?;
    let per_tenant = density(&tools, count)?;

    let table = format!(
        "| {count} hello-servers | start (median) | first start | memory each |\n\
         | --- | ---: | ---: | ---: |\n\
         | pods, containerd {v} + shim, WebAssembly layer | {:.0} ms | {:.0} ms | {:.1} MiB (PSS) |\n\
         | pods, Debian's containerd 1.6 + shim, module in the image's files | {:.0} ms | {:.0} ms | {:.1} MiB (PSS) |\n\
         | tenants of one `wasabi serve` | {spawn_ms:.1} ms | – | {per_tenant:.1} MiB (RSS added) |\n",
        layered_figures.median_start_ms,
        layered_figures.first_start_ms,
        layered_figures.pss_mib_per_pod,
        debian_figures.median_start_ms,
        debian_figures.first_start_ms,
        debian_figures.pss_mib_per_pod,
        v = wasabi_oci::testbed::LAYERED_CONTAINERD_VERSION,
    );
    println!("\n{table}");
    std::fs::write(out.join("results.md"), &table)?;
    if publish {
        publish_table(root, &table)?;
    }
    Ok(())
}

struct PodFigures {
    first_start_ms: f64,
    median_start_ms: f64,
    pss_mib_per_pod: f64,
}

/// Starts `count` server pods one after another, each in a network
/// namespace of its own, timing each to its first answer; then measures
/// the shim's memory with all of them running.
fn measure_pods(containerd: &Containerd, shim: &Path, count: usize) -> anyhow::Result<PodFigures> {
    let mut networks = Vec::new();
    let mut pods: Vec<Child> = Vec::new();
    let mut starts = Vec::new();
    let result = (|| -> anyhow::Result<PodFigures> {
        for i in 0..count {
            let network = PodNetwork::create(i as u32 + 1)?;
            let flag = network.ctr_flag();
            let started = Instant::now();
            let pod = containerd
                .run_command(
                    &["--with-ns", &flag],
                    "server",
                    &format!("pod-{i}"),
                    &["/hello-server.wasm", "-addr", "0.0.0.0:8080"],
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            pods.push(pod);
            wait_answering(&network.pod_ip, started + Duration::from_secs(120))
                .with_context(|| format!("pod {i}: {}", containerd.log()))?;
            starts.push(started.elapsed().as_secs_f64() * 1000.0);
            networks.push(network);
        }
        std::thread::sleep(Duration::from_millis(500));
        let pss = shim_pss_kib(shim)?;
        let first = starts[0];
        let mut rest = starts[1..].to_vec();
        rest.sort_by(f64::total_cmp);
        Ok(PodFigures {
            first_start_ms: first,
            median_start_ms: rest[rest.len() / 2],
            pss_mib_per_pod: pss / 1024.0 / count as f64,
        })
    })();
    for (i, mut pod) in pods.into_iter().enumerate() {
        let _ = containerd
            .ctr(&["tasks", "kill", "-s", "SIGKILL", &format!("pod-{i}")])
            .output();
        let _ = pod.wait();
    }
    drop(networks);
    result
}

/// Polls `ip`:8080 until an HTTP GET answers, or `deadline`.
fn wait_answering(ip: &str, deadline: Instant) -> anyhow::Result<()> {
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect((ip, 8080)) {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            if reply.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("no answer from {ip}:8080");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The PSS, in KiB, of every process running the shim's binary.
fn shim_pss_kib(shim: &Path) -> anyhow::Result<f64> {
    let shim: PathBuf = shim.canonicalize()?;
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
        if exe.ok().as_deref() != Some(shim.as_path()) {
            continue;
        }
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        total += rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    Ok(total)
}

/// Replaces the pods section of docs/performance.md with `table`.
fn publish_table(root: &Path, table: &str) -> anyhow::Result<()> {
    const START: &str = "<!-- pods: cargo xtask pods --publish -->";
    const END: &str = "<!-- /pods -->";
    let path = root.join("docs/performance.md");
    let text = std::fs::read_to_string(&path)?;
    let section = format!(
        "{START}\n## Pods through containerd, against tenants of one process\n\n\
         `cargo xtask pods --publish` (the method is in `xtask/src/pods.rs`): \
         hello-server pods started one after another through `ctr run` and Wasabi's \
         shim, each in a network namespace of its own, timed to their first HTTP \
         answer on the pod's address, then the proportional memory of every shim \
         process with all of them running; beside them, `wasabi serve`'s spawn of \
         a hello-server tenant to accepting and the resident memory each idle \
         tenant adds. Measured {}.\n\n{table}{END}",
        chrono_free_date()
    );
    let new = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &text[..a], &text[b + END.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(&path, new)?;
    Ok(())
}

/// Today's date, from `date` (no date crate for one string).
fn chrono_free_date() -> String {
    output(std::process::Command::new("date").arg("+%Y-%m-%d"))
        .map(|d| d.trim().to_string())
        .unwrap_or_default()
}

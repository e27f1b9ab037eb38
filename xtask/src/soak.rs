//! `cargo xtask soak`: Wasabi under load and faults for minutes, judged
//! from outside (not in CI; figures in docs/reliability.md with --publish).
//!
//! 1. `wasabi serve` (release build) runs 100 tenants: 90 healthy HTTP
//!    servers (hello-server), 5 that crash every second (crash-loop, restart
//!    always) and 5 that grow past their memory limit (mem-hog, restart
//!    always). wrk, an outside load generator, sends the healthy tenants the
//!    requested number of requests in rounds, while a thread of clients
//!    resets connections mid-request (RST with a request half sent, or sent
//!    and still being answered). Counted: requests, lost requests on the
//!    healthy tenants (wrk's socket errors, timeouts and non-2xx answers),
//!    host panics (in wasabi's stderr), and the serve process's descriptors
//!    and resident memory before the load and after it.
//! 2. Tenant churn: 10,000 tenant start/stop cycles through the supervisor
//!    (`wasabi-benches`' `churn`), with the same before/after figures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{apt_install, build_examples, cargo, output, run, step};

const HEALTHY: usize = 90;
const CRASHING: usize = 5;
const HOGS: usize = 5;
/// The load comes in this many rounds, each measured when idle after it.
const ROUNDS: u64 = 3;

/// What one wrk run reported.
#[derive(Debug, Default, Clone, Copy)]
struct Wrk {
    requests: u64,
    errors: u64,
    non_2xx: u64,
}

fn parse_wrk(text: &str) -> Wrk {
    let mut w = Wrk::default();
    for line in text.lines().map(str::trim) {
        if line.contains(" requests in ") {
            w.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            w.errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            w.non_2xx = rest.trim().parse().unwrap_or(0);
        }
    }
    w
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One HTTP GET with a fresh connection; the status code.
fn get(port: u16) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn proc_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Clients that reset connections mid-request until `stop`.
fn resetter(ports: Vec<u16>, stop: Arc<AtomicBool>, resets: Arc<AtomicU64>) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let port = ports[i % ports.len()];
        let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        let sock = socket2::SockRef::from(&s);
        let _ = sock.set_linger(Some(Duration::ZERO));
        let mut s = s;
        // Half a request, or a whole one still being answered.
        let _ = if i.is_multiple_of(2) {
            s.write_all(b"GET /?delay=20ms HTT")
        } else {
            s.write_all(b"GET /?delay=20ms HTTP/1.1\r\nHost: soak\r\n\r\n")
        };
        std::thread::sleep(Duration::from_millis(2));
        drop(s); // linger 0: RST
        resets.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Runs the soak: `requests` in total over the healthy tenants.
pub fn soak(root: &Path, requests: u64, cycles: u64, publish: bool) -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        step("installing wrk (the outside load generator)");
        apt_install(&["wrk"])?;
    }
    build_examples(root)?;
    step("building wasabi (release)");
    run(cargo()
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "wasabi-cli",
            "-p",
            "wasabi-benches",
        ])
        .current_dir(root))?;
    let dir = root.join("target/soak");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let programs = root.join("target/programs");
    let mut manifest = String::from("[defaults]\nmax-memory = \"64MiB\"\n\n");
    let mut faults = String::new();
    let mut ports = Vec::new();
    // Distinct ports: every probe stays bound until all are chosen.
    let probes: Vec<std::net::TcpListener> = (0..HEALTHY)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let chosen: Vec<u16> = probes
        .iter()
        .map(|p| p.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    drop(probes);
    for (i, port) in chosen.into_iter().enumerate() {
        ports.push(port);
        manifest += &format!(
            "[[tenant]]\nname = \"web{i}\"\nmodule = \"{}\"\nlisten = {{ \"127.0.0.1:8080\" = \"127.0.0.1:{port}\" }}\nenv = {{ GREETING = \"hi from {i}\" }}\nrestart = \"on-failure\"\n\n",
            programs.join("hello-server.wasm").display()
        );
    }
    for i in 0..CRASHING {
        faults += &format!(
            "[[tenant]]\nname = \"crash{i}\"\nmodule = \"{}\"\nrestart = \"always\"\n\n",
            programs.join("crash-loop.wasm").display()
        );
    }
    for i in 0..HOGS {
        faults += &format!(
            "[[tenant]]\nname = \"hog{i}\"\nmodule = \"{}\"\nmax-memory = \"48MiB\"\nrestart = \"always\"\n\n",
            programs.join("mem-hog.wasm").display()
        );
    }
    // The healthy tenants alone first (the baseline), then the faulty ones
    // join for the load (SIGHUP), then leave again before the last figures.
    let healthy_only = manifest.clone();
    let with_faults = manifest + &faults;
    std::fs::write(dir.join("manifest.toml"), &healthy_only)?;
    let admin = format!("127.0.0.1:{}", free_port()?);
    step(&format!(
        "wasabi serve: {HEALTHY} healthy tenants, {CRASHING} crashing, {HOGS} over their memory limit"
    ));
    let mut serve = Command::new(root.join("target/release/wasabi"))
        .args([
            "serve",
            "--admin",
            &admin,
            "--max-instances",
            "200",
            "--cache-dir",
        ])
        .arg(dir.join("cache"))
        .arg(dir.join("manifest.toml"))
        .env("WASABI_HOME", dir.join("home"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("serve.stdout"))?)
        .stderr(std::fs::File::create(dir.join("serve.stderr"))?)
        .spawn()
        .context("could not start wasabi serve")?;
    let pid = serve.id();
    let result = (|| -> anyhow::Result<String> {
        let ready = Instant::now();
        wait_until_answering(&ports)?;
        println!(
            "all {HEALTHY} healthy tenants answer ({:.1} s)",
            ready.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(2));
        let (fds_before, rss_before) = (proc_fds(pid), proc_rss_kib(pid));
        keep_smaps(pid, &dir, "before");
        let tenants_before = tenant_memory_kib(&admin);
        let split_before = memory_split(pid);
        // Rounds of an equal share of the requests: what the host keeps after
        // the first is its warm state; the later ones must end where it did.
        let mut total = Wrk::default();
        let mut rss_peak = rss_before;
        let mut resets_done = 0;
        let mut secs = 0.0;
        let mut after = Vec::new();
        let mut splits = Vec::new();
        let mut status = String::new();
        let mut next;
        for round in 1..=ROUNDS {
            std::fs::write(dir.join("manifest.toml"), &with_faults)?;
            run(Command::new("kill").args(["-HUP", &pid.to_string()]))?;
            let stop = Arc::new(AtomicBool::new(false));
            let resets = Arc::new(AtomicU64::new(0));
            let resetting = {
                let (ports, stop, resets) = (ports.clone(), Arc::clone(&stop), Arc::clone(&resets));
                std::thread::spawn(move || resetter(ports, stop, resets))
            };
            step(&format!(
                "load, round {round} of {ROUNDS}: {} requests with wrk, connections reset mid-request",
                requests / ROUNDS
            ));
            let started = Instant::now();
            let goal = requests * round / ROUNDS;
            // Each round loads the same tenants, in the same order.
            next = 0;
            while total.requests < goal {
                // Four tenants at a time, one wrk each (wrk aims at one address).
                let batch: Vec<u16> = (0..4).map(|k| ports[(next + k) % ports.len()]).collect();
                next += 4;
                let runs: Vec<_> = batch
                    .iter()
                    .map(|port| {
                        Command::new("wrk")
                            .args(["-t1", "-c8", "-d2s", "--timeout", "2s"])
                            .arg(format!("http://127.0.0.1:{port}/"))
                            .stdout(Stdio::piped())
                            .spawn()
                    })
                    .collect::<Result<_, _>>()?;
                for child in runs {
                    let out = child.wait_with_output()?;
                    let w = parse_wrk(&String::from_utf8_lossy(&out.stdout));
                    total.requests += w.requests;
                    total.errors += w.errors;
                    total.non_2xx += w.non_2xx;
                }
                rss_peak = rss_peak.max(proc_rss_kib(pid));
                print!(
                    "\r{} requests, {} lost",
                    total.requests,
                    total.errors + total.non_2xx
                );
                std::io::stdout().flush()?;
            }
            println!();
            secs += started.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let _ = resetting.join();
            resets_done += resets.load(Ordering::Relaxed);
            status = output(Command::new("curl").args(["-s", &format!("http://{admin}/tenants")]))
                .unwrap_or_default();
            // The faulty tenants leave; idle again, the same tenants as before.
            std::fs::write(dir.join("manifest.toml"), &healthy_only)?;
            run(Command::new("kill").args(["-HUP", &pid.to_string()]))?;
            std::thread::sleep(Duration::from_secs(5));
            after.push((proc_fds(pid), proc_rss_kib(pid), tenant_memory_kib(&admin)));
            splits.push(memory_split(pid));
            keep_smaps(pid, &dir, &format!("round{round}"));
        }
        // Every healthy tenant restarted fresh (a changed environment makes
        // the supervisor replace it): the tenants' grown memories are gone,
        // so what remains above the first baseline is the host's own.
        std::fs::write(
            dir.join("manifest.toml"),
            healthy_only.replace("GREETING = \"hi from", "GREETING = \"hi again from"),
        )?;
        run(Command::new("kill").args(["-HUP", &pid.to_string()]))?;
        wait_until_answering(&ports)?;
        std::thread::sleep(Duration::from_secs(2));
        let fresh = (proc_fds(pid), proc_rss_kib(pid), tenant_memory_kib(&admin));
        let split_fresh = memory_split(pid);
        keep_smaps(pid, &dir, "fresh");
        let list = |f: &dyn Fn(&(usize, u64, u64)) -> String| {
            after.iter().map(f).collect::<Vec<_>>().join(" / ")
        };
        let fds_rounds = list(&|a| a.0.to_string());
        let rss_rounds = list(&|a| (a.1 / 1024).to_string());
        let tenant_rounds = list(&|a| (a.2 / 1024).to_string());
        let split = |(pool, host): (u64, u64)| format!("{} + {}", pool / 1024, host / 1024);
        let split_rounds = splits
            .iter()
            .map(|s| split(*s))
            .collect::<Vec<_>>()
            .join(" / ");
        let restarts = |prefix: &str| -> u64 {
            serde_json::from_str::<serde_json::Value>(&status)
                .ok()
                .and_then(|v| v["tenants"].as_array().cloned())
                .map(|ts| {
                    ts.iter()
                        .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
                        .map(|t| t["restarts"].as_u64().unwrap_or(0))
                        .sum()
                })
                .unwrap_or(0)
        };
        let alive = serve_alive(pid);
        let stderr = std::fs::read_to_string(dir.join("serve.stderr")).unwrap_or_default();
        let panics = stderr.matches("panicked at").count();
        Ok(format!(
            "| what | figure |\n|---|---|\n\
             | tenants | {HEALTHY} healthy, {CRASHING} crashing every second, {HOGS} growing past a 48 MiB limit (all under one `wasabi serve`) |\n\
             | requests to healthy tenants (wrk) | {} in {secs:.0} s ({:.0}/s) |\n\
             | lost requests on healthy tenants (socket errors, timeouts, non-2xx) | {} |\n\
             | connections reset mid-request | {} |\n\
             | restarts of the crashing / memory-hog tenants | {} / {} |\n\
             | host panics (wasabi's stderr) | {panics} |\n\
             | serve still running afterwards | {} |\n\
             | open descriptors, healthy tenants alone: before / after each round | {fds_before} / {fds_rounds} |\n\
             | resident memory, healthy tenants alone: before / after each round (peak under load and faults) | {} / {rss_rounds} MiB ({} MiB) |\n\
             | the healthy tenants' own memory (linear and host, as `/tenants` reports it): before / after each round | {} / {tenant_rounds} MiB |\n\
             | every healthy tenant then restarted fresh: descriptors / resident memory / tenants' own memory | {} / {} / {} MiB |\n\
             | resident memory as the instance pool (linear memories) + the rest of the host: before / after each round / fresh | {} / {split_rounds} / {} MiB |\n",
            total.requests,
            total.requests as f64 / secs,
            total.errors + total.non_2xx,
            resets_done,
            restarts("crash"),
            restarts("hog"),
            if alive { "yes" } else { "no" },
            rss_before / 1024,
            rss_peak / 1024,
            tenants_before / 1024,
            fresh.0,
            fresh.1 / 1024,
            fresh.2 / 1024,
            split(split_before),
            split(split_fresh),
        ))
    })();
    let _ = serve.kill();
    let _ = serve.wait();
    let serve_table = result?;
    step(&format!("churn: {cycles} tenant start/stop cycles"));
    let churn = output(
        Command::new(root.join("target/release/churn"))
            .arg(programs.join("hello-server.wasm"))
            .arg(cycles.to_string())
            .current_dir(root),
    )?;
    let churn: serde_json::Value = serde_json::from_str(churn.trim()).context("churn's JSON")?;
    let churn_table = format!(
        "| what | figure |\n|---|---|\n\
         | start/stop cycles (each tenant answers one request before it stops) | {} in {} s |\n\
         | open descriptors before / after | {} / {} |\n\
         | resident memory before / after | {} / {} MiB |\n\
         | resident memory every 1,000 cycles | {} MiB |\n",
        churn["cycles"],
        churn["seconds"],
        churn["fds_before"],
        churn["fds_after"],
        churn["rss_kib_before"].as_u64().unwrap_or(0) / 1024,
        churn["rss_kib_after"].as_u64().unwrap_or(0) / 1024,
        churn["samples"]
            .as_array()
            .map(|samples| samples
                .iter()
                .map(|s| (s["rss_kib"].as_u64().unwrap_or(0) / 1024).to_string())
                .collect::<Vec<_>>()
                .join(" / "))
            .unwrap_or_default(),
    );
    let machine = format!(
        "{} cores; {}; wrk {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        output(Command::new("uname").arg("-sr"))
            .unwrap_or_default()
            .trim(),
        String::from_utf8_lossy(&Command::new("wrk").arg("--version").output()?.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
    );
    let report = format!(
        "## Load and faults\n\n{serve_table}\n## Tenant churn\n\n{churn_table}\nMachine: {machine}.\n"
    );
    std::fs::write(dir.join("results.md"), &report)?;
    println!("\n{report}");
    if publish {
        let doc = root.join("docs/reliability.md");
        std::fs::write(&doc, reliability_page(&report))?;
        println!("wrote {}", doc.display());
    }
    Ok(())
}

/// The memory of every tenant as `/tenants` reports it, summed, in KiB.
fn tenant_memory_kib(admin: &str) -> u64 {
    let status = output(Command::new("curl").args(["-s", &format!("http://{admin}/tenants")]))
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&status)
        .ok()
        .and_then(|v| v["tenants"].as_array().cloned())
        .map(|ts| {
            ts.iter()
                .map(|t| t["memory_bytes"].as_u64().unwrap_or(0))
                .sum::<u64>()
                / 1024
        })
        .unwrap_or(0)
}

/// Resident memory in KiB, split as (wasmtime's instance pool, the rest):
/// the pool is the address range of the huge reservation in which the
/// pooling allocator places every linear memory (`mprotect` cuts it into
/// many mappings; each slot's inaccessible tail is one of several GiB),
/// read from `/proc/PID/smaps`.
fn memory_split(pid: u32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return (0, 0);
    };
    let mut maps: Vec<(u64, u64, u64)> = Vec::new(); // start, end, rss
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            maps.push((a, b, 0));
        } else if let Some(rest) = line.strip_prefix("Rss:")
            && let Some(last) = maps.last_mut()
        {
            last.2 = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    let huge = maps.iter().filter(|(a, b, _)| b - a >= 2 << 30);
    let (lo, hi) = huge.fold((u64::MAX, 0), |(lo, hi), (a, b, _)| {
        (lo.min(*a), hi.max(*b))
    });
    maps.iter().fold((0, 0), |(pool, rest), (a, _, rss)| {
        if (lo..hi).contains(a) {
            (pool + rss, rest)
        } else {
            (pool, rest + rss)
        }
    })
}

/// Waits (up to 120 s) until the tenant behind every port answers 200.
fn wait_until_answering(ports: &[u16]) -> anyhow::Result<()> {
    let ready = Instant::now();
    for &port in ports {
        while get(port).ok() != Some(200) {
            if ready.elapsed() > Duration::from_secs(120) {
                bail!("tenant on port {port} did not answer within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Keeps a copy of the process's memory map (`/proc/PID/smaps`) in the soak
/// folder, to see afterwards where resident memory went.
fn keep_smaps(pid: u32, dir: &Path, label: &str) {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) {
        let _ = std::fs::write(dir.join(format!("smaps-{label}.txt")), text);
    }
}

fn serve_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn reliability_page(report: &str) -> String {
    format!(
        "# Reliability: soak and faults\n\n\
         `cargo xtask soak` (not part of CI: it takes minutes) runs Wasabi under load and \
         faults and judges it from outside: an outside load generator (wrk) for the requests, \
         `/proc` for the serve process's descriptors and memory, its stderr for panics. \
         Reproduce: `cargo xtask soak --publish` (release build; options: `--requests`, \
         `--cycles`).\n\n\
         What runs: one `wasabi serve` with 100 tenants. 90 are healthy HTTP servers \
         (`programs/hello-server`, each on its own host port); 5 panic every second and are \
         restarted with backoff (`crash-loop`, `restart = \"always\"`); 5 grow their memory \
         until their 48 MiB limit ends them, and are restarted (`mem-hog`). wrk loads the \
         healthy tenants four at a time (one wrk each, 8 connections, 2 s each) until the \
         requested total, while a client thread resets connections mid-request (RST after \
         half a request, or while a delayed answer is pending). A request is lost if wrk \
         saw a socket error, a timeout or a non-2xx answer. Then the churn binary starts and \
         stops tenants of hello-server through the supervisor API, 50 at a time, each \
         answering one request before it stops.\n\n\
         Descriptors and resident memory are read with the healthy tenants alone and idle: \
         before the faulty tenants join (SIGHUP with the full manifest) and after they leave \
         (SIGHUP with the healthy tenants only) and the load has ended. A wasm instance's \
         linear memory grows and never shrinks (WebAssembly has no way to give it back), so a \
         tenant whose Go heap grew under load keeps that memory: it is the tenant's own, \
         counted against its limit and shown in `/tenants`. So the load runs in three rounds of \
         a third of the requests each, each measured idle afterwards: the first warms every \
         tenant and the host up, and the later ones must end where it did; steady growth \
         from round to round would be a leak. Read the two memory rows together: what the \
         host itself keeps from one round to the next is the growth of resident memory less \
         the growth of the tenants' own memory. Resident memory also counts the pages a \
         tenant touched inside its linear memory without growing it, which `/tenants` cannot \
         see; so, last, every healthy tenant is restarted fresh (SIGHUP with a changed \
         environment) and answers one request, as before the load: their grown memories are \
         released, and what resident memory keeps above the first figure is what the host \
         itself kept. The last row splits resident memory into wasmtime's instance pool, where \
         every linear memory lives, and the rest of the host (read from `/proc/PID/smaps`). \
         The host's part falls back because, after a tenant ends, the supervisor hands the C \
         allocator's free memory back to the system (`wasabi-core/src/release.rs`); without \
         that, glibc kept its high-water mark and the fresh figure stayed above the first. The process's memory map at each of these points is kept in \
         `target/soak/smaps-*.txt`. In the churn, memory is read after a first batch of 50 \
         cycles and then every 1,000: the allocator and the instance pool warm up over the \
         first thousand, and a leak would show as growth after that.\n\n{report}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 4s test @ http://127.0.0.1:1/\n  1 threads and 8 connections\n\
                    \x20 52000 requests in 4.00s, 5.12MB read\n\
                    \x20 Socket errors: connect 0, read 2, write 0, timeout 1\n\
                    \x20 Non-2xx or 3xx responses: 4\nRequests/sec:  13000.00\n";
        let w = parse_wrk(text);
        assert_eq!((w.requests, w.errors, w.non_2xx), (52000, 3, 4));
    }
}

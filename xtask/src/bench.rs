//! `cargo xtask bench`: Wasabi against what a user would pick instead —
//! Node.js running the same `.wasm` through the Go toolchain's own
//! `wasm_exec_node.js`, and the same program built natively — measured side
//! by side in one run, as medians of repeated runs. Writes
//! `target/bench/results.json`, `results.md` and `chart.svg`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::{Binaries, build_examples, cargo, output, run, step};

/// How much to measure.
struct Plan {
    quick: bool,
    start_runs: usize,
    cpu_runs: usize,
    js_calls: u32,
    http_seconds: u64,
    spawn_runs: usize,
    density_tenants: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                start_runs: 3,
                cpu_runs: 1,
                js_calls: 100_000,
                http_seconds: 1,
                spawn_runs: 5,
                density_tenants: 20,
            }
        } else {
            Plan {
                quick,
                start_runs: 15,
                cpu_runs: 5,
                js_calls: 1_000_000,
                http_seconds: 10,
                spawn_runs: 50,
                density_tenants: 200,
            }
        }
    }
}

/// One figure: Wasabi's median and each baseline's, in `unit`.
struct Figure {
    name: &'static str,
    title: &'static str,
    unit: &'static str,
    wasabi: f64,
    /// (baseline, its median).
    baselines: Vec<(&'static str, f64)>,
    /// The target, as (baseline, ratio bound, `true` when lower is better).
    target: Option<(&'static str, f64, bool)>,
    runs: usize,
}

impl Figure {
    fn ratio(&self, baseline: &str) -> Option<f64> {
        self.baselines
            .iter()
            .find(|(b, _)| *b == baseline)
            .filter(|(_, v)| *v != 0.0)
            .map(|(_, v)| self.wasabi / v)
    }

    /// `Some(met)` when the figure has a target and its baseline was measured.
    fn met(&self) -> Option<bool> {
        let (baseline, bound, lower_is_better) = self.target?;
        let ratio = match baseline {
            "absolute" => self.wasabi,
            b => self.ratio(b)?,
        };
        Some(if lower_is_better {
            ratio <= bound
        } else {
            ratio >= bound
        })
    }

    fn target_text(&self) -> String {
        match self.target {
            None => String::new(),
            Some(("absolute", bound, true)) => format!("<= {bound} {}", self.unit),
            Some(("absolute", bound, false)) => format!(">= {bound} {}", self.unit),
            Some((b, bound, true)) => format!("<= {bound}x {b}"),
            Some((b, bound, false)) => format!(">= {bound}x {b}"),
        }
    }
}

/// What the harness runs.
pub(crate) struct Tools {
    pub(crate) root: PathBuf,
    wasabi: PathBuf,
    pub(crate) spawn: PathBuf,
    preemption: PathBuf,
    pub(crate) programs: PathBuf,
    cache: PathBuf,
    /// `node` and the Go toolchain's runner, or why they are missing.
    node: Result<(PathBuf, PathBuf), String>,
}

impl Tools {
    /// Builds wasabi, the bench binaries and `extra` packages' binaries
    /// (`profile`: "debug" or "release"), unless `binaries` says they are
    /// built, and names them.
    pub(crate) fn build(
        root: &Path,
        profile: &str,
        extra: &[&str],
        binaries: Binaries,
    ) -> anyhow::Result<Tools> {
        if binaries == Binaries::Build {
            step(&format!("building wasabi ({profile})"));
            let mut build = cargo();
            build
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "wasabi-cli",
                    "-p",
                    "wasabi-benches",
                ])
                .current_dir(root);
            for package in extra {
                build.args(["-p", package]);
            }
            build.arg("--bins");
            if profile == "release" {
                build.arg("--release");
            }
            run(&mut build)?;
        }
        let out_dir = root.join("target/bench");
        std::fs::create_dir_all(&out_dir)?;
        Ok(Tools {
            root: root.to_path_buf(),
            wasabi: root.join("target").join(profile).join("wasabi"),
            spawn: root.join("target").join(profile).join("spawn"),
            preemption: root.join("target").join(profile).join("preemption"),
            programs: root.join("target/programs"),
            cache: out_dir.join("cache"),
            node: find_node(),
        })
    }

    fn wasabi_run(&self, flags: &[&str], wasm: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.wasabi);
        cmd.arg("run").args(flags).arg(self.programs.join(wasm));
        if !args.is_empty() {
            cmd.arg("--").args(args);
        }
        cmd
    }

    fn node_run(&self, wasm: &str, args: &[&str]) -> Option<Command> {
        let (node, runner) = self.node.as_ref().ok()?;
        let mut cmd = Command::new(node);
        cmd.arg(runner).arg(self.programs.join(wasm)).args(args);
        Some(cmd)
    }

    /// The median wall time of `runs` runs under Node.js, or `None` when
    /// the Node.js baseline is skipped.
    fn node_median(&self, runs: usize, wasm: &str, args: &[&str]) -> anyhow::Result<Option<f64>> {
        if self.node.is_err() {
            return Ok(None);
        }
        let make = || self.node_run(wasm, args).expect("node was found");
        median_wall(runs, make).map(Some)
    }

    fn native(&self, name: &str) -> Command {
        Command::new(self.programs.join("native").join(name))
    }
}

/// Finds Node.js and the Go toolchain's `wasm_exec_node.js`.
fn find_node() -> Result<(PathBuf, PathBuf), String> {
    let node = which("node").ok_or("`node` is not on PATH")?;
    let goroot = crate::goroot().map_err(|e| format!("cannot ask Go for GOROOT: {e}"))?;
    ["lib/wasm/wasm_exec_node.js", "misc/wasm/wasm_exec_node.js"]
        .iter()
        .map(|p| goroot.join(p))
        .find(|p| p.is_file())
        .map(|runner| (node, runner))
        .ok_or_else(|| format!("no wasm_exec_node.js under {}", goroot.display()))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Runs `cmd` to completion with its output discarded; fails unless it
/// exits 0. Returns its wall time.
fn time_run(cmd: &mut Command) -> anyhow::Result<Duration> {
    let shown = format!("{cmd:?}");
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median wall time of `runs` runs of the command `make` builds, in seconds.
fn median_wall(runs: usize, mut make: impl FnMut() -> Command) -> anyhow::Result<f64> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(time_run(&mut make())?.as_secs_f64());
    }
    Ok(median(samples))
}

/// Runs the comparison and writes the results (and, with `publish`, the
/// docs page).
pub fn bench(root: &Path, quick: bool, publish: bool, binaries: Binaries) -> anyhow::Result<()> {
    let plan = Plan::new(quick);
    step("building the example programs");
    build_examples(root)?;
    let profile = if quick { "debug" } else { "release" };
    let tools = Tools::build(root, profile, &[], binaries)?;
    let out_dir = root.join("target/bench");
    let mut skipped = Vec::new();
    if let Err(why) = &tools.node {
        println!("note: skipping the Node.js baseline: {why}");
        skipped.push(format!("Node.js: {why}"));
    }
    let cache_flag = format!("--cache-dir={}", tools.cache.display());
    // Every figure but the first-run ones measures the steady state:
    // Cranelift code from the cache. Filled now, before anything is timed
    // (a run would start on Winch and fill it in the background).
    step("filling the shared cache with Cranelift code (wasabi cache add)");
    let mut fill = Command::new(&tools.wasabi);
    fill.args(["cache", "add", &cache_flag]);
    for wasm in STEADY_STATE_PROGRAMS {
        fill.arg(tools.programs.join(wasm));
    }
    time_run(&mut fill)?;
    let mut figures = Vec::new();

    step("warm and cold start: hello");
    time_run(&mut tools.wasabi_run(&[&cache_flag], "hello.wasm", &[]))?;
    let warm = median_wall(plan.start_runs, || {
        tools.wasabi_run(&[&cache_flag], "hello.wasm", &[])
    })?;
    // A cold start is a first run: an empty cache, Winch code now and
    // Cranelift's compiled by a detached `wasabi cache add` (each run gets a
    // cache of its own, so no run finds an earlier one's result).
    let fresh = FreshCaches::new(&tools.root.join("target/bench/fresh-caches"))?;
    let cold = median_wall(plan.start_runs, || {
        tools.wasabi_run(&[&fresh.next()], "hello.wasm", &[])
    })?;
    let cold_cranelift = median_wall(plan.start_runs, || {
        tools.wasabi_run(&["--no-cache", "--tier", "cranelift"], "hello.wasm", &[])
    })?;
    let node_start = tools.node_median(plan.start_runs, "hello.wasm", &[])?;
    figures.push(Figure {
        name: "warm_start",
        title: "warm start (hello, process wall time)",
        unit: "s",
        wasabi: warm,
        baselines: node_start.map(|n| ("node", n)).into_iter().collect(),
        target: Some(("node", 0.05, true)),
        runs: plan.start_runs,
    });
    let mut cold_baselines: Vec<(&str, f64)> =
        node_start.map(|n| ("node", n)).into_iter().collect();
    cold_baselines.push(("cranelift_only", cold_cranelift));
    figures.push(Figure {
        name: "cold_start",
        title: "cold start (hello, 2.6 MB, empty cache: Winch, Cranelift in the background)",
        unit: "s",
        wasabi: cold,
        baselines: cold_baselines,
        target: Some(("node", 0.5, true)),
        runs: plan.start_runs,
    });

    step("cold start of a large program: http-check -h (10 MB, net/http)");
    // Go's net/http client and its dependencies; -h prints the usage and
    // exits 0 once the program's packages are initialised.
    let large = ["-h"];
    let cold_large = median_wall(plan.start_runs, || {
        tools.wasabi_run(&[&fresh.next()], "http-check.wasm", &large)
    })?;
    let cold_large_cranelift = median_wall(plan.start_runs, || {
        tools.wasabi_run(
            &["--no-cache", "--tier", "cranelift"],
            "http-check.wasm",
            &large,
        )
    })?;
    let mut large_baselines: Vec<(&str, f64)> = tools
        .node_median(plan.start_runs, "http-check.wasm", &large)?
        .map(|n| ("node", n))
        .into_iter()
        .collect();
    large_baselines.push(("cranelift_only", cold_large_cranelift));
    figures.push(Figure {
        name: "cold_start_large",
        title: "cold start of a large program (http-check -h, 10 MB, empty cache)",
        unit: "s",
        wasabi: cold_large,
        baselines: large_baselines,
        target: Some(("node", 1.0, true)),
        runs: plan.start_runs,
    });

    step("CPU-bound: cpu-bound (sha256, JSON, sort)");
    time_run(&mut tools.wasabi_run(&[&cache_flag], "cpu-bound.wasm", &[]))?;
    let wasabi_cpu = median_wall(plan.cpu_runs, || {
        tools.wasabi_run(&[&cache_flag], "cpu-bound.wasm", &[])
    })?;
    let mut baselines = vec![(
        "native",
        median_wall(plan.cpu_runs, || tools.native("cpu-bound"))?,
    )];
    if let Some(node) = tools.node_median(plan.cpu_runs, "cpu-bound.wasm", &[])? {
        baselines.push(("node", node));
    }
    figures.push(Figure {
        name: "cpu_bound",
        title: "CPU-bound (cpu-bound, wall time)",
        unit: "s",
        wasabi: wasabi_cpu,
        baselines,
        target: Some(("node", 1.0, true)),
        runs: plan.cpu_runs,
    });
    // Its first run: compiling included, on Winch code (the tiered path),
    // against Node.js (whose first run is every run) and Cranelift first.
    let first_cpu = median_wall(plan.cpu_runs, || {
        tools.wasabi_run(&[&fresh.next()], "cpu-bound.wasm", &[])
    })?;
    let mut first_baselines = vec![(
        "cranelift_only",
        median_wall(plan.cpu_runs, || {
            tools.wasabi_run(
                &["--no-cache", "--tier", "cranelift"],
                "cpu-bound.wasm",
                &[],
            )
        })?,
    )];
    if let Some(node) = tools.node_median(plan.cpu_runs, "cpu-bound.wasm", &[])? {
        first_baselines.insert(0, ("node", node));
    }
    figures.push(Figure {
        name: "cpu_bound_first_run",
        title: "CPU-bound, first run (compile and run, empty cache)",
        unit: "s",
        wasabi: first_cpu,
        baselines: first_baselines,
        target: Some(("node", 1.0, true)),
        runs: plan.cpu_runs,
    });

    step("the cost of preemption: cpu-bound in-process, epochs on and off, each tier");
    let costs: serde_json::Value = serde_json::from_str(
        output(
            Command::new(&tools.preemption)
                .arg(tools.programs.join("cpu-bound.wasm"))
                .arg(plan.cpu_runs.to_string()),
        )?
        .trim(),
    )?;
    let cost = |name: &str| costs[name].as_f64().with_context(|| name.to_string());
    for (tier, name, title) in [
        (
            "cranelift",
            "preemption_cranelift",
            "CPU-bound in-process on Cranelift code: epoch checks on (as Wasabi runs) and off",
        ),
        (
            "winch",
            "preemption_winch",
            "CPU-bound in-process on Winch code: epoch checks on and off",
        ),
    ] {
        figures.push(Figure {
            name,
            title,
            unit: "s",
            wasabi: cost(&format!("{tier}_epochs"))?,
            baselines: vec![("epochs_off", cost(&format!("{tier}_off"))?)],
            target: None,
            runs: plan.cpu_runs,
        });
    }

    step("go test -exec with a cold cache: encoding/json's tests");
    if let Some(figure) = go_test_exec(&tools, &fresh, plan.cpu_runs)? {
        figures.push(figure);
    } else {
        skipped.push("go test -exec figure: Node.js's runner is missing".into());
    }

    step("WASI preview 1: Go hello and cpu-bound built for wasip1");
    // The same programs as WASI commands, against their js/wasm builds
    // under Wasabi and wasmtime's own CLI on the same file (the peer a
    // wasip1 user would pick; installed under target/tools at a pinned
    // version when missing, except with --quick: its build is long).
    let wasmtime = if quick {
        which("wasmtime")
    } else {
        Some(crate::conformance::wasmtime_cli(root)?)
    };
    if wasmtime.is_none() {
        skipped.push("wasmtime CLI (for the WASI rows): not on PATH under --quick".to_string());
    }
    // wasmtime's warm start uses its own compiled-code cache; its cold
    // start has none.
    let wasmtime_median = |runs: usize, wasm: &str, cache: bool| -> anyhow::Result<Option<f64>> {
        let Some(bin) = &wasmtime else {
            return Ok(None);
        };
        let file = tools.programs.join(wasm);
        let cache = if cache { "cache=y" } else { "cache=n" };
        let make = || {
            let mut cmd = Command::new(bin);
            cmd.args(["run", "-C", cache]).arg(&file);
            cmd
        };
        time_run(&mut make())?;
        median_wall(runs, make).map(Some)
    };
    time_run(&mut tools.wasabi_run(&[&cache_flag], "wasip1/hello.wasm", &[]))?;
    let wasi_warm = median_wall(plan.start_runs, || {
        tools.wasabi_run(&[&cache_flag], "wasip1/hello.wasm", &[])
    })?;
    let wasi_cold = median_wall(plan.start_runs, || {
        tools.wasabi_run(&["--no-cache"], "wasip1/hello.wasm", &[])
    })?;
    let mut warm_baselines = vec![("wasabi_js", warm)];
    let mut cold_baselines = vec![("wasabi_js", cold)];
    if let Some(w) = wasmtime_median(plan.start_runs, "wasip1/hello.wasm", true)? {
        warm_baselines.push(("wasmtime", w));
    }
    if let Some(w) = wasmtime_median(plan.start_runs, "wasip1/hello.wasm", false)? {
        cold_baselines.push(("wasmtime", w));
    }
    figures.push(Figure {
        name: "wasip1_warm_start",
        title: "Go wasip1 hello, warm start (wasabi_js: the js/wasm build under Wasabi)",
        unit: "s",
        wasabi: wasi_warm,
        baselines: warm_baselines,
        target: None,
        runs: plan.start_runs,
    });
    figures.push(Figure {
        name: "wasip1_cold_start",
        title: "Go wasip1 hello, cold start (empty cache)",
        unit: "s",
        wasabi: wasi_cold,
        baselines: cold_baselines,
        target: None,
        runs: plan.start_runs,
    });
    time_run(&mut tools.wasabi_run(&[&cache_flag], "wasip1/cpu-bound.wasm", &[]))?;
    let wasi_cpu = median_wall(plan.cpu_runs, || {
        tools.wasabi_run(&[&cache_flag], "wasip1/cpu-bound.wasm", &[])
    })?;
    let mut cpu_baselines = vec![
        ("wasabi_js", wasabi_cpu),
        (
            "native",
            median_wall(plan.cpu_runs, || tools.native("cpu-bound"))?,
        ),
    ];
    if let Some(w) = wasmtime_median(plan.cpu_runs, "wasip1/cpu-bound.wasm", true)? {
        cpu_baselines.push(("wasmtime", w));
    }
    figures.push(Figure {
        name: "wasip1_cpu_bound",
        title: "Go wasip1 cpu-bound, wall time",
        unit: "s",
        wasabi: wasi_cpu,
        baselines: cpu_baselines,
        target: None,
        runs: plan.cpu_runs,
    });

    step(&format!(
        "host-call cost: {} syscall/js calls",
        plan.js_calls
    ));
    let n = plan.js_calls.to_string();
    let per_call = |cmd: &mut Command| -> anyhow::Result<f64> {
        let text = output(cmd)?;
        let seconds: f64 = text
            .split_whitespace()
            .nth(3)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unexpected js-calls output {text:?}"))?;
        Ok(seconds / f64::from(plan.js_calls) * 1e9)
    };
    let wasabi_call =
        per_call(&mut tools.wasabi_run(&[&cache_flag], "js-calls.wasm", &["-n", &n]))?;
    let node_call = match tools.node_run("js-calls.wasm", &["-n", &n]) {
        Some(mut cmd) => Some(per_call(&mut cmd)?),
        None => None,
    };
    figures.push(Figure {
        name: "host_call",
        title: "host-call cost (js.Global().Get + Type)",
        unit: "ns/call",
        wasabi: wasabi_call,
        baselines: node_call.map(|n| ("node", n)).into_iter().collect(),
        target: Some(("node", 1.0, true)),
        runs: 1,
    });

    step(&format!(
        "HTTP throughput: hello-server, 64 keep-alive connections, {} s",
        plan.http_seconds
    ));
    let load = Duration::from_secs(plan.http_seconds);
    // Four servers of one program: under Wasabi with the host serving HTTP
    // (wasabi.Serve) and with Go's own server in the guest (-socket), and
    // natively on one core and on all of them.
    let servers = ["wasabi", "wasabi_socket", "native", "native_all_cores"];
    let mut builtin = Vec::new();
    for name in servers {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = server_command(&tools, &cache_flag, "hello-server", name, &addr);
        let result = with_server(&mut cmd, &addr, || load_test(&addr, 64, load))?;
        builtin.push((name, result));
    }
    let (wasabi_http, baselines) = builtin.split_first().context("a server")?;
    figures.push(Figure {
        name: "http_throughput",
        title: "HTTP throughput (hello-server, built-in client; native with GOMAXPROCS=1)",
        unit: "req/s",
        wasabi: wasabi_http.1.rps,
        baselines: baselines.iter().map(|(n, r)| (*n, r.rps)).collect(),
        target: Some(("native", 1.0, false)),
        runs: 1,
    });
    for (name, title, pick) in [
        ("http_p50", "HTTP latency p50 (built-in client)", 0usize),
        ("http_p99", "HTTP latency p99 (built-in client)", 1),
    ] {
        let value = |r: &LoadResult| if pick == 0 { r.p50_ms } else { r.p99_ms };
        figures.push(Figure {
            name,
            title,
            unit: "ms",
            wasabi: value(&wasabi_http.1),
            baselines: baselines.iter().map(|(n, r)| (*n, value(r))).collect(),
            target: (pick == 1).then_some(("native", 2.0, true)),
            runs: 1,
        });
    }

    step(&format!(
        "serving with wrk (one thread, 64 connections, {} s each): hello, a JSON API, a 1 MiB stream",
        plan.http_seconds
    ));
    ensure_tool("wrk", "wrk")?;
    let post_json = out_dir.join("post-json.lua");
    std::fs::write(&post_json, wrk_post_script(1024))?;
    let post_json = post_json.display().to_string();
    let mut timeouts: Vec<(&'static str, u64)> = servers.iter().map(|s| (*s, 0)).collect();
    for (figure, title, path, script) in [
        ("wrk_hello", "hello-server, wrk", "/", None),
        (
            "wrk_json",
            "JSON API (decode 1 KiB, encode a reply), wrk",
            "/json",
            Some(post_json.as_str()),
        ),
        (
            "wrk_stream",
            "1 MiB streamed response, wrk",
            "/big?mb=1",
            None,
        ),
    ] {
        let mut results = Vec::new();
        for name in servers {
            // hello-server answers `/`; http-handlers the rest.
            let program = if path == "/" {
                "hello-server"
            } else {
                "http-handlers"
            };
            let addr = format!("127.0.0.1:{}", free_port()?);
            let mut cmd = server_command(&tools, &cache_flag, program, name, &addr);
            let url = format!("http://{addr}{path}");
            let result = with_server(&mut cmd, &addr, || wrk(&url, 64, load, script))?;
            if let Some(t) = timeouts.iter_mut().find(|(n, _)| *n == name) {
                t.1 += result.timeouts;
            }
            results.push((name, result));
        }
        let (ours, others) = results.split_first().context("a server")?;
        figures.push(Figure {
            name: figure,
            title,
            unit: "req/s",
            wasabi: ours.1.rps,
            baselines: others.iter().map(|(n, r)| (*n, r.rps)).collect(),
            target: Some(("native", 1.0, false)),
            runs: 1,
        });
        figures.push(Figure {
            name: Box::leak(format!("{figure}_p99").into_boxed_str()),
            title: Box::leak(format!("{title}: p99 latency").into_boxed_str()),
            unit: "ms",
            wasabi: ours.1.p99_ms,
            baselines: others.iter().map(|(n, r)| (*n, r.p99_ms)).collect(),
            target: Some(("native", 2.0, true)),
            runs: 1,
        });
    }

    step("a Go HTTP server built for wasip1 (wrk)");
    // hello-server built for wasip1 serves with Go's own server in the
    // guest, on a socket from the WasmEdge extension; the same program as
    // js/wasm under Wasabi is served by the host. wasmtime's CLI has no
    // preview-1 sockets since version 47, so it has no row here.
    {
        let mut results = Vec::new();
        for name in ["wasabi", "wasabi_js", "native"] {
            let addr = format!("127.0.0.1:{}", free_port()?);
            let mut cmd = match name {
                "wasabi" => tools.wasabi_run(
                    &[&cache_flag, &format!("--allow-listen={addr}")],
                    "wasip1/hello-server.wasm",
                    &["-addr", &addr],
                ),
                // The js/wasm build, served by the host.
                "wasabi_js" => server_command(&tools, &cache_flag, "hello-server", "wasabi", &addr),
                _ => server_command(&tools, &cache_flag, "hello-server", name, &addr),
            };
            let url = format!("http://{addr}/");
            results.push((
                name,
                with_server(&mut cmd, &addr, || wrk(&url, 64, load, None))?,
            ));
        }
        let (ours, others) = results.split_first().context("a server")?;
        figures.push(Figure {
            name: "wasip1_http",
            title: "hello-server built for wasip1 (Go's server in the guest), wrk; wasabi_js: the js/wasm build, served by the host",
            unit: "req/s",
            wasabi: ours.1.rps,
            baselines: others.iter().map(|(n, r)| (*n, r.rps)).collect(),
            target: None,
            runs: 1,
        });
    }
    skipped.push(
        "wasmtime CLI for the wasip1 HTTP server: it has no preview-1 sockets since version 47"
            .to_string(),
    );

    let (ours, others) = timeouts.split_first().context("a server")?;
    figures.push(Figure {
        name: "wrk_timeouts",
        title: "requests wrk timed out after 2 s (hello, JSON and stream rows together)",
        unit: "requests",
        wasabi: ours.1 as f64,
        baselines: others.iter().map(|(n, t)| (*n, *t as f64)).collect(),
        target: Some(("absolute", 0.0, true)),
        runs: 1,
    });

    step(&format!(
        "HTTP/2: 100 streams over one connection (h2load, {} s)",
        plan.http_seconds
    ));
    ensure_tool("h2load", "nghttp2-client")?;
    let mut h2 = Vec::new();
    // Go's own server in the guest has no HTTP/2 without TLS: three servers.
    for name in ["wasabi", "native", "native_all_cores"] {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = server_command(&tools, &cache_flag, "hello-server", name, &addr);
        let url = format!("http://{addr}/");
        let rps = with_server(&mut cmd, &addr, || h2load(&url, 100, load))?;
        h2.push((name, rps));
    }
    let (ours, others) = h2.split_first().context("a server")?;
    figures.push(Figure {
        name: "h2load_100_streams",
        title: "HTTP/2, 100 streams over one connection (hello-server, h2load)",
        unit: "req/s",
        wasabi: ours.1,
        baselines: others.to_vec(),
        target: Some(("native", 1.0, false)),
        runs: 1,
    });

    step(&format!(
        "raw TCP echo: tcp-echo, 8 connections streaming 64 KiB writes, {} s",
        plan.http_seconds
    ));
    let mut echo = Vec::new();
    for name in ["wasabi", "native", "native_all_cores"] {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = server_command(&tools, &cache_flag, "tcp-echo", name, &addr);
        let mbps = with_server(&mut cmd, &addr, || echo_throughput(&addr, 8, load))?;
        echo.push((name, mbps));
    }
    let (ours, others) = echo.split_first().context("a server")?;
    figures.push(Figure {
        name: "tcp_echo",
        title: "raw TCP echo through wasabi.Listen (tcp-echo, 8 connections)",
        unit: "MB/s",
        wasabi: ours.1,
        baselines: others.to_vec(),
        target: Some(("native", 0.5, false)),
        runs: 1,
    });

    let routed = if quick { 10 } else { 100 };
    step(&format!(
        "{routed} tenants behind one routed port (wasabi serve [router], wrk, {} s)",
        plan.http_seconds
    ));
    let alone = routed_rps(&tools, &out_dir, 1, load)?;
    let many = routed_rps(&tools, &out_dir, routed, load)?;
    figures.push(Figure {
        name: "routed_tenants",
        title: Box::leak(
            format!("{routed} tenants behind one routed port, aggregate (wrk)").into_boxed_str(),
        ),
        unit: "req/s",
        wasabi: many,
        baselines: vec![("one_tenant_alone", alone)],
        target: Some(("one_tenant_alone", 0.8, false)),
        runs: 1,
    });

    outbound_https(&tools, &plan, &cache_flag, &out_dir, &mut figures)?;

    step("spawn: supervisor start to listener accepting");
    let spawn_out = output(
        Command::new(&tools.spawn)
            .arg(tools.programs.join("hello-server.wasm"))
            .arg(plan.spawn_runs.to_string()),
    )?;
    let spawn: serde_json::Value = serde_json::from_str(spawn_out.trim())?;
    figures.push(Figure {
        name: "spawn",
        title: "spawn (warm cache, to accepting)",
        unit: "ms",
        wasabi: spawn["median_ms"].as_f64().context("median_ms")?,
        baselines: Vec::new(),
        target: Some(("absolute", 5.0, true)),
        runs: plan.spawn_runs,
    });

    step(&format!(
        "density: {} idle hello-server tenants in one process",
        plan.density_tenants
    ));
    let per_tenant = density(&tools, plan.density_tenants)?;
    let node_idle = match tools.node_run("idle.wasm", &[]) {
        Some(mut cmd) => Some(idle_rss_mib(&mut cmd)?),
        None => None,
    };
    figures.push(Figure {
        name: "density",
        title: "resident memory per idle tenant (Node.js: one process per program)",
        unit: "MiB",
        wasabi: per_tenant,
        baselines: node_idle.map(|n| ("node", n)).into_iter().collect(),
        target: Some(("absolute", 8.0, true)),
        runs: 1,
    });

    if !quick {
        step("1000 idle hello-server tenants in one process, each answering a request");
        figures.push(Figure {
            name: "thousand_tenants",
            title: "1000 idle tenants, each answering: memory per tenant",
            unit: "MiB",
            wasabi: density(&tools, 1000)?,
            baselines: Vec::new(),
            target: Some(("absolute", 8.0, true)),
            runs: 1,
        });
    }
    let table = write_results(&out_dir, &plan, &figures, &skipped)?;
    if publish {
        publish_docs(root, &out_dir, &table)?;
    }
    step("criterion benches");
    let mut criterion = cargo();
    criterion.current_dir(&tools.root);
    if quick {
        // Each bench once, on the debug build the workspace tests already
        // compiled (`--workspace` keeps their feature set, so nothing is
        // rebuilt): a smoke test, not a measurement.
        criterion.args(["test", "--quiet", "--workspace", "--benches"]);
    } else {
        criterion.args(["bench", "-p", "wasabi-benches"]);
    }
    run(&mut criterion)
}

/// A loop of `http.Get` to a local HTTPS server (rustls, a CA made for the
/// run): Wasabi's host client against the same program built natively and
/// against curl fetching the same URLs in one process; over one pooled
/// connection, then with `Connection: close` (a handshake per request), then
/// over HTTP/2.
fn outbound_https(
    tools: &Tools,
    plan: &Plan,
    cache_flag: &str,
    out_dir: &Path,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    use wasabi_net::testbed::{Pki, TestServer, Validity};
    let requests = if plan.quick { 200 } else { 2000 };
    step(&format!(
        "outbound HTTPS: {requests} sequential http.Get calls (pooled, Connection: close, HTTP/2)"
    ));
    let pki = Pki::new("Wasabi bench CA");
    let ca = out_dir.join("bench-ca.pem");
    std::fs::write(&ca, pki.ca_pem())?;
    let ca_flag = format!("--ca-cert={}", ca.display());
    let n = requests.to_string();
    let per_second = |cmd: &mut Command| -> anyhow::Result<f64> {
        let text = output(cmd)?;
        text.rsplit("per second: ")
            .next()
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no rate in {text:?}"))
    };
    let rows: [(&str, &str, &str, bool); 3] = [
        (
            "fetch_https_pooled",
            "http.Get loop to an HTTPS server, one kept-alive connection",
            "loop",
            false,
        ),
        (
            "fetch_https_close",
            "http.Get loop to an HTTPS server, Connection: close (a TLS handshake each)",
            "loop-close",
            false,
        ),
        (
            "fetch_https_h2",
            "http.Get loop to an HTTPS server offering HTTP/2",
            "loop",
            true,
        ),
    ];
    for (name, title, mode, h2) in rows {
        let server = TestServer::start(Some(pki.issue(&["localhost"], Validity::Current)), h2);
        let url = server.url("localhost", "/hello");
        let wasabi = per_second(&mut tools.wasabi_run(
            &[cache_flag, "--allow-connect=localhost", &ca_flag],
            "http-get.wasm",
            &[mode, &url, &n],
        ))?;
        let mut native = tools.native("http-get");
        native
            .env("SSL_CERT_FILE", &ca)
            .args([mode, url.as_str(), n.as_str()]);
        let native = per_second(&mut native)?;
        let mut baselines = vec![("native", native)];
        if !h2 && which("curl").is_some() {
            let mut curl = Command::new("curl");
            curl.args(["-s", "--http1.1", "--cacert"]).arg(&ca);
            if mode == "loop-close" {
                curl.args(["-H", "Connection: close"]);
            }
            curl.args(std::iter::repeat_n(url.as_str(), requests));
            let took = time_run(&mut curl)?;
            baselines.push(("curl", requests as f64 / took.as_secs_f64()));
        }
        figures.push(Figure {
            name,
            title,
            unit: "req/s",
            wasabi,
            baselines,
            target: None,
            runs: 1,
        });
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts a server, waits until it answers on `addr`, runs `f`, stops it.
fn with_server<T>(
    cmd: &mut Command,
    addr: &str,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start the server")?;
    let ready = wait_answering(addr);
    let result = ready.and_then(|()| f());
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn wait_answering(addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nothing answered on {addr} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

struct LoadResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Requests that got no answer within the client's timeout.
    timeouts: u64,
}

/// `program` (hello-server or http-handlers, which take the same flags)
/// as the server `name` of the serving figures runs it: under Wasabi with
/// the host serving (`wasabi`) or Go's own server in the guest
/// (`wasabi_socket`), or natively on one core (`native`) or all of them.
fn server_command(
    tools: &Tools,
    cache_flag: &str,
    program: &str,
    name: &str,
    addr: &str,
) -> Command {
    match name {
        "wasabi" | "wasabi_socket" => {
            let mut args = vec!["-addr", addr];
            if name == "wasabi_socket" {
                args.push("-socket");
            }
            tools.wasabi_run(
                &[cache_flag, &format!("--allow-listen={addr}")],
                &format!("{program}.wasm"),
                &args,
            )
        }
        _ => {
            let mut cmd = tools.native(program);
            cmd.args(["-addr", addr]);
            if name == "native" {
                cmd.env("GOMAXPROCS", "1");
            }
            cmd
        }
    }
}

/// Installs Debian's `package` when `tool` is missing: the outside load
/// generators (wrk, h2load).
fn ensure_tool(tool: &str, package: &str) -> anyhow::Result<()> {
    if Command::new(tool).arg("--version").output().is_err() {
        step(&format!(
            "installing {package} (for {tool}, an outside load generator)"
        ));
        crate::apt_install(&[package])?;
    }
    Ok(())
}

/// h2load with one connection carrying `streams` concurrent streams
/// (HTTP/2 by prior knowledge) for `duration`: requests per second.
fn h2load(url: &str, streams: usize, duration: Duration) -> anyhow::Result<f64> {
    let text = output(Command::new("h2load").args([
        "-c1",
        &format!("-m{streams}"),
        &format!("-D{}", duration.as_secs().max(1)),
        url,
    ]))?;
    let rps = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim().strip_suffix(" req/s"))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unexpected h2load output:\n{text}"))?;
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("requests:") && !l.contains(" 0 failed, 0 errored"))
    {
        eprintln!("h2load {url}: {}", line.trim());
    }
    Ok(rps)
}

/// A wrk script that POSTs a JSON object of about `size` bytes.
fn wrk_post_script(size: usize) -> String {
    let filler = "x".repeat(size.saturating_sub(64));
    format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.body = '{{\"name\":\"wasabi\",\"size\":{size},\"filler\":\"{filler}\"}}'\n"
    )
}

/// Runs wrk (one thread, `connections` keep-alive connections) against
/// `url` for `duration`: requests per second and latency percentiles.
fn wrk(
    url: &str,
    connections: usize,
    duration: Duration,
    script: Option<&str>,
) -> anyhow::Result<LoadResult> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{}s", duration.as_secs().max(1)),
        "--latency",
        // The issue's bar: no request may wait 2 s.
        "--timeout",
        "2s",
    ]);
    if let Some(script) = script {
        cmd.args(["-s", script]);
    }
    let text = output(cmd.arg(url))?;
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
    };
    let ms = |v: &str| -> Option<f64> {
        let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = n.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unexpected wrk output:\n{text}"))?;
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        eprintln!("wrk {url}: {}", line.trim());
    }
    // "Socket errors: connect 0, read 0, write 0, timeout 12"
    let timeouts = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .and_then(|l| l.split(',').find_map(|p| p.trim().strip_prefix("timeout ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Ok(LoadResult {
        rps,
        p50_ms: field("50%").and_then(ms).unwrap_or(f64::NAN),
        p99_ms: field("99%").and_then(ms).unwrap_or(f64::NAN),
        timeouts,
    })
}

/// A keep-alive HTTP/1.1 load: `connections` clients sending GET / back to
/// back for `duration`.
fn load_test(addr: &str, connections: usize, duration: Duration) -> anyhow::Result<LoadResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let addr = addr.to_string();
    runtime.block_on(async move {
        let deadline = tokio::time::Instant::now() + duration;
        let started = Instant::now();
        let mut clients = Vec::new();
        for _ in 0..connections {
            let addr = addr.clone();
            clients.push(tokio::spawn(async move { client(&addr, deadline).await }));
        }
        let mut latencies = Vec::new();
        for c in clients {
            latencies.extend(c.await??);
        }
        let elapsed = started.elapsed().as_secs_f64();
        if latencies.is_empty() {
            bail!("no request completed");
        }
        latencies.sort_by(f64::total_cmp);
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Ok(LoadResult {
            rps: latencies.len() as f64 / elapsed,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            timeouts: 0,
        })
    })
}

/// One load client: latencies in milliseconds.
async fn client(addr: &str, deadline: tokio::time::Instant) -> anyhow::Result<Vec<f64>> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut stream = tokio::io::BufReader::new(stream);
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut latencies = Vec::new();
    let mut line = String::new();
    while tokio::time::Instant::now() < deadline {
        let sent = Instant::now();
        stream.get_mut().write_all(request.as_bytes()).await?;
        let mut length = 0usize;
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                bail!("the server closed the connection");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await?;
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// Echo throughput in MB/s (bytes sent and echoed back, per second):
/// `connections` clients each writing 64 KiB blocks for `duration` while
/// a second thread reads the echo, then half-closing and reading the rest.
/// How long an echo client waits on one read or write before it calls
/// the server stalled.
const ECHO_STALL: Duration = Duration::from_secs(30);

/// How far an echo client's writes may run ahead of the echo it has read
/// back. Unbounded, a client fills the server's receive buffer (up to
/// `tcp_rmem`'s 32 MiB) while the server is blocked writing; the kernel
/// then prunes and drops segments, and loopback recovers only through
/// retransmission timeouts that back off to seconds: the run measured the
/// kernel's backoff, and now and then stalled for minutes. 4 MiB in flight
/// keeps every buffer busy without that.
const ECHO_IN_FLIGHT: u64 = 4 << 20;

/// Bytes per second echoed by the server at `addr` to `connections`
/// clients, each writing 64 KiB blocks for `duration` (never more than
/// [`ECHO_IN_FLIGHT`] ahead of its echo), then half-closing and reading
/// the rest.
fn echo_throughput(addr: &str, connections: usize, duration: Duration) -> anyhow::Result<f64> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let started = Instant::now();
    let deadline = started + duration;
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let addr = addr.to_string();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let stream = std::net::TcpStream::connect(&addr)?;
                stream.set_nodelay(true)?;
                // A stalled server must fail the figure, not hang the run.
                stream.set_read_timeout(Some(ECHO_STALL))?;
                stream.set_write_timeout(Some(ECHO_STALL))?;
                let mut reader = stream.try_clone()?;
                let echoed = Arc::new(AtomicU64::new(0));
                let writer_thread = std::thread::current();
                let counting = {
                    let echoed = Arc::clone(&echoed);
                    std::thread::spawn(move || -> std::io::Result<u64> {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut total = 0u64;
                        let result = loop {
                            match reader.read(&mut buf) {
                                Ok(0) => break Ok(total),
                                Ok(n) => {
                                    total += n as u64;
                                    echoed.store(total, Ordering::Release);
                                    writer_thread.unpark();
                                }
                                Err(e) => {
                                    break Err(std::io::Error::new(
                                        e.kind(),
                                        format!("reading the echo after {total} bytes: {e}"),
                                    ));
                                }
                            }
                        };
                        // Wake a writer waiting for room: it must see the end.
                        echoed.store(u64::MAX, Ordering::Release);
                        writer_thread.unpark();
                        result
                    })
                };
                let block = vec![b'x'; 64 * 1024];
                let mut writer = &stream;
                let mut sent = 0u64;
                'writing: while Instant::now() < deadline {
                    loop {
                        let back = echoed.load(Ordering::Acquire);
                        if back == u64::MAX {
                            break 'writing; // the reader ended; its error says why
                        }
                        if sent - back <= ECHO_IN_FLIGHT {
                            break;
                        }
                        std::thread::park_timeout(Duration::from_millis(10));
                        if Instant::now() >= deadline {
                            break 'writing;
                        }
                    }
                    writer
                        .write_all(&block)
                        .with_context(|| format!("writing after {sent} bytes"))?;
                    sent += block.len() as u64;
                }
                stream.shutdown(std::net::Shutdown::Write)?;
                let echoed = counting
                    .join()
                    .map_err(|_| anyhow::anyhow!("the reading thread panicked"))??;
                if echoed != sent {
                    bail!("sent {sent} bytes, {echoed} came back");
                }
                Ok(echoed)
            })
        })
        .collect();
    let mut total = 0u64;
    for c in clients {
        total += c
            .join()
            .map_err(|_| anyhow::anyhow!("an echo client panicked"))??;
    }
    let mbps = total as f64 / started.elapsed().as_secs_f64() / 1e6;
    eprintln!("tcp echo {addr}: {mbps:.1} MB/s");
    Ok(mbps)
}

/// Resident memory of process `pid`, in MiB.
pub(crate) fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kib / 1024.0)
}

/// `wasabi serve` with `tenants` idle hello-servers, each answering once:
/// (RSS with all − RSS with one) / (tenants − 1), in MiB.
pub(crate) fn density(tools: &Tools, tenants: usize) -> anyhow::Result<f64> {
    let rss_with = |count: usize| -> anyhow::Result<f64> {
        let dir = tools.root.join("target/bench/density");
        let (mut child, addrs) = serve_hello_tenants(tools, &dir, count, None)?;
        let measured = (|| {
            for addr in &addrs {
                if let Some(status) = child.try_wait()? {
                    bail!("wasabi serve exited with {status} before its tenants answered");
                }
                wait_answering(addr)?;
                let mut s = std::net::TcpStream::connect(addr)?;
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
                s.read_to_end(&mut Vec::new())?;
            }
            std::thread::sleep(Duration::from_millis(500));
            rss_mib(child.id())
        })();
        let _ = child.kill();
        let _ = child.wait();
        measured
    };
    let one = rss_with(1)?;
    let all = rss_with(tenants)?;
    Ok((all - one) / (tenants - 1) as f64)
}

/// Starts `wasabi serve` with `count` hello-server tenants (`t0`, `t1`,
/// ...), each on a free port of its own, and with a `[router]` on `router`
/// routing `tI.test` to tenant `tI` if given: the server and the
/// tenants' addresses.
fn serve_hello_tenants(
    tools: &Tools,
    dir: &Path,
    count: usize,
    router: Option<&str>,
) -> anyhow::Result<(Child, Vec<String>)> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = match router {
        Some(addr) => format!("[router]\nlisten = \"{addr}\"\n\n"),
        None => String::new(),
    };
    // Distinct free ports: hold every probe open until all are chosen.
    let probes = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let addrs = probes
        .iter()
        .map(|p| p.local_addr().map(|a| a.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    drop(probes);
    for (i, addr) in addrs.iter().enumerate() {
        manifest.push_str(&format!(
            "[[tenant]]\nname = \"t{i}\"\nmodule = \"{}\"\nlisten = {{ \"127.0.0.1:8080\" = \"{addr}\" }}\n",
            tools.programs.join("hello-server.wasm").display()
        ));
        if router.is_some() {
            manifest.push_str(&format!("routes = [\"t{i}.test\"]\n"));
        }
        manifest.push('\n');
    }
    let path = dir.join(format!("manifest-{count}.toml"));
    std::fs::write(&path, manifest)?;
    let child = Command::new(&tools.wasabi)
        .arg("serve")
        .arg(format!("--cache-dir={}", tools.cache.display()))
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok((child, addrs))
}

/// Requests per second through a `wasabi serve` router in front of
/// `tenants` hello-server tenants, wrk's requests spread evenly over their
/// hosts (`t0.test`, `t1.test`, ...).
fn routed_rps(
    tools: &Tools,
    out_dir: &Path,
    tenants: usize,
    load: Duration,
) -> anyhow::Result<f64> {
    let dir = out_dir.join("routed");
    let router = format!("127.0.0.1:{}", free_port()?);
    let (mut child, _) = serve_hello_tenants(tools, &dir, tenants, Some(&router))?;
    let script = dir.join(format!("hosts-{tenants}.lua"));
    std::fs::write(
        &script,
        format!(
            "local i = 0\nrequest = function()\n  i = (i % {tenants}) + 1\n  \
             return wrk.format(\"GET\", \"/\", {{[\"Host\"] = \"t\" .. (i - 1) .. \".test\"}})\nend\n"
        ),
    )?;
    let measured = (|| {
        wait_answering(&router)?;
        // Every tenant serving through the router before the load starts.
        for i in 0..tenants {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut s = std::net::TcpStream::connect(&router)?;
                write!(
                    s,
                    "GET / HTTP/1.1\r\nHost: t{i}.test\r\nConnection: close\r\n\r\n"
                )?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                if answer.starts_with("HTTP/1.1 200") {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("tenant t{i} never answered through the router: {answer:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let script = script.display().to_string();
        Ok(wrk(&format!("http://{router}/"), 64, load, Some(&script))?.rps)
    })();
    let _ = child.kill();
    let _ = child.wait();
    measured
}

/// Resident memory of an idle program under `cmd`, once it printed its line.
fn idle_rss_mib(cmd: &mut Command) -> anyhow::Result<f64> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    rss
}

fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let version = |cmd: &str, arg: &str| {
        output(Command::new(cmd).arg(arg))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "missing".into())
    };
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "go": version("go", "version"),
        "node": version("node", "--version"),
        "rustc": version("rustc", "--version"),
    })
}

/// Writes results.json, results.md and chart.svg; returns the Markdown.
fn write_results(
    dir: &Path,
    plan: &Plan,
    figures: &[Figure],
    skipped: &[String],
) -> anyhow::Result<String> {
    let machine = machine();
    let records: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| {
            let baselines: serde_json::Map<String, serde_json::Value> = f
                .baselines
                .iter()
                .map(|(b, v)| ((*b).to_string(), json!(v)))
                .collect();
            let ratios: serde_json::Map<String, serde_json::Value> = f
                .baselines
                .iter()
                .filter_map(|(b, _)| f.ratio(b).map(|r| ((*b).to_string(), json!(r))))
                .collect();
            json!({
                "name": f.name,
                "title": f.title,
                "unit": f.unit,
                "wasabi": f.wasabi,
                "baselines": baselines,
                "ratios": ratios,
                "target": f.target_text(),
                "met": f.met(),
                "runs": f.runs,
            })
        })
        .collect();
    let results = json!({
        "quick": plan.quick,
        "machine": machine,
        "skipped": skipped,
        "figures": records,
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;

    let mut md = String::new();
    md.push_str(&format!(
        "# Wasabi benchmark results{}\n\nMachine: {} ({} cores), {}, {}, {}.\n\n",
        if plan.quick {
            " (quick run: few repetitions, debug build; not for publishing)"
        } else {
            ""
        },
        machine["cpu"].as_str().unwrap_or(""),
        machine["cores"],
        machine["go"].as_str().unwrap_or(""),
        machine["node"]
            .as_str()
            .map(|v| format!("Node.js {v}"))
            .unwrap_or_default(),
        machine["rustc"].as_str().unwrap_or(""),
    ));
    md.push_str("| figure | unit | Wasabi | Node.js | native Go | ratio | target | met |\n");
    md.push_str("| --- | --- | ---: | ---: | ---: | --- | --- | --- |\n");
    for f in figures {
        let base = |b: &str| {
            f.baselines
                .iter()
                .find(|(n, _)| *n == b)
                .map_or("–".to_string(), |(_, v)| fmt(*v))
        };
        let ratios: Vec<String> = f
            .baselines
            .iter()
            .filter_map(|(b, _)| f.ratio(b).map(|r| format!("{r:.2}x {b}")))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            f.title,
            f.unit,
            fmt(f.wasabi),
            base("node"),
            base("native"),
            ratios.join(", "),
            f.target_text(),
            match f.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            }
        ));
    }
    for s in skipped {
        md.push_str(&format!("\nSkipped: {s}\n"));
    }
    md.push_str("\nRatios are Wasabi's median over the baseline's; `chart.svg` plots them.\n");
    std::fs::write(dir.join("results.md"), &md)?;
    std::fs::write(dir.join("chart.svg"), chart(figures))?;
    println!("\n{md}");
    println!(
        "wrote {}, results.md and chart.svg",
        dir.join("results.json").display()
    );
    Ok(md)
}

/// Writes docs/performance.md (the table, how to reproduce it) and
/// docs/performance.svg (the chart).
fn publish_docs(root: &Path, results: &Path, table: &str) -> anyhow::Result<()> {
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs)?;
    std::fs::copy(results.join("chart.svg"), docs.join("performance.svg"))?;
    let table = table.replacen("# Wasabi benchmark results", "## Latest results", 1);
    let page = format!(
        "# Performance\n\n\
         Wasabi is measured against what a user would pick instead: Node.js running the same \
         `.wasm` through the Go toolchain's `lib/wasm/wasm_exec_node.js`, and the same program \
         built natively. Every figure is a median of repeated runs, taken side by side in one \
         run on one machine.\n\n\
         Reproduce: `cargo xtask bench --publish` (release build; this page and the chart are \
         rewritten). `cargo xtask bench` writes the same to `target/bench/` only, and \
         `cargo xtask bench --quick` (what CI runs) is a smoke test on a debug build.\n\n\
         {table}\n![Wasabi / baseline ratios](performance.svg)\n\n\
         Where a target is missed, [performance-gaps.md](performance-gaps.md) says why, \
         with the profile that shows it, and what would close it.\n\n\
         ## What each figure measures\n\n\
         - **warm start**: process wall time of `wasabi run hello.wasm` with a warm compiled-module cache, against `node wasm_exec_node.js hello.wasm`.\n\
         - **cold start**: a first run: `wasabi run` of `hello.wasm` with an empty cache of its own. Wasabi compiles it with Winch, starts it, and compiles it with Cranelift in a detached `wasabi cache add` for later runs (not waited for). `cranelift_only`: `--no-cache --tier cranelift`, the one-tier path of earlier releases.\n\
         - **cold start of a large program**: the same for `programs/http-check -h` (10 MB: Go's `net/http` client, TLS and HTTP/2; `-h` prints the usage and exits once every package is initialised).\n\
         - **CPU-bound**: `programs/cpu-bound` (a sha256 chain, JSON, a sort), wall time, from a warm cache; **first run**: the same with an empty cache (compiling included: Winch code, Cranelift's made beside it for later runs).\n\
         - **preemption rows**: `benches/src/bin/preemption.rs` runs `cpu-bound` in-process, on each tier, with epoch interruption on (the Wasabi column: every function entry and loop head checks the epoch) and off (`Preemption::Off`, `epochs_off`). `wasabi` keeps epochs on even for a lone `wasabi run` ([performance-gaps.md](performance-gaps.md) says why).\n\
         - **go test -exec**: `GOOS=js GOARCH=wasm go test -count=1 encoding/json`, the test binary run by `wasabi go-exec` with an empty cache against Go's own `go_js_wasm_exec` (Node.js); wall time of the whole command, Go's build cached.\n\
         - **host-call cost**: `programs/js-calls` times a loop of `js.Global().Get(\"Object\").Type()` inside the guest, so start-up is excluded.\n\
         - **HTTP throughput**: `programs/hello-server` under a keep-alive load of 64 connections from a tokio client in `xtask`: under Wasabi with the host serving HTTP (`wasabi.Serve`, the Wasabi column), with Go's own server in the guest (`-socket`, `wasabi_socket`), and natively with `GOMAXPROCS=1` (`native`) and on all cores; p50/p99 latency of the same requests.\n\
         - **routed tenants**: `wasabi serve` with a `[router]` in front of 100 hello-server tenants (`t0.test` ...), wrk's requests spread over their hosts by a script, against the same router in front of one tenant.\n\
         - **HTTP/2, 100 streams**: `h2load` (Debian's `nghttp2-client`) with one connection carrying 100 concurrent streams against `hello-server` (HTTP/2 without TLS, by prior knowledge; Go's own server in the guest has none).\n\
         - **wrk rows**: the same four servers under Debian's `wrk` (one thread, 64 connections): `hello-server`, a JSON API (`programs/http-handlers` `/json`, a 1 KiB POST decoded and answered) and a 1 MiB streamed response (`/big?mb=1`); req/s and p99, and the requests wrk gave up on after 2 s (none may).\n\
         - **raw TCP echo**: `programs/tcp-echo` (`wasabi.Listen`, `io.Copy` back) under Wasabi and natively; 8 clients in `xtask` each stream 64 KiB writes for the load's duration while reading the echo, then half-close; bytes echoed per second.\n\
         - **WASI rows**: `hello` and `cpu-bound` built with `GOOS=wasip1`, run as WASI commands under Wasabi, against their js/wasm builds under Wasabi (`wasabi_js`), native Go, and wasmtime's own CLI (48.0.8, installed under target/tools) on the same file: warm with its compiled-code cache, cold without. `wasip1_http`: hello-server built for wasip1 (Go's own server in the guest, on a socket of the WasmEdge extension) against the js/wasm build that the host serves, and native; wasmtime's CLI cannot serve it (no preview-1 sockets since version 47). The WASI rows have no target.\n\
         - **spawn**: `benches/src/bin/spawn.rs` asks a `Supervisor` for a hello-server tenant (module compiled and linked) and times it until its listener accepts.\n\
         - **density**: `wasabi serve` with 200 idle hello-server tenants (each answered one request): the resident memory beyond a one-tenant process, per tenant, against the resident memory of one Node.js process running an idle Go program (`programs/idle`; Node.js cannot run hello-server, which needs sockets).\n"
    );
    std::fs::write(docs.join("performance.md"), page)?;
    println!("wrote {}", docs.join("performance.md").display());
    Ok(())
}

fn fmt(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// A bar chart of every ratio against its baseline, on a log scale, with
/// the 1x line (same as the baseline) and each target's bound marked.
fn chart(figures: &[Figure]) -> String {
    let bars: Vec<(String, f64, Option<f64>)> = figures
        .iter()
        .flat_map(|f| {
            f.baselines.iter().filter_map(move |(b, _)| {
                let target = match f.target {
                    Some((tb, bound, _)) if tb == *b => Some(bound),
                    _ => None,
                };
                f.ratio(b)
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .map(|r| (format!("{} vs {b}", f.name), r, target))
            })
        })
        .collect();
    let (width, left, row) = (760.0, 230.0, 26.0);
    let height = 50.0 + row * bars.len() as f64;
    // log10 scale from 0.01x to 100x.
    let x = |r: f64| left + (r.log10() + 2.0) / 4.0 * (width - left - 20.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">Wasabi / baseline (log scale; left of 1x: Wasabi is lower)</text>\n"
    );
    for tick in [0.01, 0.1, 1.0, 10.0, 100.0] {
        let tx = x(tick);
        svg.push_str(&format!(
            "<line x1=\"{tx:.1}\" y1=\"28\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"{}\"/>\n<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick}x</text>\n",
            height - 18.0,
            if tick == 1.0 { "#333" } else { "#ddd" },
            height - 5.0
        ));
    }
    for (i, (label, ratio, target)) in bars.iter().enumerate() {
        let y = 34.0 + row * i as f64;
        let (x0, x1) = (x(1.0), x(ratio.clamp(0.01, 100.0)));
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\n\
             <rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{ratio:.2}x</text>\n",
            left - 8.0,
            y + 12.0,
            x0.min(x1),
            (x1 - x0).abs().max(1.0),
            if *ratio <= 1.0 { "#4a9" } else { "#d84" },
            x0.max(x1) + 4.0,
            y + 12.0,
        ));
        if let Some(bound) = target {
            let tx = x(*bound);
            svg.push_str(&format!(
                "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#00c\" stroke-width=\"2\"/>\n",
                y - 2.0,
                y + 18.0
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Every program the steady-state figures run from the shared cache.
const STEADY_STATE_PROGRAMS: &[&str] = &[
    "hello.wasm",
    "cpu-bound.wasm",
    "js-calls.wasm",
    "hello-server.wasm",
    "http-handlers.wasm",
    "tcp-echo.wasm",
    "idle.wasm",
    "wasip1/hello.wasm",
    "wasip1/cpu-bound.wasm",
    "wasip1/hello-server.wasm",
];

/// Cache folders that are empty when handed out: a cold start's.
struct FreshCaches {
    dir: PathBuf,
    next: std::cell::Cell<usize>,
}

impl FreshCaches {
    fn new(dir: &Path) -> anyhow::Result<FreshCaches> {
        // Earlier runs' caches (and their background compiles' output).
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        Ok(FreshCaches {
            dir: dir.to_path_buf(),
            next: std::cell::Cell::new(0),
        })
    }

    /// `--cache-dir=<a folder no run has used>`.
    fn next(&self) -> String {
        // The previous first run's background compile must not run beside
        // this one (nor beside any later figure): it is waited for here,
        // untimed.
        wait_background_compiles();
        let n = self.next.get();
        self.next.set(n + 1);
        format!("--cache-dir={}", self.dir.join(n.to_string()).display())
    }
}

/// Waits (up to two minutes) until no `wasabi cache add --background` runs.
fn wait_background_compiles() {
    let running = || {
        std::fs::read_dir("/proc")
            .map(|procs| {
                procs.flatten().any(|p| {
                    std::fs::read(p.path().join("cmdline"))
                        .map(|cmd| {
                            cmd.windows(b"cache\0add\0--background".len())
                                .any(|w| w == b"cache\0add\0--background")
                        })
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `go test -count=1 encoding/json` for js/wasm, its test binary run by
/// `wasabi go-exec` with an empty cache and by Go's own Node.js runner:
/// wall time of the whole command (the build is cached by Go after a
/// first, untimed run).
fn go_test_exec(tools: &Tools, fresh: &FreshCaches, runs: usize) -> anyhow::Result<Option<Figure>> {
    let Ok((_, runner)) = &tools.node else {
        return Ok(None);
    };
    let node_exec = runner
        .parent()
        .map(|d| d.join("go_js_wasm_exec"))
        .filter(|p| p.is_file())
        .context("go_js_wasm_exec beside wasm_exec_node.js")?;
    // Outside this repository: its go.work's Go version would set the
    // standard library's GODEBUG defaults for the test (json's synctest
    // tests need the current ones).
    let outside = std::env::temp_dir().join("wasabi-bench-go-test");
    std::fs::create_dir_all(&outside)?;
    let go_test = |exec: String| {
        let mut cmd = Command::new("go");
        cmd.args(["test", "-count=1", "-exec", &exec, "encoding/json"])
            .env("GOOS", "js")
            .env("GOARCH", "wasm")
            .current_dir(&outside);
        cmd
    };
    let wasabi_exec = |flag: String| format!("{} go-exec {flag}", tools.wasabi.display());
    // Builds the test binary into Go's cache, untimed.
    time_run(&mut go_test(wasabi_exec("--no-cache".into())))?;
    let wasabi = median_wall(runs, || go_test(wasabi_exec(fresh.next())))?;
    let node = median_wall(runs, || go_test(node_exec.display().to_string()))?;
    Ok(Some(Figure {
        name: "go_test_exec_cold",
        title: "go test -exec, empty cache (encoding/json, js/wasm; node: Go's go_js_wasm_exec)",
        unit: "s",
        wasabi,
        baselines: vec![("node", node)],
        target: Some(("node", 1.0, true)),
        runs,
    }))
}

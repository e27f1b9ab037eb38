//! Spawn time: milliseconds from asking the supervisor for a tenant (its
//! module already compiled and linked) to its listener accepting a
//! connection. Prints one JSON object: `{"runs": N, "median_ms": M, "samples_ms": [...]}`.
//!
//! ```sh
//! cargo run --release -p wasabi-benches --bin spawn -- target/programs/hello-server.wasm 50
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasabi_core::wasabi_gojs::NetPolicy;
use wasabi_core::{LogFormat, Runtime, RuntimeConfig, Supervisor, TenantSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let module = PathBuf::from(args.next().ok_or("usage: spawn HELLO_SERVER_WASM [RUNS]")?);
    let runs: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let cache = std::env::temp_dir().join("wasabi-bench-spawn-cache");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        instance_slots: Some(64),
        ..RuntimeConfig::default()
    })?;
    let sink: wasabi_core::SharedWriter =
        std::sync::Arc::new(std::sync::Mutex::new(Box::new(std::io::sink())));
    let supervisor = Supervisor::with_output(runtime, LogFormat::Text, sink.clone(), sink);
    let guest = "127.0.0.1:8080".parse()?;
    let spec = |i: usize, host| {
        let mut spec = TenantSpec::new(format!("t{i}"), &module);
        let mut net = NetPolicy::deny_all();
        net.map_listen(guest, host);
        spec.net = net;
        spec
    };
    // Warm-up: compile (or load from the cache) and link once.
    let host = free_port()?;
    supervisor.start(spec(0, host)).await?;
    wait_accepting(host).await?;
    supervisor.stop("t0", Duration::from_secs(1)).await;
    let mut samples = Vec::with_capacity(runs);
    for i in 1..=runs {
        let host = free_port()?;
        let started = Instant::now();
        supervisor.start(spec(i, host)).await?;
        wait_accepting(host).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        supervisor
            .stop(&format!("t{i}"), Duration::from_secs(1))
            .await;
    }
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let rounded: Vec<String> = samples.iter().map(|s| format!("{s:.3}")).collect();
    println!(
        "{{\"runs\": {runs}, \"median_ms\": {median:.3}, \"samples_ms\": [{}]}}",
        rounded.join(", ")
    );
    Ok(())
}

fn free_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Polls until something accepts on `addr`.
async fn wait_accepting(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            // Before the tenant listens, the kernel may pick `addr` itself as
            // the source port and connect the socket to itself (TCP
            // simultaneous open): that is no tenant.
            Ok(s) if s.local_addr().ok() == Some(addr) => {
                drop(s);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_micros(200)).await,
        }
    }
}

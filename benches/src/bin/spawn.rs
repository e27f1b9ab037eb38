//! Spawn time: milliseconds from asking the supervisor for a tenant (its
//! module already compiled and linked) to its listener accepting a
//! connection. Prints one JSON object: `{"runs": N, "median_ms": M, "samples_ms": [...]}`.
//!
//! ```sh
//! cargo run --release -p wasabi-benches --bin spawn -- target/programs/hello-server.wasm 50
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasabi_benches::{free_port, quiet_supervisor, server_spec, wait_accepting};
use wasabi_core::{Runtime, RuntimeConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let module = PathBuf::from(args.next().ok_or("usage: spawn HELLO_SERVER_WASM [RUNS]")?);
    let runs: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let cache = std::env::temp_dir().join("wasabi-bench-spawn-cache");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        instance_slots: Some(64),
        // Spawning is measured on the steady state's code.
        tiering: wasabi_core::Tiering::Cranelift,
        ..RuntimeConfig::default()
    })?;
    let supervisor = quiet_supervisor(runtime);
    let spec = |i: usize, host| server_spec(&module, i, host);
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

//! Tenant churn: starts and stops tenants of one module, in batches, many
//! times over, and reports this process's open descriptors and resident
//! memory before and after: a tenant's end must release everything it held.
//! Prints one JSON object.
//!
//! ```sh
//! cargo run --release -p wasabi-benches --bin churn -- target/programs/hello-server.wasm 10000
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasabi_benches::{free_port, quiet_supervisor, server_spec, wait_accepting};
use wasabi_core::{Runtime, RuntimeConfig};

/// Tenants alive at once in one batch.
const BATCH: usize = 50;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let module = PathBuf::from(
        args.next()
            .ok_or("usage: churn HELLO_SERVER_WASM [CYCLES]")?,
    );
    let cycles: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let cache = std::env::temp_dir().join("wasabi-bench-churn-cache");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        instance_slots: Some(BATCH as u32 * 2),
        // Churn is measured on the steady state's code.
        tiering: wasabi_core::Tiering::Cranelift,
        ..RuntimeConfig::default()
    })?;
    let supervisor = quiet_supervisor(runtime);
    let spec = |i: usize, host| server_spec(&module, i, host);
    // Warm-up: compile (or load from the cache), link, touch the pool.
    let mut n = 0;
    let mut batch = |count: usize| {
        let start = n;
        n += count;
        start..n
    };
    let round = |range: std::ops::Range<usize>| {
        let supervisor = &supervisor;
        let spec = &spec;
        async move {
            let mut names = Vec::new();
            let mut hosts = Vec::new();
            for i in range {
                let host = free_port()?;
                supervisor.start(spec(i, host)).await?;
                names.push(format!("t{i}"));
                hosts.push(host);
            }
            for host in hosts {
                // Each answers before it is stopped: a real start.
                let mut s = wait_accepting(host).await?;
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).await?;
                if !reply.starts_with(b"HTTP/1.") {
                    return Err("a tenant did not answer".into());
                }
                // Close with a reset: tens of thousands of cycles must not
                // use up the ephemeral ports in TIME_WAIT.
                s.set_zero_linger()?;
            }
            for name in names {
                supervisor.stop(&name, Duration::from_secs(1)).await;
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        }
    };
    round(batch(BATCH)).await?;
    let (fds_before, rss_before) = (open_fds(), rss_kib());
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut done = 0;
    while done < cycles {
        let count = BATCH.min(cycles - done);
        round(batch(count)).await?;
        done += count;
        if done % 1000 == 0 || done == cycles {
            samples.push(format!(
                "{{\"cycles\": {done}, \"fds\": {}, \"rss_kib\": {}}}",
                open_fds(),
                rss_kib()
            ));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // Give the allocator and tokio a moment to settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{{\"cycles\": {cycles}, \"seconds\": {secs:.1}, \"fds_before\": {fds_before}, \"fds_after\": {}, \"rss_kib_before\": {rss_before}, \"rss_kib_after\": {}, \"samples\": [{}]}}",
        open_fds(),
        rss_kib(),
        samples.join(", ")
    );
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

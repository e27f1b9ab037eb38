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

use wasabi_core::wasabi_gojs::NetPolicy;
use wasabi_core::{LogFormat, Runtime, RuntimeConfig, Supervisor, TenantSpec};

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

fn free_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Polls until something accepts on `addr`.
async fn wait_accepting(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
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
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_micros(200)).await,
        }
    }
}

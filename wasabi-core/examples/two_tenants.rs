//! Hosts two tenants of the same Go program in one process with the
//! `wasabi-core` library, without the CLI: both listen on guest address
//! 127.0.0.1:8080, each mapped to its own host port; the example asks each
//! for its greeting, prints the supervisor's view, and shuts both down.
//!
//! ```sh
//! cargo xtask build-examples      # builds target/programs/hello-server.wasm
//! cargo run -p wasabi-core --example two_tenants [path/to/hello-server.wasm]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasabi_core::NetPolicy;
use wasabi_core::{Runtime, RuntimeConfig, Supervisor, TenantSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let module = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/programs/hello-server.wasm")
        });
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: wasabi_core::cache::default_cache_dir(),
        instance_slots: Some(16),
        ..RuntimeConfig::default()
    })?;
    let supervisor = Supervisor::new(runtime);

    let guest: SocketAddr = "127.0.0.1:8080".parse()?;
    let mut hosts = Vec::new();
    let mut specs = Vec::new();
    for (name, greeting) in [("alice", "hello from alice"), ("bob", "hello from bob")] {
        // A free host port for this tenant's guest 127.0.0.1:8080.
        let host = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut spec = TenantSpec::new(name, &module);
        spec.env.push(("GREETING".into(), greeting.into()));
        let mut net = NetPolicy::deny_all();
        net.map_listen(guest, host);
        spec.net = net;
        spec.limits.max_memory = Some(64 << 20);
        hosts.push((name, host));
        specs.push(spec);
    }
    supervisor.start_all(specs).await?;

    for (name, host) in &hosts {
        let answer = ask(*host).await?;
        println!("{name} on host {host} answers: {}", answer.trim_end());
    }
    for status in supervisor.status() {
        println!(
            "{}: {:?}, {} KiB of memory, {:.3} s of CPU",
            status.name,
            status.state,
            status.memory_bytes >> 10,
            status.cpu_seconds
        );
    }
    supervisor.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// GETs `/` from `addr`, retrying while the tenant starts; returns the body.
async fn ask(addr: SocketAddr) -> std::io::Result<String> {
    for _ in 0..200 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        };
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        return Ok(body.to_string());
    }
    Err(std::io::Error::other(format!("{addr} never answered")))
}

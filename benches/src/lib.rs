//! Measurements for `cargo xtask bench` and `cargo xtask soak` that need the
//! library rather than the `wasabi` binary (`src/bin/spawn.rs`,
//! `src/bin/churn.rs`), and criterion benches of the hot paths
//! (`benches/`). What the binaries share is here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasabi_core::NetPolicy;
use wasabi_core::{LogFormat, Runtime, Supervisor, TenantSpec};

/// A supervisor over `runtime` whose tenants' output goes nowhere.
pub fn quiet_supervisor(runtime: Runtime) -> Supervisor {
    let sink: wasabi_core::SharedWriter = Arc::new(Mutex::new(Box::new(std::io::sink())));
    Supervisor::with_output(runtime, LogFormat::Text, sink.clone(), sink)
}

/// Tenant `t{i}` of `module`, listening (as it believes) on
/// 127.0.0.1:8080, bound on the host at `host`.
pub fn server_spec(module: &Path, i: usize, host: SocketAddr) -> TenantSpec {
    let mut spec = TenantSpec::new(format!("t{i}"), module);
    let mut net = NetPolicy::deny_all();
    let guest = SocketAddr::from(([127, 0, 0, 1], 8080));
    net.map_listen(guest, host);
    spec.net = net;
    spec
}

/// A loopback address that was free a moment ago.
pub fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Polls until something accepts on `addr`, and returns that connection.
pub async fn wait_accepting(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
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

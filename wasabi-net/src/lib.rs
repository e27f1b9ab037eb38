//! Networking for Wasabi tenants: sockets and listeners as host objects on
//! tokio, and the network policy that decides what a tenant may reach.
//!
//! Nothing is reachable by default. This crate is where the networking
//! capability lands (listen, accept, dial, read, write, close, per-tenant
//! caps, and the `--allow-listen` / `--allow-connect` policy); until then it
//! holds no code, so that no half-built capability can be granted by mistake.

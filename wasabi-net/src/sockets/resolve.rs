//! Resolving host names for a guest that resolves before it connects (the
//! WASI socket extension's `sock_getaddrinfo`), without widening its
//! policy.
//!
//! A connect grant may name a host (`--allow-connect=api.example.com:443`).
//! A js guest dials the name and the host resolves it after the check; a
//! WASI guest resolves first and connects to an address. So a name is
//! resolved only when a connect grant names it, and the addresses found are
//! remembered: connecting to one of them is then checked as connecting to
//! the name (same ports), and to nothing else.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Sockets;
use crate::NetError;
use crate::address::{Endpoint, Host};
use crate::error::NetUse;

/// The most addresses remembered for one instance; past it the oldest
/// answers are forgotten (connecting to them is denied again until they
/// are resolved again).
const MAX_RESOLVED: usize = 1024;

/// Addresses found for granted names, with the name each answers for.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    names: HashMap<IpAddr, String>,
    order: std::collections::VecDeque<IpAddr>,
}

impl Resolved {
    fn remember(&mut self, ip: IpAddr, name: &str) {
        if self.names.insert(ip, name.to_string()).is_none() {
            self.order.push_back(ip);
        }
        while self.order.len() > MAX_RESOLVED {
            if let Some(old) = self.order.pop_front() {
                self.names.remove(&old);
            }
        }
    }
}

impl Sockets {
    /// Checks a connect to `endpoint`: granted as written, or (an address
    /// [`resolve`](Self::resolve) found for a name) granted for that name.
    pub(super) fn check_connect(&self, endpoint: &Endpoint) -> Result<(), NetError> {
        let denied = match self.policy.check_connect(endpoint) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Host::Ip(ip) = endpoint.host
            && let Some(name) = self.resolved.names.get(&ip)
        {
            let by_name = Endpoint {
                host: Host::Name(name.clone()),
                port: endpoint.port,
            };
            if self.policy.check_connect(&by_name).is_ok() {
                return Ok(());
            }
        }
        Err(denied)
    }

    /// The addresses of `name` for connecting to `port` (IPv4 and IPv6,
    /// as `want_v4`/`want_v6` ask): an IP address is itself, `localhost`
    /// the loopback addresses, and any other name is resolved by the host
    /// only if a connect grant names it for `port` — the answers are then
    /// granted as the name is.
    pub async fn resolve(
        &mut self,
        name: &str,
        port: u16,
        want_v4: bool,
        want_v6: bool,
    ) -> Result<Vec<SocketAddr>, NetError> {
        let keep = |a: &SocketAddr| (want_v4 && a.is_ipv4()) || (want_v6 && a.is_ipv6());
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok([SocketAddr::new(ip, port)]
                .into_iter()
                .filter(keep)
                .collect());
        }
        if name.eq_ignore_ascii_case("localhost") {
            let loopback: [IpAddr; 2] = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
            return Ok(loopback
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .filter(keep)
                .collect());
        }
        let endpoint = Endpoint {
            host: Host::Name(name.to_ascii_lowercase()),
            port,
        };
        if self.policy.check_connect(&endpoint).is_err() {
            return Err(NetError::Denied {
                what: NetUse::Connect,
                endpoint: endpoint.to_string(),
            });
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await?
            .filter(keep)
            .collect();
        for addr in &found {
            self.resolved.remember(addr.ip(), &endpoint.host_name());
        }
        if found.is_empty() {
            return Err(NetError::NoAddress {
                host: name.to_string(),
                family: "IP",
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AddressRule, NetPolicy, SocketQuota};
    use std::sync::Arc;

    fn sockets(grant: &str) -> Sockets {
        let mut policy = NetPolicy::deny_all();
        policy.allow_connect(grant.parse::<AddressRule>().unwrap());
        Sockets::new(policy, SocketQuota::new(8), Arc::default())
    }

    #[tokio::test]
    async fn a_name_resolves_only_when_granted_and_its_answers_are_granted_as_it_is() {
        // The machine's own name, when its resolver knows it (from
        // /etc/hosts, usually): no network needed.
        let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") else {
            return;
        };
        let name = name.trim().to_ascii_lowercase();
        if std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 1)).is_err() {
            eprintln!("skipped: {name} does not resolve here");
            return;
        }
        let mut net = sockets(&format!("{name}:8443"));
        let found = net.resolve(&name, 8443, true, true).await.unwrap();
        assert!(!found.is_empty());
        for addr in &found {
            assert!(net.check_connect(&Endpoint::from(*addr)).is_ok(), "{addr}");
            let other = SocketAddr::new(addr.ip(), 8444);
            assert!(
                net.check_connect(&Endpoint::from(other)).is_err(),
                "{other}"
            );
        }
        // Another port of the name, or another name: refused before any lookup.
        assert!(matches!(
            net.resolve(&name, 80, true, true).await,
            Err(NetError::Denied { .. })
        ));
        assert!(matches!(
            net.resolve("example.invalid", 8443, true, true).await,
            Err(NetError::Denied { .. })
        ));
        // Addresses and localhost need no grant to resolve (connecting to
        // them still does).
        let local = net.resolve("localhost", 5, true, false).await.unwrap();
        assert_eq!(local, [SocketAddr::from(([127, 0, 0, 1], 5))]);
        assert!(net.check_connect(&Endpoint::from(local[0])).is_err());
    }
}

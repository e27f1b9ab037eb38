//! Addresses as a guest writes them (`127.0.0.1:8080`, `[::1]:80`,
//! `localhost:5432`, `:8080`) and the network families Go names
//! (`tcp`, `tcp4`, `tcp6`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::NetError;

/// The host part of an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A host name, resolved only after the policy allowed it.
    Name(String),
}

/// A host and a port, as a guest passes them to listen or dial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }
}

impl Endpoint {
    /// The host part as text (an IPv6 address without brackets).
    pub fn host_name(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => name.clone(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

impl FromStr for Endpoint {
    type Err = NetError;

    /// Parses `host:port` or `[ipv6]:port`; an empty host is `0.0.0.0`.
    fn from_str(text: &str) -> Result<Endpoint, NetError> {
        let bad = |reason: &'static str| NetError::BadAddress {
            address: text.to_string(),
            reason,
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
        let host = match host.strip_prefix('[') {
            Some(inner) => {
                let inner = inner
                    .strip_suffix(']')
                    .ok_or_else(|| bad("unbalanced brackets"))?;
                let ip = inner
                    .parse::<std::net::Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address inside the brackets"))?;
                Host::Ip(IpAddr::V6(ip))
            }
            None if host.is_empty() => Host::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            None if host.contains(':') => return Err(bad("too many colons")),
            None => match host.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) if is_host_name(host) => Host::Name(host.to_ascii_lowercase()),
                Err(_) => return Err(bad("not an IP address or a host name")),
            },
        };
        Ok(Endpoint { host, port })
    }
}

/// The address family a Go network name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `tcp`: IPv4 or IPv6.
    Any,
    /// `tcp4`.
    V4,
    /// `tcp6`.
    V6,
}

impl Family {
    /// The family of a Go network name; only TCP is supported.
    pub fn from_network(network: &str) -> Result<Family, NetError> {
        match network {
            "tcp" => Ok(Family::Any),
            "tcp4" => Ok(Family::V4),
            "tcp6" => Ok(Family::V6),
            other => Err(NetError::UnsupportedNetwork(other.to_string())),
        }
    }

    /// `true` when `addr` belongs to this family.
    pub fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// `true` for a plausible DNS name: letters, digits, `-` and `.`.
pub(crate) fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_go_writes_them() {
        let ep = |s: &str| s.parse::<Endpoint>().unwrap().to_string();
        assert_eq!(ep("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(ep(":8080"), "0.0.0.0:8080");
        assert_eq!(ep("[::1]:80"), "[::1]:80");
        assert_eq!(ep("LocalHost:5432"), "localhost:5432");
        for bad in [
            "127.0.0.1",
            "127.0.0.1:x",
            "::1:80",
            "[::1:80",
            "a b:1",
            "[zz]:1",
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn only_tcp_networks() {
        assert_eq!(Family::from_network("tcp4").unwrap(), Family::V4);
        let err = Family::from_network("udp").unwrap_err().to_string();
        assert!(err.contains("udp") && err.contains("tcp"), "{err}");
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert!(!Family::V4.admits(&v6) && Family::Any.admits(&v6));
    }
}

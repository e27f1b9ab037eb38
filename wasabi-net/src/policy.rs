//! The network policy: which local addresses a tenant may listen on and which
//! remote addresses it may connect to.
//!
//! A policy starts empty — nothing is reachable — and is widened one rule at a
//! time, the way a person reads it off a command line
//! (`--allow-listen=127.0.0.1:8080 --allow-connect=10.0.0.0/8:5432`).
//!
//! ```
//! use wasabi_net::{AddressRule, NetPolicy};
//!
//! let mut policy = NetPolicy::deny_all();
//! policy.allow_listen("127.0.0.1:8080".parse::<AddressRule>()?);
//! policy.allow_connect("10.0.0.0/8:5432".parse::<AddressRule>()?);
//! assert!(policy.check_listen(&"127.0.0.1:8080".parse()?).is_ok());
//! assert!(policy.check_listen(&"127.0.0.1:8081".parse()?).is_err());
//! assert!(policy.check_connect(&"10.1.2.3:5432".parse()?).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::NetError;
use crate::address::{Endpoint, Host, is_host_name};
use crate::error::NetUse;

/// What a rule says about the host part of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this IP address.
    Ip(IpAddr),
    /// Any address in this network (`10.0.0.0/8`, `fd00::/8`).
    Network { base: IpAddr, prefix: u8 },
    /// Exactly this host name (compared without regard to case).
    Name(String),
}

/// One grant: a host (an IP address, a network in CIDR notation, or a host
/// name) and optionally a port. Without a port, every port is granted.
///
/// Parsed from `HOST[:PORT]`, `CIDR[:PORT]`, `[IPV6][:PORT]` or
/// `[IPV6/PREFIX][:PORT]`; an empty host (`:8080`) means `0.0.0.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRule {
    host: HostPattern,
    port: Option<u16>,
}

/// Why a rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address rule `{rule}`: {reason}")]
pub struct RuleParseError {
    rule: String,
    reason: &'static str,
}

impl FromStr for AddressRule {
    type Err = RuleParseError;

    fn from_str(text: &str) -> Result<AddressRule, RuleParseError> {
        let err = |reason| RuleParseError {
            rule: text.to_string(),
            reason,
        };
        let (host, port) = split_host_port(text).ok_or_else(|| err("unbalanced brackets"))?;
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| err("the port must be a number from 0 to 65535"))?,
            ),
        };
        let host = if host.is_empty() {
            HostPattern::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        } else if let Some((base, prefix)) = host.split_once('/') {
            let base: IpAddr = base
                .parse()
                .map_err(|_| err("a network must be an IP address followed by /PREFIX"))?;
            let max = if base.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| err("the prefix length is out of range"))?;
            HostPattern::Network { base, prefix }
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else if is_host_name(host) {
            HostPattern::Name(host.to_ascii_lowercase())
        } else {
            return Err(err("not an IP address, a network or a host name"));
        };
        Ok(AddressRule { host, port })
    }
}

impl fmt::Display for AddressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            HostPattern::Ip(ip) => ip.to_string(),
            HostPattern::Network { base, prefix } if base.is_ipv6() => {
                format!("[{base}/{prefix}]")
            }
            HostPattern::Network { base, prefix } => format!("{base}/{prefix}"),
            HostPattern::Name(name) => name.clone(),
        };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

/// Splits `host[:port]`, `[v6][:port]`; an unbracketed text with more than
/// one colon is an IPv6 address (or network) without a port.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    if text.contains(']') {
        return None;
    }
    match text.matches(':').count() {
        0 => Some((text, None)),
        1 => text.split_once(':').map(|(h, p)| (h, Some(p))),
        _ => Some((text, None)),
    }
}

impl AddressRule {
    /// `true` when this rule grants `endpoint`.
    pub fn matches(&self, endpoint: &Endpoint) -> bool {
        if self.port.is_some_and(|p| p != endpoint.port) {
            return false;
        }
        match (&self.host, &endpoint.host) {
            (HostPattern::Ip(rule), Host::Ip(ip)) => canonical(*rule) == canonical(*ip),
            (HostPattern::Network { base, prefix }, Host::Ip(ip)) => {
                in_network(canonical(*ip), canonical(*base), *prefix)
            }
            (HostPattern::Name(rule), Host::Name(name)) => rule.eq_ignore_ascii_case(name),
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, base: IpAddr, prefix: u8) -> bool {
    let mask = |bits: u32, prefix: u8| -> u128 {
        if prefix == 0 {
            0
        } else {
            (!0u128) << (bits - u32::from(prefix))
        }
    };
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            let m = mask(32, prefix) as u32;
            u32::from(ip) & m == u32::from(base) & m
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            let m = mask(128, prefix);
            u128::from(ip) & m == u128::from(base) & m
        }
        _ => false,
    }
}

/// What one direction (listen or connect) grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Grant {
    /// Only what the rules match (nothing, when there are none).
    #[default]
    Rules,
    /// Everything.
    Everything,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Direction {
    grant: Grant,
    rules: Vec<AddressRule>,
}

impl Direction {
    fn allows(&self, endpoint: &Endpoint) -> bool {
        self.grant == Grant::Everything || self.rules.iter().any(|r| r.matches(endpoint))
    }
}

/// The network a tenant may use. [`NetPolicy::deny_all`] (the default) grants
/// nothing; each `allow_*` or `map_listen` call widens it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    listen: Direction,
    connect: Direction,
    /// Guest listen addresses bound on other host addresses.
    listen_map: Vec<(SocketAddr, SocketAddr)>,
}

impl NetPolicy {
    /// A policy that grants nothing.
    pub fn deny_all() -> NetPolicy {
        NetPolicy::default()
    }

    /// A policy that grants every listen and every connect, for a trusted
    /// program (`--allow-net`).
    pub fn allow_all() -> NetPolicy {
        let mut policy = NetPolicy::default();
        policy.allow_all_listen();
        policy.allow_all_connect();
        policy
    }

    /// Grants listening on addresses `rule` matches.
    pub fn allow_listen(&mut self, rule: AddressRule) -> &mut Self {
        self.listen.rules.push(rule);
        self
    }

    /// Grants connecting to addresses `rule` matches.
    pub fn allow_connect(&mut self, rule: AddressRule) -> &mut Self {
        self.connect.rules.push(rule);
        self
    }

    /// Grants listening on any local address.
    pub fn allow_all_listen(&mut self) -> &mut Self {
        self.listen.grant = Grant::Everything;
        self
    }

    /// Grants connecting to any address.
    pub fn allow_all_connect(&mut self) -> &mut Self {
        self.connect.grant = Grant::Everything;
        self
    }

    /// Grants listening on `guest`, and binds it on `host` instead: two
    /// tenants may both listen on guest `127.0.0.1:8080`, each on its own
    /// host address. The guest sees its own address as the local address.
    pub fn map_listen(&mut self, guest: SocketAddr, host: SocketAddr) -> &mut Self {
        self.listen_map.retain(|(g, _)| *g != guest);
        self.listen_map.push((guest, host));
        self
    }

    /// The guest-to-host listen mappings.
    pub fn listen_map(&self) -> &[(SocketAddr, SocketAddr)] {
        &self.listen_map
    }

    /// The single addresses listening is granted on: each rule naming one
    /// IP address (or `localhost`) and one port other than 0, then each
    /// mapped guest address, in the order given, without repeats. What a
    /// runtime can open for a guest before it starts.
    pub fn listen_addresses(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        let rules = self.listen.rules.iter().filter_map(|r| {
            let ip = match &r.host {
                HostPattern::Ip(ip) => *ip,
                HostPattern::Name(name) if name == "localhost" => Ipv4Addr::LOCALHOST.into(),
                _ => return None,
            };
            r.port
                .filter(|p| *p != 0)
                .map(|port| SocketAddr::new(ip, port))
        });
        for addr in rules.chain(self.listen_map.iter().map(|(guest, _)| *guest)) {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        out
    }

    /// `true` when nothing at all is granted.
    pub fn is_deny_all(&self) -> bool {
        self.listen.grant == Grant::Rules
            && self.listen.rules.is_empty()
            && self.connect.grant == Grant::Rules
            && self.connect.rules.is_empty()
            && self.listen_map.is_empty()
    }

    /// Checks a listen on `endpoint`.
    pub fn check_listen(&self, endpoint: &Endpoint) -> Result<(), NetError> {
        self.listen_target(endpoint).map(|_| ())
    }

    /// Where a listen on `endpoint` binds: the mapped host address, or the
    /// address itself when a rule grants it (`None`: bind as written).
    pub fn listen_target(&self, endpoint: &Endpoint) -> Result<Option<SocketAddr>, NetError> {
        if let Host::Ip(ip) = endpoint.host {
            let guest = SocketAddr::new(ip, endpoint.port);
            if let Some((_, host)) = self.listen_map.iter().find(|(g, _)| *g == guest) {
                return Ok(Some(*host));
            }
        }
        if self.listen.allows(endpoint) {
            return Ok(None);
        }
        Err(NetError::Denied {
            what: NetUse::Listen,
            endpoint: endpoint.to_string(),
        })
    }

    /// Checks a connect to `endpoint` (as the guest wrote it: a host name is
    /// checked as a name, before it is resolved).
    pub fn check_connect(&self, endpoint: &Endpoint) -> Result<(), NetError> {
        if self.connect.allows(endpoint) {
            return Ok(());
        }
        Err(NetError::Denied {
            what: NetUse::Connect,
            endpoint: endpoint.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> AddressRule {
        s.parse().unwrap()
    }

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_print_back() {
        for text in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "10.0.0.0/8",
            "10.0.0.0/8:5432",
            "[::1]:80",
            "[::1]",
            "[fd00::/8]:443",
            "example.com:443",
            "localhost",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
        assert_eq!(rule(":8080").to_string(), "0.0.0.0:8080");
        assert_eq!(rule("::1").to_string(), "[::1]");
        assert_eq!(rule("Example.COM:1").to_string(), "example.com:1");
    }

    #[test]
    fn bad_rules_say_why() {
        for (text, reason) in [
            ("127.0.0.1:http", "port"),
            ("127.0.0.1:70000", "port"),
            ("10.0.0.0/33", "prefix"),
            ("10.0.0.0/x", "prefix"),
            ("banana/8", "network"),
            ("[::1", "brackets"),
            ("a b", "host name"),
            ("-bad", "host name"),
        ] {
            let err = text.parse::<AddressRule>().unwrap_err().to_string();
            assert!(err.contains(text) && err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn rules_match_hosts_networks_and_ports() {
        assert!(rule("127.0.0.1:80").matches(&ep("127.0.0.1:80")));
        assert!(!rule("127.0.0.1:80").matches(&ep("127.0.0.1:81")));
        assert!(!rule("127.0.0.1:80").matches(&ep("127.0.0.2:80")));
        assert!(rule("127.0.0.1").matches(&ep("127.0.0.1:1")));
        assert!(rule("10.0.0.0/8").matches(&ep("10.200.3.4:22")));
        assert!(!rule("10.0.0.0/8").matches(&ep("11.0.0.1:22")));
        assert!(rule("0.0.0.0/0:53").matches(&ep("8.8.8.8:53")));
        assert!(rule("[fd00::/8]").matches(&ep("[fd12::1]:1")));
        assert!(!rule("[fd00::/8]").matches(&ep("10.0.0.1:1")));
        assert!(rule("[::ffff:127.0.0.1]").matches(&ep("127.0.0.1:5")));
        assert!(rule("example.com:443").matches(&ep("EXAMPLE.com:443")));
        // A name grants the name, not whatever it might resolve to.
        assert!(!rule("localhost").matches(&ep("127.0.0.1:80")));
        assert!(!rule("127.0.0.1").matches(&ep("localhost:80")));
    }

    #[test]
    fn the_default_denies_and_says_what() {
        let policy = NetPolicy::deny_all();
        let err = policy.check_listen(&ep("127.0.0.1:8080")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "listening on 127.0.0.1:8080 is not allowed"
        );
        let err = policy.check_connect(&ep("[::1]:443")).unwrap_err();
        assert_eq!(err.to_string(), "connecting to [::1]:443 is not allowed");
        assert!(policy.is_deny_all());
    }

    #[test]
    fn mapped_listens_bind_elsewhere_and_others_are_denied() {
        let mut policy = NetPolicy::deny_all();
        policy.map_listen(
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
        );
        assert!(!policy.is_deny_all());
        assert_eq!(
            policy.listen_target(&ep("127.0.0.1:8080")).unwrap(),
            Some("127.0.0.1:9001".parse().unwrap())
        );
        let err = policy.listen_target(&ep("127.0.0.1:8081")).unwrap_err();
        assert!(matches!(
            err,
            NetError::Denied { what: NetUse::Listen, ref endpoint } if endpoint == "127.0.0.1:8081"
        ));
        assert!(policy.check_connect(&ep("10.0.0.1:5432")).is_err());
    }

    #[test]
    fn grants_are_per_direction() {
        let mut policy = NetPolicy::deny_all();
        policy.allow_listen(rule("127.0.0.1"));
        assert!(policy.check_listen(&ep("127.0.0.1:9")).is_ok());
        assert!(policy.check_connect(&ep("127.0.0.1:9")).is_err());
        let all = NetPolicy::allow_all();
        assert!(all.check_connect(&ep("example.org:80")).is_ok());
        assert!(all.check_listen(&ep("0.0.0.0:80")).is_ok());
    }
}

//! [`NetError`]: why a network operation failed, with the POSIX error code a
//! guest maps onto its own error values.

use std::io;

use wasabi_limits::{Advice, Cap, Grant};

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The network policy does not grant the operation.
    #[error("{} is not allowed", .what.grant(.endpoint))]
    Denied {
        /// What the tenant tried.
        what: NetUse,
        /// The address, as the guest gave it.
        endpoint: String,
    },
    /// The instance holds as many sockets as it may.
    #[error("too many open sockets: this program may hold {limit} at once")]
    TooManySockets {
        /// The cap.
        limit: usize,
    },
    /// The address cannot be parsed.
    #[error("invalid address `{address}`: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A network other than TCP.
    #[error("network `{0}` is not supported: only tcp, tcp4 and tcp6 are")]
    UnsupportedNetwork(String),
    /// A name resolved to no address of the requested family.
    #[error("no {family} address found for {host}")]
    NoAddress {
        /// The host name.
        host: String,
        /// `"IPv4"`, `"IPv6"` or `"IP"`.
        family: &'static str,
    },
    /// The id names no open socket of this instance.
    #[error("socket {0} is not open")]
    NotOpen(u32),
    /// The operation does not apply to this kind of socket (accept on a
    /// connection, read on a listener).
    #[error("socket {id} is {what}")]
    WrongKind {
        /// The socket.
        id: u32,
        /// What it is instead, e.g. `"a listener"`.
        what: &'static str,
    },
    /// The operating system refused.
    #[error("{}", io_message(.0))]
    Io(#[from] io::Error),
    /// An HTTP request that cannot be made, or an HTTP exchange that failed.
    #[error("{0}")]
    Http(String),
    /// A TLS connection could not be made: most often, the server's
    /// certificate was not accepted.
    #[error("TLS handshake with {endpoint} failed: {failure}")]
    Tls {
        /// The server's host and port.
        endpoint: String,
        /// What went wrong.
        failure: crate::TlsFailure,
    },
    /// The tenant's memory limit leaves no room for what was asked.
    #[error("out of memory: no room under this program's memory limit for {0}")]
    NoMemory(&'static str),
}

/// What a tenant used the network for, in a [`NetError::Denied`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetUse {
    /// Listening on a local address.
    Listen,
    /// Connecting to a host and port.
    Connect,
}

impl NetUse {
    /// The grant this use of `endpoint` needs.
    pub fn grant(self, endpoint: &str) -> Grant<'_> {
        match self {
            NetUse::Listen => Grant::Listen { endpoint },
            NetUse::Connect => Grant::Connect { endpoint },
        }
    }
}

impl NetError {
    /// The message, followed by how to change what was refused, as
    /// `advice` words it for the tenant's owner (the guest sees this text).
    pub fn advised(&self, advice: &dyn Advice) -> String {
        let hint = match self {
            NetError::Denied { what, endpoint } => advice.grant(&what.grant(endpoint)),
            NetError::TooManySockets { .. } => advice.raise(Cap::Sockets),
            NetError::NoMemory(_) => advice.raise(Cap::Memory),
            _ => None,
        };
        wasabi_limits::advised(self, hint)
    }

    /// The POSIX error name that best describes this error (`ECONNREFUSED`,
    /// `EACCES`, ...), as Node.js reports it in an error's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            NetError::Denied { .. } => "EACCES",
            NetError::TooManySockets { .. } => "EMFILE",
            NetError::BadAddress { .. } | NetError::WrongKind { .. } => "EINVAL",
            NetError::UnsupportedNetwork(_) => "EAFNOSUPPORT",
            NetError::NoAddress { .. } => "EADDRNOTAVAIL",
            NetError::NotOpen(_) => "EBADF",
            NetError::Io(e) => io_code(e),
            NetError::Http(_) => "EPROTO",
            NetError::Tls { failure, .. } => failure.code(),
            NetError::NoMemory(_) => "ENOMEM",
        }
    }
}

/// The message for an I/O error, worded as Go words the same errno on
/// Linux, so a guest's error text matches its native build's.
fn io_message(e: &io::Error) -> String {
    let text = match io_code(e) {
        "ECONNREFUSED" => "connection refused",
        "ECONNRESET" => "connection reset by peer",
        "ECONNABORTED" => "software caused connection abort",
        "EPIPE" => "broken pipe",
        "EADDRINUSE" => "address already in use",
        "EADDRNOTAVAIL" => "cannot assign requested address",
        "ENOTCONN" => "transport endpoint is not connected",
        "ETIMEDOUT" => "connection timed out",
        "EHOSTUNREACH" => "no route to host",
        "ENETUNREACH" => "network is unreachable",
        "ENETDOWN" => "network is down",
        "EACCES" => "permission denied",
        _ => return e.to_string(),
    };
    text.to_string()
}

/// The number of a POSIX error name, as Linux numbers it — and so as Go
/// numbers `syscall.Errno` on js/wasm and wasip1, where a guest turns it
/// back into the same error value (`errors.Is(err, syscall.ECONNREFUSED)`).
/// `EIO` for a name this table does not know.
pub fn errno_number(code: &str) -> i32 {
    match code {
        "EINTR" => 4,
        "EIO" => 5,
        "EBADF" => 9,
        "ENOMEM" => 12,
        "EACCES" => 13,
        "EINVAL" => 22,
        "EMFILE" => 24,
        "EPIPE" => 32,
        "EPROTO" => 71,
        "EAFNOSUPPORT" => 97,
        "EADDRINUSE" => 98,
        "EADDRNOTAVAIL" => 99,
        "ENETDOWN" => 100,
        "ENETUNREACH" => 101,
        "ECONNABORTED" => 103,
        "ECONNRESET" => 104,
        "ENOTCONN" => 107,
        "ETIMEDOUT" => 110,
        "ECONNREFUSED" => 111,
        "EHOSTUNREACH" => 113,
        _ => 5,
    }
}

/// The POSIX name for an I/O error.
fn io_code(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "ECONNREFUSED",
        K::ConnectionReset => "ECONNRESET",
        K::ConnectionAborted => "ECONNABORTED",
        K::BrokenPipe => "EPIPE",
        K::AddrInUse => "EADDRINUSE",
        K::AddrNotAvailable => "EADDRNOTAVAIL",
        K::NotConnected => "ENOTCONN",
        K::TimedOut => "ETIMEDOUT",
        K::HostUnreachable => "EHOSTUNREACH",
        K::NetworkUnreachable => "ENETUNREACH",
        K::NetworkDown => "ENETDOWN",
        K::PermissionDenied => "EACCES",
        K::InvalidInput => "EINVAL",
        K::Interrupted => "EINTR",
        _ => "EIO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_posix_codes() {
        let e = NetError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(e.code(), "ECONNREFUSED");
        let e = NetError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(e.code(), "ECONNRESET");
        assert_eq!(e.to_string(), "connection reset by peer");
        assert_eq!(NetError::TooManySockets { limit: 3 }.code(), "EMFILE");
    }

    #[test]
    fn every_code_has_its_linux_number() {
        for (code, n) in [("ECONNREFUSED", 111), ("EACCES", 13), ("EMFILE", 24)] {
            assert_eq!(errno_number(code), n);
        }
        let kinds = [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::AddrInUse,
            io::ErrorKind::AddrNotAvailable,
            io::ErrorKind::NotConnected,
            io::ErrorKind::TimedOut,
            io::ErrorKind::HostUnreachable,
            io::ErrorKind::NetworkUnreachable,
            io::ErrorKind::NetworkDown,
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::InvalidInput,
            io::ErrorKind::Interrupted,
        ];
        for kind in kinds {
            let code = NetError::from(io::Error::from(kind)).code();
            assert_ne!(errno_number(code), 5, "{code} has no number");
        }
    }

    #[test]
    fn refusals_say_what_happened_and_the_edge_says_what_to_do() {
        #[derive(Debug)]
        struct Flags;
        impl Advice for Flags {
            fn grant(&self, grant: &Grant<'_>) -> Option<String> {
                Some(format!("grant {grant}"))
            }
            fn raise(&self, cap: Cap) -> Option<String> {
                Some(format!("raise {cap}"))
            }
        }
        let denied = NetError::Denied {
            what: NetUse::Connect,
            endpoint: "10.0.0.1:80".into(),
        };
        assert_eq!(
            denied.to_string(),
            "connecting to 10.0.0.1:80 is not allowed"
        );
        assert_eq!(
            denied.advised(&Flags),
            "connecting to 10.0.0.1:80 is not allowed: grant connecting to 10.0.0.1:80"
        );
        let full = NetError::TooManySockets { limit: 3 };
        assert_eq!(
            full.to_string(),
            "too many open sockets: this program may hold 3 at once"
        );
        assert!(full.advised(&Flags).ends_with(": raise sockets"));
        assert_eq!(full.advised(&wasabi_limits::NoAdvice), full.to_string());
    }
}

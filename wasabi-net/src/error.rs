//! [`NetError`]: why a network operation failed, with the POSIX error code a
//! guest maps onto its own error values.

use std::io;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The network policy does not grant the operation.
    #[error("{action} {endpoint} is not allowed: {how_to_grant}")]
    Denied {
        /// `"listening on"` or `"connecting to"`.
        action: &'static str,
        /// The address, as the guest gave it.
        endpoint: String,
        /// What grants it: a flag, or a manifest field.
        how_to_grant: String,
    },
    /// The instance holds as many sockets as it may.
    #[error(
        "too many open sockets: this program may hold {limit} at once (raise it with --max-connections)"
    )]
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
}

impl NetError {
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
        assert!(
            NetError::TooManySockets { limit: 3 }
                .to_string()
                .contains("--max-connections")
        );
    }
}

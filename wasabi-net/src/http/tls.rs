//! [`ClientTls`]: whom a tenant's outgoing HTTPS trusts — the system's
//! certificate authorities, plus any its owner adds — and [`TlsFailure`],
//! why a server was not trusted, worded for the program that asked.
//!
//! Verification is always on: there is no way, for a tenant or for its
//! owner, to accept a certificate that does not chain to a trusted root, has
//! expired, or names another host. A private service is reached by trusting
//! its CA (`--ca-cert`), not by turning checks off.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::ingress::TlsError;

/// The certificate authorities a tenant's HTTPS requests trust. Cheap to
/// clone; two are equal when they add the same certificates to the system's.
///
/// ```
/// use wasabi_net::ClientTls;
///
/// let system = ClientTls::system();
/// assert_eq!(system, ClientTls::default());
/// assert!(ClientTls::with_extra_roots(&["/nonexistent/ca.pem".as_ref()]).is_err());
/// ```
///
/// Nothing is read from the system until a tenant first connects over TLS:
/// most programs never do, and `wasabi run hello.wasm` should not parse
/// the machine's CA bundle.
#[derive(Clone)]
pub struct ClientTls {
    trust: Arc<Trust>,
}

struct Trust {
    /// The owner's certificates, beside the system's.
    extra: Vec<CertificateDer<'static>>,
    /// SHA-256 of `extra` (zero for none), for equality.
    fingerprint: [u8; 32],
    /// The system's roots and `extra`, made when first needed.
    roots: OnceLock<Arc<RootCertStore>>,
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &ClientTls) -> bool {
        self.trust.fingerprint == other.trust.fingerprint
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("extra_roots", &self.trust.extra.len())
            .finish_non_exhaustive()
    }
}

impl Default for ClientTls {
    /// [`ClientTls::system`].
    fn default() -> ClientTls {
        ClientTls::system()
    }
}

/// The system's trust roots, read once per process (on Linux, the CA bundle
/// OpenSSL would use, e.g. Debian's `ca-certificates`; `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` of the host process override it). A system without any
/// gives an empty store: every public server is then untrusted, and says so.
fn system_roots() -> &'static Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "reading the system's certificate authorities");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            tracing::warn!(
                "no system certificate authorities found: HTTPS will trust only the ones a tenant adds"
            );
        }
        tracing::debug!(added, ignored, "system certificate authorities");
        Arc::new(roots)
    })
}

impl ClientTls {
    /// Trust the system's certificate authorities only.
    pub fn system() -> ClientTls {
        static SYSTEM: OnceLock<ClientTls> = OnceLock::new();
        SYSTEM
            .get_or_init(|| ClientTls {
                trust: Arc::new(Trust {
                    extra: Vec::new(),
                    fingerprint: [0; 32],
                    roots: OnceLock::new(),
                }),
            })
            .clone()
    }

    /// Trust the system's authorities and every certificate in the PEM
    /// files `paths` (each must hold at least one).
    pub fn with_extra_roots(paths: &[&Path]) -> Result<ClientTls, TlsError> {
        let mut extra = Vec::new();
        for path in paths {
            let pem_error = |reason: String| TlsError::Pem {
                what: "CA certificate",
                path: path.display().to_string(),
                reason,
            };
            let pem = crate::ingress::read_pem_file(path, "CA certificate")?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| pem_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(pem_error("no CERTIFICATE block in it".into()));
            }
            extra.extend(certs);
        }
        ClientTls::with_extra_certificates(extra)
    }

    /// Trust the system's authorities and the DER certificates `extra`.
    pub fn with_extra_certificates(
        extra: Vec<CertificateDer<'static>>,
    ) -> Result<ClientTls, TlsError> {
        use sha2::Digest;
        if extra.is_empty() {
            return Ok(ClientTls::system());
        }
        let mut digest = sha2::Sha256::new();
        // Each must make a trust anchor: checked now, used later.
        let mut check = RootCertStore::empty();
        for cert in &extra {
            digest.update((cert.len() as u64).to_le_bytes());
            digest.update(cert);
            check.add(cert.clone()).map_err(TlsError::Config)?;
        }
        Ok(ClientTls {
            trust: Arc::new(Trust {
                extra,
                fingerprint: digest.finalize().into(),
                roots: OnceLock::new(),
            }),
        })
    }

    /// The system's roots and the owner's, read and merged on first use.
    fn roots(&self) -> Arc<RootCertStore> {
        let trust = &self.trust;
        if trust.extra.is_empty() {
            return Arc::clone(system_roots());
        }
        let merged = trust.roots.get_or_init(|| {
            let mut roots = RootCertStore::clone(system_roots());
            roots.add_parsable_certificates(trust.extra.iter().cloned());
            Arc::new(roots)
        });
        Arc::clone(merged)
    }

    /// A rustls configuration for one tenant: these roots, HTTP/2 and
    /// HTTP/1.1 offered by ALPN, and a session cache of its own (a tenant
    /// never resumes, or learns of, another tenant's sessions).
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The ring provider supports the safe default versions, so this
        // cannot fail; if a future rustls disagrees, TLS 1.3 alone will do.
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| {
                ClientConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .expect("ring supports TLS 1.3")
            });
        let mut config = builder
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Why a TLS connection to a server failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate expired (at `not_after`, seconds since the
    /// Unix epoch, when known).
    Expired {
        /// When it expired.
        not_after: Option<u64>,
    },
    /// The server's certificate is not valid yet.
    NotYetValid,
    /// The certificate does not chain to a trusted authority.
    UnknownIssuer,
    /// The certificate is for other names than the one asked for.
    WrongName {
        /// The names it is valid for, as far as it says.
        presented: Vec<String>,
    },
    /// Anything else: a bad signature, a revoked certificate, a protocol
    /// error, a server that speaks no TLS.
    Other(String),
}

impl TlsFailure {
    /// The code Node.js gives the same failure, which a program may test
    /// (`err.cause.code`).
    pub fn code(&self) -> &'static str {
        match self {
            TlsFailure::Expired { .. } => "CERT_HAS_EXPIRED",
            TlsFailure::NotYetValid => "CERT_NOT_YET_VALID",
            TlsFailure::UnknownIssuer => "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            TlsFailure::WrongName { .. } => "ERR_TLS_CERT_ALTNAME_INVALID",
            TlsFailure::Other(_) => "EPROTO",
        }
    }

    /// The failure that a rustls error (from a handshake) stands for.
    pub(crate) fn from_rustls(error: &rustls::Error) -> TlsFailure {
        let rustls::Error::InvalidCertificate(cert) = error else {
            return TlsFailure::Other(error.to_string());
        };
        match cert {
            CertificateError::Expired => TlsFailure::Expired { not_after: None },
            CertificateError::ExpiredContext { not_after, .. } => TlsFailure::Expired {
                not_after: Some(unix_seconds(*not_after)),
            },
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsFailure::NotYetValid
            }
            CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
            CertificateError::NotValidForName => TlsFailure::WrongName {
                presented: Vec::new(),
            },
            CertificateError::NotValidForNameContext { presented, .. } => TlsFailure::WrongName {
                presented: presented.iter().map(|n| presented_name(n)).collect(),
            },
            // webpki will not take a CA certificate as the server's own, as
            // `openssl req -x509` makes by default (OpenSSL, so Node.js, does).
            CertificateError::Other(other)
                if format!("{other:?}").contains("CaUsedAsEndEntity") =>
            {
                TlsFailure::Other(
                    "the server's certificate is a CA certificate (basicConstraints CA:TRUE), \
                     which cannot also identify a server: issue a server certificate from it, \
                     or make the self-signed one with CA:FALSE"
                        .into(),
                )
            }
            other => TlsFailure::Other(format!("invalid certificate: {other:?}")),
        }
    }
}

/// A name a certificate presents, as a person writes it: rustls describes
/// them in Rust's debug form (`DnsName("a.test")`, `IpAddress(127.0.0.1)`).
fn presented_name(debug: &str) -> String {
    let inner = debug
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            debug
                .strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        });
    inner.unwrap_or(debug).to_string()
}

fn unix_seconds(t: UnixTime) -> u64 {
    t.as_secs()
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsFailure::Expired { not_after: Some(t) } => write!(
                f,
                "certificate has expired (valid until {} UTC)",
                utc_date(*t)
            ),
            TlsFailure::Expired { not_after: None } => f.write_str("certificate has expired"),
            TlsFailure::NotYetValid => f.write_str("certificate is not yet valid"),
            TlsFailure::UnknownIssuer => f.write_str(
                "certificate is signed by an unknown authority (not among the trusted CAs)",
            ),
            TlsFailure::WrongName { presented } if presented.is_empty() => {
                f.write_str("certificate is not valid for this host name")
            }
            TlsFailure::WrongName { presented } => write!(
                f,
                "certificate is valid for {}, not for this host name",
                presented.join(", ")
            ),
            TlsFailure::Other(reason) => f.write_str(reason),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` of seconds since the Unix epoch (proleptic
/// Gregorian, UTC).
fn utc_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), in unsigned arithmetic
    // shifted by 719_468 days (0000-03-01 to 1970-01-01).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_read_as_written() {
        assert_eq!(presented_name("DnsName(\"a.test\")"), "a.test");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("Something(else)"), "Something(else)");
    }

    #[test]
    fn dates_print_as_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31 23:59:59");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("wasabi-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ClientTls::with_extra_roots(&[&empty]).unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE block"), "{err}");
        // Files that never end, or are not files, are refused before reading.
        // A FIFO nobody writes would block an ordinary open for ever.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        for hostile in ["/dev/zero", "/dev/urandom", "/tmp", fifo.to_str().unwrap()] {
            let err = ClientTls::with_extra_roots(&[Path::new(hostile)]).unwrap_err();
            assert!(
                err.to_string().contains("not a regular file"),
                "{hostile}: {err}"
            );
        }
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap();
        let a = ClientTls::with_extra_roots(&[&good]).unwrap();
        let b = ClientTls::with_extra_roots(&[&good]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, ClientTls::system());
        assert_eq!(a.roots().len(), ClientTls::system().roots().len() + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! [`ServerTls`]: the certificate and key the host's HTTP server presents
//! when it serves a tenant over TLS, with rustls, offering HTTP/2 and
//! HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing of the kind.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the pair (the key does not match, an unsupported
    /// algorithm).
    #[error("the certificate and key cannot be used together: {0}")]
    Config(#[from] rustls::Error),
}

/// A server identity: a certificate chain and its private key, ready to
/// serve. Cheap to clone.
///
/// Two identities are equal when they hold the same certificates and key
/// (a reloaded manifest that names the same files changes nothing).
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) config: Arc<ServerConfig>,
    /// SHA-256 of the chain and the key, for equality.
    fingerprint: [u8; 32],
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &ServerTls) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn", &self.config.alpn_protocols.len())
            .finish_non_exhaustive()
    }
}

/// The most a PEM file may hold: a long chain is a few KiB, a CA bundle a
/// few hundred.
pub const MAX_PEM_FILE: u64 = 4 << 20;

/// Reads a PEM file: a regular file of at most [`MAX_PEM_FILE`] bytes (not
/// `/dev/zero`, a FIFO or a directory, which would hang or exhaust the host
/// reading them).
pub(crate) fn read_pem_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let pem_error = |reason: String| TlsError::Pem {
        what,
        path: path.display().to_string(),
        reason,
    };
    // Opened without blocking: opening a FIFO for reading would otherwise
    // wait for a writer that may never come.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| pem_error(e.to_string()))?;
    let meta = file.metadata().map_err(|e| pem_error(e.to_string()))?;
    if !meta.is_file() {
        return Err(pem_error("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| pem_error(e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(pem_error(format!("larger than {} MiB", MAX_PEM_FILE >> 20)));
    }
    Ok(bytes)
}

impl ServerTls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let pem_error = |what, path: &Path, reason: String| TlsError::Pem {
            what,
            path: path.display().to_string(),
            reason,
        };
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read_pem_file(cert, "certificate")?)
                .collect::<Result<_, _>>()
                .map_err(|e| pem_error("certificate", cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(pem_error(
                "certificate",
                cert,
                "no CERTIFICATE block in it".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&read_pem_file(key, "private key")?)
            .map_err(|e| pem_error("private key", key, e.to_string()))?;
        ServerTls::new(chain, key)
    }

    /// A server identity from DER certificates and key.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerTls, TlsError> {
        use sha2::Digest;
        let mut digest = sha2::Sha256::new();
        for cert in &chain {
            digest.update((cert.len() as u64).to_le_bytes());
            digest.update(cert);
        }
        digest.update(key.secret_der());
        let fingerprint = digest.finalize().into();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            fingerprint,
        })
    }
}

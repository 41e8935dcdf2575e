//! TLS for the S3 API's HTTPS port and the peer port: the certificate and key of `[tls]` (PEM
//! files), handed to every handshake by a resolver that SIGHUP reloads without touching open
//! connections; the acceptor that turns an accepted socket into a TLS stream; the refusal of
//! plain-HTTP requests under `s3.https_only`; and the client configuration workers call each
//! other's peer ports with (`peer.tls`, trusting `tls.ca`).
//!
//! The crypto provider is aws-lc-rs, the one the rest of the tree (opendal's HTTP client) already
//! builds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use s3s::{S3Error, S3ErrorCode};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a certificate, key or CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("{path} is not a PEM certificate file: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("the private key {key} does not belong to the certificate {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("no CA certificate to trust: {reason}")]
    NoTrust { reason: String },
    #[error("cannot set up TLS: {0}")]
    Setup(#[from] rustls::Error),
}

/// aws-lc-rs, made once.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
}

/// Every certificate of a PEM file, in order.
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate { path: path.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certs)
}

/// Reads a certificate chain and its key, and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = certificates("certificate", cert)?;
    let pem = read("private key", key)?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| TlsError::BadKey { path: key.to_owned(), reason: e.to_string() })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::BadKey { path: key.to_owned(), reason: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch { cert: cert.to_owned(), key: key.to_owned() })
        }
        // aws-lc-rs knows the public key of every key type it loads; a key whose public half it
        // cannot tell is left to the handshake, as rustls itself does.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(TlsError::BadCertificate { path: cert.to_owned(), reason: e.to_string() }),
    }
}

/// The worker's certificate: what each handshake presents, replaced as a whole by [`Self::reload`].
#[derive(Debug)]
pub struct CertificateStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertificateStore {
    /// Reads the files; a worker does not start without a usable certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let current = RwLock::new(Arc::new(load_certified_key(cert, key)?));
        Ok(Arc::new(Self { cert: cert.to_owned(), key: key.to_owned(), current }))
    }

    /// Reads the files again. On success new handshakes present the new certificate (open
    /// connections keep theirs); on failure the current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load_certified_key(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// The certificate file's path (for the log).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Turns accepted sockets into TLS streams (HTTP/1.1 only, as the servers speak).
#[derive(Clone)]
pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
}

impl Acceptor {
    pub fn new(certificates: Arc<CertificateStore>) -> Result<Self, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(certificates);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }

    /// The handshake; `None` (logged) when the client fails it or takes too long.
    pub async fn accept(&self, stream: TcpStream, remote: SocketAddr) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.inner.accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake not completed within {HANDSHAKE_TIMEOUT:?}");
                None
            }
        }
    }
}

/// Set on the requests of the plain-HTTP S3 port under `s3.https_only`: the front end answers
/// them with [`HttpsRequired::refusal`] instead of serving them.
#[derive(Debug, Clone, Copy)]
pub struct HttpsRequired {
    pub https_addr: SocketAddr,
}

impl HttpsRequired {
    /// `403 AccessDenied` (what AWS answers a plain-HTTP request a bucket policy refuses), with a
    /// message naming the HTTPS endpoint: the host the client asked for, on the HTTPS port.
    pub fn refusal(&self, headers: &http::HeaderMap) -> S3Error {
        let asked_host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .map(|a| a.host().to_owned());
        let port = self.https_addr.port();
        let target = match asked_host {
            Some(host) => format!("https://{host}:{port}"),
            None if !self.https_addr.ip().is_unspecified() => format!("https://{}", self.https_addr),
            None => format!("port {port} over HTTPS"),
        };
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            format!("This endpoint accepts S3 requests over HTTPS only (s3.https_only); send them to {target}."),
        )
    }
}

/// How this worker calls its peers' TLS peer ports: trusting the CA certificates of `ca` (a
/// PEM bundle), else the system's roots; the peer's certificate must name the host of its
/// `peer` address (a DNS name or an IP address).
pub fn peer_client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in certificates("CA bundle", path)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::BadCertificate { path: path.to_owned(), reason: e.to_string() })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                let reason = match native.errors.first() {
                    Some(e) => format!("the system's CA certificates cannot be read ({e}); set tls.ca"),
                    None => "the system has no CA certificates; set tls.ca".into(),
                };
                return Err(TlsError::NoTrust { reason });
            }
        }
    }
    // No ALPN here: the peer client's connector offers HTTP/1.1 itself.
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;

    /// A CA, and a certificate for `localhost` it signed: (CA PEM, certificate PEM, key PEM).
    fn signed_pair() -> (String, String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_reload_replaces_the_certificate_only_with_a_usable_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (ca, first_cert, first_key) = signed_pair();
        std::fs::write(&cert_path, &first_cert).unwrap();
        std::fs::write(&key_path, &first_key).unwrap();
        let store = CertificateStore::load(&cert_path, &key_path).unwrap();
        let first = store.current();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca).unwrap();
        peer_client_config(Some(&ca_path)).unwrap();

        let (_, second_cert, second_key) = signed_pair();
        std::fs::write(&cert_path, &second_cert).unwrap();
        let e = store.reload().unwrap_err();
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "the new certificate with the old key: {e}");
        assert_eq!(store.current().cert, first.cert, "a failed reload keeps the certificate");

        std::fs::write(&key_path, &second_key).unwrap();
        store.reload().unwrap();
        let second = store.current();
        assert_ne!(second.cert, first.cert);

        std::fs::write(&key_path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = store.reload().unwrap_err();
        assert!(matches!(e, TlsError::BadKey { .. }), "{e}");
        std::fs::remove_file(&cert_path).unwrap();
        assert!(matches!(store.reload().unwrap_err(), TlsError::Read { .. }));
        assert_eq!(store.current().cert, second.cert);
    }

    #[test]
    fn unreadable_and_unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = load_certified_key(&missing, &missing).unwrap_err();
        assert!(matches!(e, TlsError::Read { what: "certificate", .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let e = load_certified_key(&garbage, &garbage).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        assert!(peer_client_config(Some(&garbage)).is_err());

        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap();
        assert!(load_certified_key(&broken, &broken).is_err());
    }

    #[test]
    fn https_refusal_names_the_https_endpoint() {
        let required = HttpsRequired { https_addr: "0.0.0.0:29996".parse().unwrap() };
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, http::HeaderValue::from_static("s3.example.test:29998"));
        let e = required.refusal(&headers);
        assert_eq!(e.code(), &S3ErrorCode::AccessDenied);
        assert!(e.message().unwrap().contains("https://s3.example.test:29996"), "{e:?}");
        headers.insert(http::header::HOST, http::HeaderValue::from_static("[::1]:29998"));
        assert!(required.refusal(&headers).message().unwrap().contains("https://[::1]:29996"));
        let no_host = required.refusal(&http::HeaderMap::new());
        assert!(no_host.message().unwrap().contains("port 29996 over HTTPS"), "{no_host:?}");
        let bound = HttpsRequired { https_addr: "10.0.0.5:443".parse().unwrap() };
        assert!(bound.refusal(&http::HeaderMap::new()).message().unwrap().contains("https://10.0.0.5:443"));
    }
}

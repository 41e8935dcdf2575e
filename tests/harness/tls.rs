//! Certificates made at test time and clients that trust them: a CA of the test's own (rcgen),
//! server certificates for `127.0.0.1` and `localhost` that it signs (each with a serial number
//! and common name of the test's choosing, so a test can tell which one a server presents), the
//! `[tls]` section naming their files, aws-sdk-s3 clients over HTTPS, and raw TLS connections:
//! the certificate a port presents, and one kept-alive HTTP/1.1 connection to send requests on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::net::TcpStream;

/// A test CA and the server certificate currently in its files.
pub struct TestPki {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    /// The certificate chain file a worker's `tls.cert` names.
    pub cert_path: PathBuf,
    /// The private key file a worker's `tls.key` names.
    pub key_path: PathBuf,
    /// The CA certificate (`tls.ca`, and what clients trust).
    pub ca_path: PathBuf,
    /// The DER of the certificate in `cert_path`.
    pub current: CertificateDer<'static>,
}

/// A server certificate and its key, PEM, and the certificate's DER.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestPki {
    /// A new CA, and a server certificate (serial 1) in `cert_path` and `key_path`.
    pub fn new() -> TestPki {
        Self::named("alcove test CA")
    }

    /// A new CA with the given common name (two CAs of one test must differ).
    pub fn named(ca_name: &str) -> TestPki {
        let dir = tempfile::Builder::new().prefix("alcove-tls-").tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, ca_name);
        let ca = params.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(params, ca_key);
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).expect("write CA");
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let mut pki = TestPki {
            dir,
            issuer,
            ca_pem: ca.pem(),
            cert_path,
            key_path,
            ca_path,
            current: CertificateDer::from(Vec::new()),
        };
        let first = pki.issue(1);
        pki.install(&first);
        pki
    }

    /// A certificate for 127.0.0.1 and localhost with this serial (and common name
    /// `alcove test server <serial>`), signed by the CA; the files are not touched.
    pub fn issue(&self, serial: u64) -> Issued {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
        params.serial_number = Some(SerialNumber::from(serial));
        params.distinguished_name.push(DnType::CommonName, format!("alcove test server {serial}"));
        let cert = params.signed_by(&key, &self.issuer).expect("sign server certificate");
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    /// Writes `issued` into the certificate and key files (what a worker reloads on SIGHUP).
    pub fn install(&mut self, issued: &Issued) {
        std::fs::write(&self.cert_path, &issued.cert_pem).expect("write certificate");
        std::fs::write(&self.key_path, &issued.key_pem).expect("write key");
        self.current = issued.der.clone();
    }

    /// The `[tls]` section naming this CA's files.
    pub fn toml(&self) -> String {
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
            self.cert_path.display().to_string(),
            self.key_path.display().to_string(),
            self.ca_path.display().to_string()
        )
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A scratch folder beside the files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A rustls client configuration trusting this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::pem::PemObject::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM");
        roots.add(ca).expect("trust the CA");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// An aws-sdk-s3 HTTP client (rustls, aws-lc-rs) trusting this CA only.
    pub fn sdk_http_client(&self) -> aws_sdk_s3::config::SharedHttpClient {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
        let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(self.ca_pem.as_bytes());
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(TlsContext::builder().with_trust_store(trust).build().expect("TLS context"))
            .build_https()
    }

    /// Connects to `addr` over TLS (checking the certificate against this CA, for 127.0.0.1).
    pub async fn connect(&self, addr: SocketAddr) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(self.client_config());
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake with {addr}: {e}"))
    }

    /// The certificate `addr` presents to a new connection.
    pub async fn presented(&self, addr: SocketAddr) -> CertificateDer<'static> {
        let tls = self.connect(addr).await.expect("TLS connection");
        let (_, conn) = tls.get_ref();
        conn.peer_certificates().and_then(|c| c.first()).expect("a server certificate").clone().into_owned()
    }

    /// One HTTP/1.1 connection over TLS to `addr`, kept alive for every request sent on it.
    pub async fn keep_alive(&self, addr: SocketAddr) -> KeptAlive {
        let tls = self.connect(addr).await.expect("TLS connection");
        let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).expect("certificate").clone();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("HTTP handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        KeptAlive { sender, host: addr.to_string(), presented: presented.into_owned(), task }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A kept-alive HTTP/1.1 connection over TLS.
pub struct KeptAlive {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: String,
    /// The certificate presented when the connection was made.
    pub presented: CertificateDer<'static>,
    task: tokio::task::JoinHandle<()>,
}

impl KeptAlive {
    /// Sends an unsigned `GET target` (simple auth lets it in) on this connection: status, body.
    pub async fn get(&mut self, target: &str) -> Result<(u16, Vec<u8>), String> {
        self.sender.ready().await.map_err(|e| format!("connection not ready: {e}"))?;
        let req = http::Request::get(target)
            .header(http::header::HOST, &self.host)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp =
            self.sender.send_request(req).await.map_err(|e| format!("request on the kept-alive connection: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body.to_vec()))
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed() || self.task.is_finished()
    }
}

//! TLS for the end-to-end tests: a throwaway CA and server certificate
//! (rcgen) written to a temporary directory, client configurations that
//! trust only that CA, and a blocking TLS stream (rustls) to the server.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::READ_TIMEOUT;

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1.
pub struct TestPki {
    /// The CA certificate clients trust.
    pub ca: CertificateDer<'static>,
    /// PEM of the CA alone (what a client trusts).
    pub ca_pem: String,
    /// PEM of the server certificate (leaf, then the CA).
    pub cert_pem: String,
    /// PEM of the server's private key.
    pub key_pem: String,
}

impl TestPki {
    /// A fresh CA named `name` and a server certificate signed by it.
    pub fn new(name: &str) -> TestPki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("crier test CA {name}"));
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, format!("crier test server {name}"));
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        TestPki {
            ca: ca.der().clone(),
            ca_pem: ca.pem(),
            cert_pem: format!("{}{}", leaf.pem(), ca.pem()),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (replacing what is there)
    /// and returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        // Write then rename, as certbot does, so a reader never sees half.
        for (path, text) in [(&cert, &self.cert_pem), (&key, &self.key_pem)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (cert, key)
    }

    /// A client configuration that trusts this CA alone.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config_for(rustls::DEFAULT_VERSIONS)
    }

    /// Like [`client_config`](Self::client_config), offering only TLS 1.2.
    pub fn client_config_tls12(&self) -> Arc<ClientConfig> {
        self.client_config_for(&[&rustls::version::TLS12])
    }

    fn client_config_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// A ureq agent that speaks https to a server with this certificate.
    pub fn agent(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(READ_TIMEOUT)
            .max_idle_connections(0)
            .tls_config(self.client_config())
            .build()
    }
}

/// A temporary directory for certificate files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "crier-test-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A blocking TLS connection to the server, with a read timeout.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `addr` over TLS as `localhost` and completes the handshake;
/// the error says why when it fails (e.g. the certificate is not trusted).
pub fn try_tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(READ_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let name = "localhost".try_into().unwrap();
    let conn = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Like [`try_tls_connect`]; panics on failure.
pub fn tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> TlsStream {
    try_tls_connect(addr, cfg).unwrap_or_else(|e| panic!("TLS connect to {addr}: {e}"))
}

/// Reads from `s` into `buf` until `buf` contains `needle`, or panics after
/// `within`; returns the position just after the first occurrence.
pub fn read_until<R: Read>(s: &mut R, buf: &mut Vec<u8>, needle: &[u8], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        if let Some(p) = buf.windows(needle.len()).position(|w| w == needle) {
            return p + needle.len();
        }
        assert!(
            Instant::now() < deadline,
            "no {:?} within {within:?} in {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(buf)
        );
        let mut tmp = [0u8; 16 * 1024];
        match s.read(&mut tmp) {
            Ok(0) => panic!(
                "EOF before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(buf)
            ),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(buf)),
        }
    }
}

/// Opens an EventSource subscription over TLS and reads up to the opening
/// `retry:` line, after which the subscriber is registered.
pub fn tls_sse(addr: SocketAddr, cfg: &Arc<ClientConfig>, path: &str) -> (TlsStream, Vec<u8>) {
    let mut s = tls_connect(addr, cfg);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let end = read_until(&mut s, &mut buf, b"retry: ", READ_TIMEOUT);
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let end = read_until(&mut s, &mut buf, b"\n\n", READ_TIMEOUT);
    buf.drain(..end);
    (s, buf)
}

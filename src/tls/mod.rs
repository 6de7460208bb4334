//! TLS settings: the certificate and key files, the rustls `ServerConfig`
//! they make, and swapping it on reload.
//!
//! No sockets here: the handshake and the record layer run inside the
//! reactors (`reactor/tls/`), which ask [`TlsContext::config`] for the
//! configuration of each new connection. A reload builds a whole new
//! `ServerConfig` from the files and swaps the `Arc`; connections already
//! up keep the one they started with, so nothing is dropped.

pub mod expiry;
pub mod sniff;

use rustls::crypto::ring;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The one application protocol we speak over TLS (ALPN). A client that
/// offers only others (`h2` alone) is refused in the handshake rather than
/// confused after it.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The certificate files and the configuration new handshakes use.
pub struct TlsContext {
    cert: PathBuf,
    key: PathBuf,
    /// Read once per accepted TLS connection (an uncontended read lock and
    /// an `Arc` clone); written only by a reload.
    current: RwLock<Arc<ServerConfig>>,
}

/// What a successful load found, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Certificates in the chain (leaf first).
    pub chain_len: usize,
    /// When the leaf certificate expires (Unix seconds), if readable.
    pub not_after: Option<i64>,
}

impl Loaded {
    /// A line for the log: the chain and how long it is valid.
    pub fn describe(&self, now: i64) -> String {
        let until = match self.not_after {
            Some(t) => format!(
                ", valid until {} ({} days left)",
                expiry::date(t),
                (t - now).div_euclid(86_400)
            ),
            None => String::new(),
        };
        format!("{} certificate(s) in the chain{until}", self.chain_len)
    }
}

impl TlsContext {
    /// Reads the PEM certificate chain and private key and builds the
    /// configuration; fails with a readable reason (never the key itself).
    pub fn load(cert: &Path, key: &Path) -> Result<(TlsContext, Loaded), String> {
        let (config, loaded) = server_config(cert, key)?;
        let ctx = TlsContext {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
        };
        Ok((ctx, loaded))
    }

    /// The configuration for a new handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            // A panic while holding the lock cannot leave a half-written
            // Arc behind: the value is always whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the files and, when they make a valid configuration, uses
    /// it for every handshake from now on. A bad certificate or key (a key
    /// that does not match, a certificate that expired or is not valid
    /// yet) is refused and the old configuration stays.
    pub fn reload(&self) -> Result<Loaded, String> {
        let (config, loaded) = server_config(&self.cert, &self.key)?;
        let config = Arc::new(config);
        match self.current.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(loaded)
    }

    /// The certificate file, for log lines.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

/// Builds a server configuration from PEM files: rustls' safe defaults
/// (TLS 1.3 and 1.2, its cipher suites), ring as the provider, ALPN
/// `http/1.1`, and stateless session tickets so resumption needs no
/// per-session memory on the server.
fn server_config(cert: &Path, key: &Path) -> Result<(ServerConfig, Loaded), String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    // The error of a PEM parse names the problem, never the key's bytes.
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    let validity = expiry::validity(&chain[0]);
    if let Some(v) = validity {
        let now = unix_now();
        if now > v.not_after {
            return Err(format!(
                "certificate {} expired on {}",
                cert.display(),
                expiry::date(v.not_after)
            ));
        }
        if now < v.not_before {
            return Err(format!(
                "certificate {} is not valid before {}",
                cert.display(),
                expiry::date(v.not_before)
            ));
        }
    }
    let loaded = Loaded {
        chain_len: chain.len(),
        not_after: validity.map(|v| v.not_after),
    };
    let provider = Arc::new(ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "certificate {} and key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    config.ticketer = ring::Ticketer::new().map_err(|e| format!("TLS session tickets: {e}"))?;
    Ok((config, loaded))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("crier-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn unreadable_or_empty_files_are_refused_with_their_name() {
        let d = temp_dir("bad");
        let empty = write(&d, "empty.pem", "");
        let junk = write(&d, "junk.pem", "-----BEGIN CERTIFICATE-----\n!!!\n");
        let missing = d.join("missing.pem");
        let e = TlsContext::load(&missing, &missing).err().unwrap();
        assert!(e.contains("missing.pem"), "{e}");
        let e = TlsContext::load(&empty, &empty).err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
        let e = TlsContext::load(&junk, &junk).err().unwrap();
        assert!(e.contains("junk.pem"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn an_expired_certificate_is_refused_and_a_valid_one_says_until_when() {
        let d = temp_dir("expiry");
        let make = |not_after: (i32, u8, u8)| {
            let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = p.self_signed(&key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (cert, key) = make((2021, 1, 1));
        let (c, k) = (write(&d, "old.pem", &cert), write(&d, "old.key", &key));
        let e = TlsContext::load(&c, &k).err().unwrap();
        assert!(e.contains("expired on 2021-01-01"), "{e}");
        let (cert, key) = make((2090, 1, 1));
        let (c, k) = (write(&d, "new.pem", &cert), write(&d, "new.key", &key));
        let (_, loaded) = TlsContext::load(&c, &k).unwrap();
        let line = loaded.describe(unix_now());
        assert!(
            line.starts_with("1 certificate(s) in the chain, valid until 2090-01-01"),
            "{line}"
        );
        let _ = std::fs::remove_dir_all(d);
    }
}

//! `--tls`: the harness side. One throwaway CA and server certificate (rcgen) per harness
//! process, written to a temp dir; servers get the certificate and serve TLS on a second
//! port (the plaintext port + 1) for subscribers, while publishers and status probes keep
//! the plaintext port (backends on a private network, browsers over TLS). Client workers
//! trust the CA file alone.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

use crate::harness::temp_dir;
use crate::Res;

/// The files of the benchmark's certificate.
pub struct BenchPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Generates the certificate on first use (P-256 ECDSA, as most sites serve today).
pub fn pki() -> Res<&'static BenchPki> {
    static PKI: OnceLock<Result<BenchPki, String>> = OnceLock::new();
    PKI.get_or_init(generate).as_ref().map_err(Clone::clone)
}

fn generate() -> Res<BenchPki> {
    let e = |e: rcgen::Error| e.to_string();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "crier loadgen CA");
    let ca_key = KeyPair::generate().map_err(e)?;
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf_key = KeyPair::generate().map_err(e)?;
    let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).map_err(e)?;
    let dir = temp_dir("tls")?;
    let pki = BenchPki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let write = |p: &PathBuf, text: String| fs::write(p, text).map_err(|e| e.to_string());
    write(&pki.ca, ca.pem())?;
    write(&pki.cert, format!("{}{}", leaf.pem(), ca.pem()))?;
    write(&pki.key, leaf_key.serialize_pem())?;
    Ok(pki)
}

/// Where subscribers connect: with `--tls`, the TLS port next to the plaintext one.
pub fn subscriber_addr(addr: SocketAddr, tls: bool) -> SocketAddr {
    if tls {
        SocketAddr::new(addr.ip(), addr.port() + 1)
    } else {
        addr
    }
}

/// A free loopback port whose successor is free too (plaintext + TLS).
pub fn free_port_pair() -> Res<u16> {
    for _ in 0..64 {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err("no two adjacent free ports".into())
}

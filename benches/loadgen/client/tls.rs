//! `--tls` on the client side: each subscriber socket carries a rustls client session
//! (the buffered API; the client's own memory is not what is measured). Full handshakes
//! every time: session resumption is off, as after a server restart (its ticket keys are
//! new), which is when a reconnect storm happens.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::Res;

/// A client configuration trusting the CA in `ca_pem` alone.
pub(super) fn config(ca_pem: &str) -> Res<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).map_err(|e| format!("{ca_pem}: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("{ca_pem}: {e}"))?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.resumption = Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// A session for a connection to 127.0.0.1 (the certificate names that address).
pub(super) fn session(cfg: &Arc<ClientConfig>) -> Res<Box<ClientConnection>> {
    let name =
        rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    ClientConnection::new(cfg.clone(), name)
        .map(Box::new)
        .map_err(|e| e.to_string())
}

/// Sends what the session has queued (handshake, records) until the socket blocks.
fn flush(c: &mut ClientConnection, sock: &mut TcpStream) -> io::Result<()> {
    while c.wants_write() {
        match c.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Plaintext in (queued until the handshake is done), records out.
pub(super) fn write(
    c: &mut ClientConnection,
    sock: &mut TcpStream,
    data: &[u8],
) -> io::Result<usize> {
    c.writer().write_all(data)?;
    flush(c, sock)?;
    Ok(data.len())
}

/// Like `TcpStream::read` for the plaintext: `WouldBlock` when the socket has nothing
/// more, `Ok(0)` at the end of the stream.
pub(super) fn read(
    c: &mut ClientConnection,
    sock: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    flush(c, sock)?;
    loop {
        match c.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if c.read_tls(sock)? == 0 {
            return Ok(0);
        }
        c.process_new_packets().map_err(io::Error::other)?;
        flush(c, sock)?;
    }
}

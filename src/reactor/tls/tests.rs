//! Unit tests of the TLS record path over an in-memory handshake: the
//! session, the sealer and the buffers they keep.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::sealer::{write_pending, Sealer};
use super::session::{ReadEnd, TlsSession, MAX_RECORD, RECORD_OVERHEAD, SEAL_BATCH};
use crate::reactor::outqueue::{Flushed, OutQueue};

/// A socket that takes at most `limit` bytes, then blocks.
struct Tight {
    out: Vec<u8>,
    limit: usize,
}

impl Write for Tight {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit - self.out.len();
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(buf.len());
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn pending_ciphertext_is_kept_then_freed() {
    let mut pending = b"0123456789".to_vec();
    let mut w = Tight {
        out: vec![],
        limit: 4,
    };
    assert_eq!(
        write_pending(&mut w, &mut pending).unwrap(),
        (4, Flushed::Blocked)
    );
    assert_eq!(pending, b"456789");
    w.limit = 100;
    assert_eq!(
        write_pending(&mut w, &mut pending).unwrap(),
        (6, Flushed::All)
    );
    assert_eq!(w.out, b"0123456789");
    assert_eq!(pending.capacity(), 0, "an empty buffer owns no heap");
}

/// A socket that records every write call.
#[derive(Default)]
struct Recorder {
    out: Vec<u8>,
    writes: usize,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A server session and a rustls client, handshaken in memory over a
/// throwaway certificate.
fn handshaken() -> (TlsSession, rustls::ClientConnection) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "crier-tls-unit-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let (ctx, _) = crate::tls::TlsContext::load(&cert, &key).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut client =
        rustls::ClientConnection::new(Arc::new(client_cfg), "localhost".try_into().unwrap())
            .unwrap();
    let mut server = TlsSession::new(ctx.config()).unwrap();
    for _ in 0..8 {
        let mut flight = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut flight).unwrap();
        }
        if !flight.is_empty() {
            let mut plain = Vec::new();
            if let ReadEnd::Failed(e) = server.read_records(&mut flight, &mut plain) {
                panic!("server: {e}");
            }
            assert!(plain.is_empty());
        }
        deliver(&mut client, &std::mem::take(&mut server.pending_out));
        if server.established && !client.is_handshaking() {
            return (server, client);
        }
    }
    panic!("handshake did not complete");
}

/// Feeds server bytes to the client; returns the plaintext.
fn deliver(client: &mut rustls::ClientConnection, mut bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).unwrap();
        client.process_new_packets().unwrap();
        let _ = client.reader().read_to_end(&mut plain);
    }
    plain
}

/// Record lengths in a stream of TLS records.
fn records(mut bytes: &[u8]) -> Vec<usize> {
    let mut lens = Vec::new();
    while bytes.len() >= 5 {
        let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
        lens.push(len);
        bytes = &bytes[5 + len..];
    }
    assert!(bytes.is_empty(), "a torn record");
    lens
}

#[test]
fn after_the_handshake_a_session_holds_no_buffer() {
    let (server, _client) = handshaken();
    assert_eq!(server.partial_in.capacity(), 0);
    assert!(server.pending_out.is_empty());
}

#[test]
fn queued_messages_are_sealed_into_one_record_and_one_write() {
    let (mut server, mut client) = handshaken();
    let mut q = OutQueue::default();
    let mut want = Vec::new();
    for i in 0..60 {
        let m = format!("id: {i}\ndata: message {i}\n\n");
        want.extend_from_slice(m.as_bytes());
        q.push(bytes::Bytes::from(m));
    }
    let mut sock = Recorder::default();
    let (mut sealed, mut staging) = (Vec::new(), Vec::new());
    let mut sealer = Sealer {
        session: &mut server,
        socket: &mut sock,
        sealed: &mut sealed,
        staging: &mut staging,
        written: 0,
    };
    let (_, flushed) = q.write_to(&mut sealer).unwrap();
    assert_eq!(flushed, Flushed::All);
    assert_eq!(sealer.written, sock.out.len());
    assert_eq!(sock.writes, 1, "one write for every queued message");
    assert_eq!(records(&sock.out).len(), 1, "small messages share a record");
    assert_eq!(deliver(&mut client, &sock.out), want);
}

#[test]
fn a_blocked_socket_leaves_the_backlog_in_the_queue() {
    let (mut server, mut client) = handshaken();
    let mut q = OutQueue::default();
    let chunk = vec![b'z'; 1000];
    for _ in 0..300 {
        q.push(bytes::Bytes::from(chunk.clone()));
    }
    let mut sock = Tight {
        out: vec![],
        limit: 5000,
    };
    let (mut sealed, mut staging) = (Vec::new(), Vec::new());
    let mut sealer = Sealer {
        session: &mut server,
        socket: &mut sock,
        sealed: &mut sealed,
        staging: &mut staging,
        written: 0,
    };
    let (_, flushed) = q.write_to(&mut sealer).unwrap();
    assert_eq!(flushed, Flushed::Blocked);
    // One batch at most is sealed ahead of the socket; the rest is
    // still plaintext in the queue, where max-queued-bytes sees it.
    assert!(server.pending_out.len() <= SEAL_BATCH + 8 * RECORD_OVERHEAD);
    assert!(q.queued_bytes() >= 300_000 - SEAL_BATCH);
    sock.limit = usize::MAX;
    let mut sealer = Sealer {
        session: &mut server,
        socket: &mut sock,
        sealed: &mut sealed,
        staging: &mut staging,
        written: 0,
    };
    assert_eq!(q.write_to(&mut sealer).unwrap().1, Flushed::All);
    assert!(server.pending_out.is_empty() && server.pending_out.capacity() == 0);
    assert!(records(&sock.out).iter().all(|&l| l <= MAX_RECORD + 256));
    assert_eq!(deliver(&mut client, &sock.out), vec![b'z'; 300_000]);
}

#[test]
fn client_records_split_across_reads_are_joined() {
    let (mut server, mut client) = handshaken();
    client
        .writer()
        .write_all(b"GET /ev/news HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut wire = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    let mut plain = Vec::new();
    let (a, b) = wire.split_at(7);
    assert!(matches!(
        server.read_records(&mut a.to_vec(), &mut plain),
        ReadEnd::More
    ));
    assert!(plain.is_empty() && server.partial_in.len() == 7);
    let mut rest = std::mem::take(&mut server.partial_in);
    rest.extend_from_slice(b);
    assert!(matches!(
        server.read_records(&mut rest, &mut plain),
        ReadEnd::More
    ));
    assert_eq!(plain, b"GET /ev/news HTTP/1.1\r\n\r\n");
    assert_eq!(server.partial_in.capacity(), 0);
}

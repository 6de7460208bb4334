//! Certificate reload on SIGHUP, on the real binary: connections made
//! before it stay up, new handshakes get the new certificate, and a bad
//! certificate is refused with the current one kept.

mod common;

use common::*;
use std::time::Duration;

/// Waits until the server's log has `n` lines containing `needle`.
fn wait_log(server: &ChildServer, needle: &str, n: usize) {
    poll_until_within(Duration::from_secs(10), needle, || {
        let log = server.log();
        if log.matches(needle).count() >= n {
            Ok(())
        } else {
            Err(log)
        }
    });
}

#[test]
fn sighup_swaps_the_certificate_without_dropping_subscribers() {
    let dir = TempDir::new("reload");
    let old = TestPki::new("old");
    let (cert, key) = old.write_to(&dir.0);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let server = ChildServer::spawn(&["--tls-cert", &cert, "--tls-key", &key, "--workers", "1"]);
    let addr = server.addr;
    let (mut sub, mut buf) = tls_sse(addr, &old.client_config(), "/ev/news");

    // certbot renews: new files in place, then SIGHUP.
    let new = TestPki::new("new");
    new.write_to(&dir.0);
    server.signal(libc::SIGHUP);
    wait_log(&server, "TLS certificate reloaded", 1);
    try_tls_connect(addr, &new.client_config()).expect("the new certificate is served");
    let e = try_tls_connect(addr, &old.client_config())
        .expect_err("the old certificate is gone for new handshakes");
    assert!(e.to_string().contains("certificate"), "{e}");

    // The subscriber from before the reload is still connected.
    let url = format!("https://localhost:{}/pub?id=news", addr.port());
    let r = send(new.agent().post(&url), b"after reload");
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r)["subscribers"], 1);
    let end = read_until(&mut sub, &mut buf, b"data: after reload\n\n", READ_TIMEOUT);
    assert!(end > 0);

    // A key that does not match the certificate is refused...
    std::fs::write(&key, &old.key_pem).unwrap();
    server.signal(libc::SIGHUP);
    wait_log(&server, "TLS certificate not reloaded", 1);
    assert!(server.log().contains("do not make a usable pair"));
    try_tls_connect(addr, &new.client_config()).expect("still the new certificate");
    // ...and so is a broken certificate; the pair in use stays.
    std::fs::write(&key, &new.key_pem).unwrap();
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.signal(libc::SIGHUP);
    wait_log(&server, "TLS certificate not reloaded", 2);
    try_tls_connect(addr, &new.client_config()).expect("still the new certificate");
    // ...and so is a certificate that has expired (a renewal gone wrong).
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired_key = rcgen::KeyPair::generate().unwrap();
    let expired = params.self_signed(&expired_key).unwrap();
    std::fs::write(&cert, expired.pem()).unwrap();
    std::fs::write(&key, expired_key.serialize_pem()).unwrap();
    server.signal(libc::SIGHUP);
    wait_log(&server, "TLS certificate not reloaded", 3);
    assert!(server.log().contains("expired on 2021-01-01"));
    try_tls_connect(addr, &new.client_config()).expect("still the new certificate");
    let log = server.log();
    assert!(
        !log.contains("PRIVATE KEY"),
        "no key material in the log:\n{log}"
    );
    // And the server is still up for the subscriber.
    let r = send(new.agent().post(&url), b"still up");
    assert_eq!(r.status(), 200);
    read_until(&mut sub, &mut buf, b"data: still up\n\n", READ_TIMEOUT);
}

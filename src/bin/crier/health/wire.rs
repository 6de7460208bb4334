//! The client side of the wire for `crier health`: the URL, the
//! connection, and reading HTTP response heads and small bodies.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crier::Secret;
use serde_json::Value;

/// How to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Http,
}

/// The server named by the URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) scheme: Scheme,
    /// `host:port` to connect to (`[::1]:8080` for IPv6).
    pub(super) connect_to: String,
    /// The `Host` header: the URL's authority as written.
    pub(super) host_header: String,
    /// Path prefix without a trailing slash ("" or "/push").
    pub(super) prefix: String,
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = match url.split_once("://") {
            None => (Scheme::Http, url),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", _)) => {
                return Err("https:// is not supported yet; use http://".into());
            }
            Some((other, _)) => return Err(format!("unsupported URL scheme {other:?}")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || authority.contains(['?', '#', '@']) {
            return Err(
                "the URL must be http://HOST[:PORT][/PREFIX], without query or user".into(),
            );
        }
        if authority.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        // "[::1]:8080", "[::1]", "host:8080", "host".
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        if has_port {
            let port = &authority[authority.rfind(':').unwrap() + 1..];
            port.parse::<u16>()
                .map_err(|_| format!("bad port {port:?} in {url:?}"))?;
        }
        let default_port = match scheme {
            Scheme::Http => 80,
        };
        let connect_to = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        Ok(Target {
            scheme,
            connect_to,
            host_header: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// Opens a connection, trying each address the host resolves to until
    /// `deadline`. Name resolution itself cannot be bounded with std.
    pub(super) fn connect(&self, deadline: Instant) -> Result<Box<dyn Wire>, String> {
        let addrs = self
            .connect_to
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.connect_to))?;
        let mut last = format!("{} resolves to no address", self.connect_to);
        for addr in addrs {
            let left = remaining(deadline).ok_or_else(timed_out)?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return match self.scheme {
                        Scheme::Http => Ok(Box::new(tcp)),
                    };
                }
                Err(e) => last = format!("cannot connect to {addr}: {}", io_reason(&e)),
            }
        }
        Err(last)
    }
}

/// A connection to the server: plain TCP today, a TLS stream later.
pub(super) trait Wire: Read + Write + Send {
    /// Bounds every following read and write.
    fn set_timeout(&self, timeout: Duration) -> io::Result<()>;
}

impl Wire for TcpStream {
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

pub(super) fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

pub(super) fn timed_out() -> String {
    "timed out".to_string()
}

/// An I/O error as a short reason; a socket timeout is "timed out".
pub(super) fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}

/// The request line and the headers every request has. The bearer goes
/// into the request only, never into anything printed.
pub(super) fn request_head(
    method: &str,
    path: &str,
    host: &str,
    bearer: Option<&Secret>,
) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: crier-health/{}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(secret) = bearer {
        head.push_str(&format!("Authorization: Bearer {}\r\n", secret.expose()));
    }
    head
}

/// A response head, and the bytes read past it.
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) content_type: String,
    pub(super) content_length: Option<usize>,
    pub(super) chunked: bool,
    pub(super) rest: Vec<u8>,
}

/// Reads until a complete response head (at most 16 KiB).
pub(super) fn read_head(wire: &mut dyn Wire) -> Result<Head, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = wire.read(&mut chunk).map_err(|e| io_reason(&e))?;
        if n == 0 {
            return Err("the server closed the connection without answering".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                return Ok(Head {
                    status: response.code.unwrap_or(0),
                    reason: response.reason.unwrap_or("").to_string(),
                    content_type: header("content-type").unwrap_or_default(),
                    content_length: header("content-length").and_then(|v| v.parse().ok()),
                    chunked: header("transfer-encoding")
                        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
                    rest: buf[len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < 16 << 10 => {}
            Ok(httparse::Status::Partial) => return Err("response head over 16 KiB".into()),
            Err(e) => return Err(format!("not an HTTP response: {e}")),
        }
    }
}

/// Reads a (small) body: `Content-Length` bytes, or up to the close. Best
/// effort: what it has on an error is what it returns.
pub(super) fn read_body(wire: &mut dyn Wire, mut body: Vec<u8>, length: Option<usize>) -> Vec<u8> {
    let want = length.unwrap_or(64 << 10).min(64 << 10);
    let mut chunk = [0u8; 4096];
    while body.len() < want {
        match wire.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(want);
    body
}

/// "HTTP 401 Unauthorized: credentials required…", with the `error` of
/// crier's JSON body when there is one. The server never echoes a
/// credential in it.
pub(super) fn http_error(status: u16, reason: &str, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string));
    let text: String = match detail {
        Some(d) => format!("HTTP {status} {reason}: {d}"),
        None => format!("HTTP {status} {reason}"),
    };
    // One line, and nothing that can drive a terminal.
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.connect_to, "127.0.0.1:8080");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.prefix, "");
        let t = Target::parse("push.example.com/edge/").unwrap();
        assert_eq!(t.connect_to, "push.example.com:80");
        assert_eq!(t.prefix, "/edge");
        let t = Target::parse("http://[::1]:9000/").unwrap();
        assert_eq!(t.connect_to, "[::1]:9000");
        assert_eq!(
            Target::parse("http://[::1]").unwrap().connect_to,
            "[::1]:80"
        );
        assert!(Target::parse("https://x")
            .unwrap_err()
            .contains("not supported yet"));
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://x:99999").is_err());
        assert!(Target::parse("http://x/?a").is_err());
        assert!(Target::parse("http://u:p@x").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn http_errors_are_one_line_with_the_server_reason() {
        let body = br#"{"error":"credentials required: send Authorization: Bearer","status":401}"#;
        assert_eq!(
            http_error(401, "Unauthorized", body),
            "HTTP 401 Unauthorized: credentials required: send Authorization: Bearer"
        );
        assert_eq!(
            http_error(502, "Bad Gateway", b"<html>\n"),
            "HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn the_bearer_is_sent_but_never_debug_printed() {
        let secret = Secret::new("hunter2");
        let head = request_head("POST", "/pub?id=a", "h", Some(&secret));
        assert!(head.contains("Authorization: Bearer hunter2\r\n"));
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}

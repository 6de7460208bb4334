//! WebSocket clients: a tungstenite subscriber ([`ws_connect`]), one that
//! reads the JSON envelopes of `/ws/...?format=json` ([`WsJsonClient`]),
//! and a bare upgrade on a raw [`Conn`] for reading frames byte by byte
//! ([`ws_connect_raw`]). Frame-level clients live in tests/websocket.rs.

use super::conn::{Conn, READ_TIMEOUT};
use std::net::{SocketAddr, TcpStream};

/// A tungstenite client on a blocking socket.
pub type Ws = tungstenite::WebSocket<TcpStream>;

/// A tungstenite client subscribed to `path` (read and write timeouts
/// set). The subscription is registered before the 101 is sent, so a
/// publish after this returns is delivered.
pub fn ws_connect(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (ws, resp) = tungstenite::client(format!("ws://{addr}{path}"), stream)
        .unwrap_or_else(|e| panic!("WebSocket handshake for {path} failed: {e}"));
    assert_eq!(resp.status().as_u16(), 101, "upgrade {path}");
    ws
}

/// A WebSocket subscriber on a raw connection (no extensions), for
/// reading frames byte by byte and never answering pings.
pub fn ws_connect_raw(addr: SocketAddr, path: &str) -> Conn {
    let mut c = Conn::connect(addr);
    c.write(
        format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    );
    let head = c.read_head();
    assert_eq!(head.status, 101, "{head:?}");
    c
}

/// A WebSocket subscriber (tungstenite) that reads the JSON envelopes of
/// `/ws/...?format=json`.
pub struct WsJsonClient {
    pub ws: Ws,
}

impl WsJsonClient {
    /// Opens `ws://ADDR{path}`; the subscription is registered once the
    /// handshake response has been read.
    pub fn connect(addr: SocketAddr, path: &str) -> WsJsonClient {
        WsJsonClient {
            ws: ws_connect(addr, path),
        }
    }

    /// The next text message, parsed as JSON (pings are answered by
    /// tungstenite and skipped).
    pub fn next_json(&mut self) -> serde_json::Value {
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {t:?}"))
                }
                Ok(tungstenite::Message::Ping(_)) | Ok(tungstenite::Message::Pong(_)) => {}
                Ok(other) => panic!("unexpected WebSocket message {other:?}"),
                Err(e) => panic!("WebSocket read failed: {e}"),
            }
        }
    }
}

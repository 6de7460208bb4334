//! WebSocket clients for the tests that are not about WebSocket framing
//! itself: a tungstenite subscriber reading the JSON envelopes of
//! `/ws/...?format=json`.

use super::conn::READ_TIMEOUT;
use std::net::{SocketAddr, TcpStream};

/// A WebSocket subscriber (tungstenite) that reads the JSON envelopes of
/// `/ws/...?format=json`.
pub struct WsJsonClient {
    pub ws: tungstenite::WebSocket<TcpStream>,
}

impl WsJsonClient {
    /// Opens `ws://ADDR{path}`; the subscription is registered once the
    /// handshake response has been read.
    pub fn connect(addr: SocketAddr, path: &str) -> WsJsonClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let (ws, resp) = tungstenite::client(format!("ws://{addr}{path}"), stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake for {path} failed: {e}"));
        assert_eq!(resp.status().as_u16(), 101, "upgrade {path}");
        WsJsonClient { ws }
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

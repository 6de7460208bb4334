//! WebSocket (RFC 6455, with RFC 7692 permessage-deflate), server side,
//! split the way tungstenite splits its codec: frame layout, UTF-8
//! validation, message reassembly, errors, the opening handshake and
//! compression. All pure; the reactor owns sockets and buffers.

pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod reader;
pub mod utf8;

pub use frame::{encode_close, encode_frame, Opcode};
pub use reader::{MessageReader, WsEvent};

//! Wire codecs: pure functions without sockets, clocks or shared state,
//! tested and fuzzed alone. Nothing here knows the hub or the reactors
//! (`.ci/run` checks that no file under `src/proto/` names them); a message
//! reaches the codecs as a borrowed [`envelope::MessageView`].

pub mod compat;
pub mod envelope;
pub mod format;
pub mod longpoll;
pub mod signal;
pub mod sse;
pub mod stream;
pub mod ws;

pub use envelope::MessageView;
pub use format::{EncodeSettings, WireFormat};

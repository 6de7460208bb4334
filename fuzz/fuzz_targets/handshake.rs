//! AFL target `handshake`: see `crier::fuzz::handshake` for the input layout and
//! the invariants it checks.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        crier::fuzz::handshake(data);
    });
}

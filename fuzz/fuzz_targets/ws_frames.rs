//! AFL target `ws_frames`: see `crier::fuzz::ws_frames` for the input layout and
//! the invariants it checks.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        crier::fuzz::ws_frames(data);
    });
}

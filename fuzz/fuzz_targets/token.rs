//! AFL target `token`: see `crier::fuzz::token` for the input layout and
//! the invariants it checks.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        crier::fuzz::token(data);
    });
}

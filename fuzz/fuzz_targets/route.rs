//! AFL target `route`: see `crier::fuzz::route` for the input layout and
//! the invariants it checks.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        crier::fuzz::route(data);
    });
}

//! AFL target `http_request`: see `crier::fuzz::http_request` for the input layout and
//! the invariants it checks.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        crier::fuzz::http_request(data);
    });
}

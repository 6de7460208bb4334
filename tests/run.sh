#!/usr/bin/env bash
# The test suite, as the README gives it: installs what the tests need
# besides cargo (tests/deps.sh, once), then runs every test in release mode.
# Extra arguments go to cargo test (e.g. `bash tests/run.sh --test drain`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/deps.sh
cargo test --release "$@"

#!/usr/bin/env bash
# Regenerates every figure in docs/PERFORMANCE.md in one sitting:
# crier vs the raw floor vs Nchan, same client, medians of 3 runs.
# Usage: bash benches/run-all.sh [OUT_DIR]   (about 25 minutes on 2 cores)
# Needs: nginx + nchan (bash benches/setup-peers.sh); loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/bench-results}"
mkdir -p "$OUT"
cargo build --release
bench() { # name, args...
  local name=$1; shift
  echo "== $name: cargo bench --bench loadgen -- $*" | tee "$OUT/$name.txt"
  cargo bench -q --bench loadgen -- "$@" 2>&1 | tee -a "$OUT/$name.txt"
}
bench idle-memory      idle-memory --peer all --transport sse,ws
bench idle-deflate     idle-memory --peer crier --transport ws-deflate --sizes 19000
bench fanout-paced     fanout --peer all --transport sse,ws --rate 20
bench fanout-burst     fanout --peer all --transport sse,ws,ws-deflate --burst
bench channels         channels --peer all
bench connect-rate     connect-rate --peer all
# Scaling: burst fanout with one and two reactors. With the subscribers
# reading, the load needs a core of its own and caps both; with
# --hold-reads the subscribers pause while the server writes, so the
# server's own rate is measured (see benches/README.md).
bench workers-1        fanout --peer crier --burst --messages 1000 --server-workers 1
bench workers-2        fanout --peer crier --burst --messages 1000 --server-workers 2
bench workers-held-1   fanout --peer crier --burst --hold-reads --runs 5 --server-workers 1
bench workers-held-2   fanout --peer crier --burst --hold-reads --runs 5 --server-workers 2
cargo bench -q --bench timer 2>&1 | tee "$OUT/timer.txt"
grep -h '^{"bench"' "$OUT"/*.txt > "$OUT/all.jsonl" || true
echo "results in $OUT (one JSON line per case in $OUT/all.jsonl)"

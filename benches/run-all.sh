#!/usr/bin/env bash
# Regenerates every figure in docs/PERFORMANCE.md in one sitting:
# crier vs the raw floor vs Nchan, same client, medians of 3 runs.
# Usage: bash benches/run-all.sh [OUT_DIR]   (about 80 minutes on 2 cores)
# Needs: nginx + nchan (bash benches/setup-peers.sh); redis-server for cluster; loopback only.
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
# Headline fanout: publishers that wait for each reply, as real backends do,
# on 1 and 4 keep-alive connections; paced (10/s on one, 40/s offered on
# four) and back to back.
bench fanout-wait-paced-1  fanout --peer all --transport sse,ws --publishers 1 --rate 10 --messages 120
bench fanout-wait-paced-4  fanout --peer all --transport sse,ws --publishers 4 --rate 40 --messages 120
bench fanout-wait-b2b-1    fanout --peer all --transport sse,ws --publishers 1 --burst
bench fanout-wait-b2b-4    fanout --peer all --transport sse,ws --publishers 4 --burst
# The pipelined publisher of earlier sittings (never waits on a reply): a
# separate line, comparable with the figures before the waiting publisher.
bench fanout-pipelined-paced fanout --peer all --transport sse,ws --publish pipelined --rate 20
bench fanout-pipelined-burst fanout --peer all --transport sse,ws,ws-deflate --publish pipelined --burst
bench channels         channels --peer all
bench connect-rate     connect-rate --peer all
# Soak: 100 rounds of 5000 subscribers opened and closed (half FIN, half RST)
# on one server; crier's idle-channel TTL short enough for the soak to run past it.
bench churn            churn --peer all --transport sse,ws --server-arg --channel-idle-ttl --server-arg 5
# The same soak with glibc's defaults (the tcache on; README "Memory
# allocator"), and both without stored messages: the connections alone.
CRIER_MALLOC_TUNING=off bench churn-tcache-on churn --peer crier --transport sse,ws --server-arg --channel-idle-ttl --server-arg 5
bench churn-no-store   churn --peer crier --transport sse --server-arg --channel-idle-ttl --server-arg 5 --server-arg --store-messages --server-arg 0
CRIER_MALLOC_TUNING=off bench churn-no-store-tcache-on churn --peer crier --transport sse --server-arg --channel-idle-ttl --server-arg 5 --server-arg --store-messages --server-arg 0
# Ten times as long, one run each (about 7 minutes a line): where the
# heap settles once the rotating store has, and that the defaults keep climbing.
bench churn-long       churn --peer crier --transport sse,ws --runs 1 --rounds 1000 --server-arg --channel-idle-ttl --server-arg 5
CRIER_MALLOC_TUNING=off bench churn-long-tcache-on churn --peer crier --transport sse --runs 1 --rounds 1000 --server-arg --channel-idle-ttl --server-arg 5
# Scaling: burst fanout with one and two reactors. With the subscribers
# reading, the load needs a core of its own and caps both; with
# --hold-reads the subscribers pause while the server writes, so the
# server's own rate is measured (see benches/README.md). Pipelined, as in
# earlier sittings: the server's top write rate, not a backend's.
bench workers-1        fanout --peer crier --publish pipelined --burst --messages 1000 --server-workers 1
bench workers-2        fanout --peer crier --publish pipelined --burst --messages 1000 --server-workers 2
bench workers-held-1   fanout --peer crier --publish pipelined --burst --hold-reads --runs 5 --server-workers 1
bench workers-held-2   fanout --peer crier --publish pipelined --burst --hold-reads --runs 5 --server-workers 2
# Backplane cost: one node alone, one on Redis, two nodes on one Redis
# (all on core 0). Needs /usr/bin/redis-server; skipped without it.
if [ -x /usr/bin/redis-server ] || [ -n "${REDIS_SERVER:-}" ]; then
  bench cluster        cluster
else
  echo "== cluster: skipped (no redis-server)"
fi
cargo bench -q --bench timer 2>&1 | tee "$OUT/timer.txt"
grep -h '^{"bench"' "$OUT"/*.txt > "$OUT/all.jsonl" || true
echo "results in $OUT (one JSON line per case in $OUT/all.jsonl)"

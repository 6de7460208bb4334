#!/usr/bin/env bash
# Prints one line per fuzzed target from AFL++'s fuzzer_stats
# (fuzz/out/<target>/default/fuzzer_stats), the figures fuzz/README.md records.
set -euo pipefail
cd "$(dirname "$0")"
printf '%-13s %10s %12s %9s %10s %8s %7s %6s %7s\n' \
  target run_s execs execs/s stability corpus crashes hangs cvg
total=0
for t in http_request ws_frames handshake route token; do
  f=out/$t/default/fuzzer_stats
  [ -f "$f" ] || continue
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$f"; }
  execs=$(get execs_done)
  total=$((total + execs))
  printf '%-13s %10s %12s %9s %10s %8s %7s %6s %7s\n' "$t" "$(get run_time)" "$execs" \
    "$(get execs_per_sec)" "$(get stability)" "$(get corpus_count)" \
    "$(get saved_crashes)" "$(get saved_hangs)" "$(get bitmap_cvg)"
done
echo "total execs: $total"

#!/usr/bin/env bash
# Prints one line per fuzzed target from AFL++'s fuzzer_stats
# (fuzz/out/<target>/default/fuzzer_stats, or $OUT/... when set), the
# figures fuzz/README.md records.
set -euo pipefail
cd "$(dirname "$0")"
printf '%-13s %6s %11s %9s %9s %7s %7s %5s %6s %10s\n' \
  target run_s execs execs/s stability corpus crashes hangs tmouts edges
total=0
for t in http_request ws_frames handshake route token; do
  f=${OUT:-out}/$t/default/fuzzer_stats
  [ -f "$f" ] || continue
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$f"; }
  execs=$(get execs_done)
  total=$((total + execs))
  printf '%-13s %6s %11s %9s %9s %7s %7s %5s %6s %10s\n' "$t" "$(get run_time)" "$execs" \
    "$(get execs_per_sec)" "$(get stability)" "$(get corpus_count)" \
    "$(get saved_crashes)" "$(get saved_hangs)" "$(get total_tmout)" \
    "$(get edges_found)/$(get total_edges)"
done
echo "total execs: $total"

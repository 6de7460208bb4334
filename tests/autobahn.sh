#!/usr/bin/env bash
# Autobahn|Testsuite (RFC 6455 / RFC 7692 conformance) against a release
# build of crier, through the shared runner ../shared/tools/autobahn/autobahn.sh
# (CI has shared/ beside the repository).
#
# usage: tests/autobahn.sh [push] [push-tls] [echo] [deflate-quick] [deflate] [limits] [all]
#   push           silent subscribe endpoint (no pings, nothing published):
#                  the 151 cases a push-only server can pass          (~6 s)
#   push-tls       the same over wss:// (crier terminating TLS with a
#                  throwaway certificate made by openssl)             (~8 s)
#   echo           --ws-publish echo mode: every case but 9.*, 12.*, 13.* (~8 s)
#   deflate-quick  12.*/13.* (permessage-deflate, echo mode) with messages of
#                  at most 8 KiB, plus one 128 KiB case               (~2 min)
#   deflate        all 216 cases of 12.*/13.*                         (~28 min)
#   limits         9.* (16 MiB messages, 1000-message bursts)         (~30 s)
#   all            push echo deflate limits
# Default: push echo.  Each profile gets its own crier on a free port.
# Nearly all of the time is the Python 2 test client (wstest) itself:
# 12.x/13.x send each message only after the previous echo, and take
# ~20 s per 1000 x 128 KiB case.
#
# Environment: AUTOBAHN_SH (runner path), AUTOBAHN_OUT (reports; default
# $CARGO_TARGET_DIR/autobahn or target/autobahn), CARGO_TARGET_DIR.
# Exit: 0 every profile passed, 1 a case FAILED, 2 harness problem.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AB="${AUTOBAHN_SH:-$ROOT/../shared/tools/autobahn/autobahn.sh}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${AUTOBAHN_OUT:-$TARGET/autobahn}"
[ -x "$AB" ] || { echo "autobahn runner not found: $AB" >&2; exit 2; }

PROFILES=("$@")
[ ${#PROFILES[@]} -gt 0 ] || PROFILES=(push echo)
if [ "${PROFILES[*]}" = all ]; then PROFILES=(push echo deflate limits); fi
for p in "${PROFILES[@]}"; do
  case "$p" in push|push-tls|echo|deflate-quick|deflate|limits) ;; *) echo "unknown profile $p" >&2; exit 2;; esac
done

echo "== cargo build --release"
(cd "$ROOT" && cargo build --release --quiet --bin crier)
BIN="$TARGET/release/crier"
mkdir -p "$OUT"

PID=""
stop_crier() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
trap stop_crier EXIT

# Starts crier on 127.0.0.1:0 with the given flags; sets PID and PORT (read
# from its "listening on" log line, so there is no port race).
start_crier() {
  local log="$1"; shift
  "$BIN" --listen 127.0.0.1:0 --workers 2 --log-level info "$@" >"$log" 2>&1 &
  PID=$!
  PORT=""
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*crier listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "crier did not start; log:" >&2; cat "$log" >&2
  exit 2
}

# Echo mode: a client's messages come back to it through the channel; no
# history (a reconnecting case must not get the previous case's messages),
# no keepalive pings, and room for the suite's largest messages and frames
# (16 MiB; 9.1.4-9.1.6 send one frame per message).
ECHO_FLAGS=(--ws-publish --store-messages 0 --ping-interval 0 --max-message-size 20000000 --max-frame-size 20000000)

# 12.x/13.x: sub-cases 1-6 are 16 B..8 KiB messages, 11 is 8 KiB in 256-byte
# fragments; 12.1.10 is the largest (128 KiB; ~20 s on its own).
QUICK=""
for sec in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
  for i in 1 2 3 4 5 6 11; do QUICK+="$sec.$i,"; done
done
QUICK+="12.1.10"

# A throwaway self-signed certificate for push-tls, in the profile's report
# directory (the suite's client does not verify it).
make_cert() {
  command -v openssl >/dev/null || { echo "push-tls needs openssl" >&2; exit 2; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}

RC=0
SUMMARY=""
for p in "${PROFILES[@]}"; do
  scheme=ws
  case "$p" in
    push)    flags=(--ping-interval 0);  args=(--profile push);;
    push-tls) flags=(--ping-interval 0); args=(--profile push); scheme=wss;;
    echo)    flags=("${ECHO_FLAGS[@]}"); args=(--profile echo);;
    deflate-quick) flags=("${ECHO_FLAGS[@]}"); args=(--profile all --cases "$QUICK");;
    deflate) flags=("${ECHO_FLAGS[@]}"); args=(--profile all --cases '12.*,13.*' --timeout 3600);;
    limits)  flags=("${ECHO_FLAGS[@]}"); args=(--profile all --cases '9.*' --timeout 1800);;
  esac
  dir="$OUT/$p"
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$p" = push-tls ]; then
    make_cert "$dir"
    flags+=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
  fi
  start_crier "$dir/crier.log" "${flags[@]}"
  echo "== profile $p: crier ${flags[*]} on port $PORT"
  t0=$(date +%s)
  set +e
  # A channel of its own per run; every case connects to the same URL.
  "$AB" "${args[@]}" --outdir "$dir/report" "$scheme://127.0.0.1:$PORT/ws/autobahn-$p-$$"
  rc=$?
  set -e
  secs=$(( $(date +%s) - t0 ))
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "crier died during profile $p; log tail:"; tail -20 "$dir/crier.log"
    rc=2
  fi
  stop_crier
  SUMMARY+="$(printf '%-14s rc=%d  %5ds' "$p" "$rc" "$secs")"$'\n'
  if [ "$rc" -gt "$RC" ]; then RC=$rc; fi
done
echo "== autobahn summary (reports in $OUT)"
printf '%s' "$SUMMARY"
exit $RC

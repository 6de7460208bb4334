#!/usr/bin/env bash
# Publish to crier with curl: every MESSAGE to CHANNEL, in order, over one
# kept-alive connection (curl reuses it across --next). Prints the server's
# JSON reply per message.
#   CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... bash publish.sh CHANNEL MESSAGE...
set -euo pipefail
url="${CRIER_URL:-http://127.0.0.1:8080}"
url="${url%/}/pub?id=$1"
shift
# Headers from a file (mode 0600), so the secret is not in curl's
# arguments, which any user can read in ps.
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
echo 'Content-Type: text/plain; charset=utf-8' >"$headers"
if [ -n "${CRIER_PUBLISH_SECRET:-}" ]; then
  echo "Authorization: Bearer $CRIER_PUBLISH_SECRET" >>"$headers"
fi
args=()
for message in "$@"; do
  [ ${#args[@]} -eq 0 ] || args+=(--next)
  args+=(--silent --show-error --fail-with-body --max-time 10 -H "@$headers" --data-binary "$message" "$url")
done
curl "${args[@]}"

#!/usr/bin/env bash
# Layers only point down: each rule names a folder and the crate paths its
# files may not use. proto/ (the codecs) is a leaf: it names nothing of the
# crate outside itself. See docs/ARCHITECTURE.md for the module map.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# check FOLDER WHAT FORBIDDEN [ALLOWED]: lines matching FORBIDDEN (and not
# ALLOWED) fail the build.
check() {
  local hits
  hits=$(grep -rnE "$3" "$1" --include='*.rs' | grep -vE "${4:-^$}" || true)
  if [ -n "$hits" ]; then
    printf 'layering: %s must not name %s:\n%s\n' "$1" "$2" "$hits"
    fail=1
  fi
}
check src/proto "anything of the crate outside src/proto" 'crate::(\{|[a-z_]+)' 'crate::proto\b'
check src/http "the reactor, the server or status" 'crate::(reactor|server|status)\b'
check src/pubsub "the reactor, the server, http or status" 'crate::(reactor|server|http|status)\b'
check src/status "the reactor or the server" 'crate::(reactor|server)\b'
check src/tls "the reactor, the server, http, pubsub or status" 'crate::(reactor|server|http|pubsub|status)\b'
[ "$fail" -eq 0 ] || exit 1
echo "layering ok"

#!/usr/bin/env bash
# Installs, once, the programs the test suite uses besides cargo, on a
# Debian machine (CI runs this on a fresh one). Idempotent; tools that are
# not Debian packages go under target/test-tools/. Needs root (or sudo) for
# apt-get only.
#
#   promtool  target/test-tools/bin/promtool, taken from Debian's
#             `prometheus` package without installing it (no service starts)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${CARGO_TARGET_DIR:-$ROOT/target}/test-tools"
mkdir -p "$TOOLS/bin"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ ! -x "$TOOLS/bin/promtool" ]; then
  echo "== promtool (from Debian's prometheus package, extracted)"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) || {
    $SUDO apt-get update -qq && (cd "$tmp" && apt-get download prometheus >/dev/null)
  }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  cp "$tmp/x/usr/bin/promtool" "$TOOLS/bin/promtool"
  rm -rf "$tmp"
fi
echo "test tools ready in $TOOLS/bin"

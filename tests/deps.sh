#!/usr/bin/env bash
# Installs, once, the programs the test suite uses besides cargo, on a
# Debian machine (CI runs this on a fresh one). Idempotent; tools that are
# not Debian packages go under target/test-tools/. Needs root (or sudo) for
# apt-get only.
#
#   promtool  target/test-tools/bin/promtool, taken from Debian's
#             `prometheus` package without installing it (no service starts)
#   php, node, python3
#             run the token minting examples (docs/examples/tokens/) in
#             tests/tokens_cli.rs; Debian's php-cli, nodejs and python3,
#             installed only when the command is missing
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
# apt_install PACKAGE...: install, refreshing the package lists only when
# the first try fails (a fresh machine has none).
apt_install() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  }
}
for pair in php:php-cli node:nodejs python3:python3; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "== $cmd (Debian's $pkg)"
    apt_install "$pkg"
  fi
done
echo "test tools ready in $TOOLS/bin"

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
#   php-curl, python3-requests, golang-go, curl
#             the publishing examples of docs/PUBLISHING.md
#             (tests/snippets.rs runs each one)
#   redis-server
#             Debian's package, for the cluster suite (tests/cluster.rs):
#             each test starts its own on a free loopback port, without
#             persistence; the package's own service is not used
#   chromium  /usr/bin/chromium, Debian's package, for the browser suite
#             (tests/browser.rs); playwright cannot download a browser here
#   node_modules  tests/browser/node_modules (playwright-core; nchan and
#             pushstreamjs, the peers' browser clients that
#             tests/browser_compat.rs runs) by `npm ci` from the committed
#             package-lock.json, with the machine's node
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
for pair in php:php-cli node:nodejs npm:npm python3:python3 redis-server:redis-server; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "== $cmd (Debian's $pkg)"
    apt_install "$pkg"
  fi
done
php -m 2>/dev/null | grep -qx curl || { echo "== php-curl"; apt_install php-curl; }
python3 -c 'import requests' 2>/dev/null || { echo "== python3-requests"; apt_install python3-requests; }
for pair in go:golang-go curl:curl; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || { echo "== $cmd (Debian's $pkg)"; apt_install "$pkg"; }
done

if [ ! -x /usr/bin/chromium ]; then
  echo "== chromium (Debian package, for tests/browser)"
  apt_install chromium
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "tests/browser needs node >= 20 (playwright-core); this machine has $(node --version)" >&2
  exit 1
fi

# npm ci again only when the lock changed since the last install (npm
# writes node_modules/.package-lock.json on every install).
BROWSER="$ROOT/tests/browser"
if [ ! -f "$BROWSER/node_modules/.package-lock.json" ] ||
  [ "$BROWSER/package-lock.json" -nt "$BROWSER/node_modules/.package-lock.json" ]; then
  echo "== npm ci (tests/browser: playwright-core, nchan, pushstreamjs)"
  (cd "$BROWSER" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "test tools ready in $TOOLS/bin, /usr/bin/chromium, tests/browser/node_modules"

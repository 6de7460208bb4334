#!/usr/bin/env bash
# Installs the comparison peers for benches/loadgen/: nginx with the nchan module
# (Debian packages). Idempotent: does nothing when both are already present.
# The harness never installs anything itself; it only starts nginx with its own
# prefix and config (benches/peers/nchan.conf), so the system nginx service is untouched.
set -euo pipefail

have_nchan() {
    [ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]
}

if have_nchan; then
    echo "nginx + nchan already installed: $(/usr/sbin/nginx -v 2>&1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends nginx libnginx-mod-nchan util-linux

# Debian starts the packaged nginx service on install; the benchmark does not need it,
# and it would hold port 80 and a core's worth of workers. Stop it if it is running.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    $SUDO systemctl stop nginx || true
fi

have_nchan && echo "installed: $(/usr/sbin/nginx -v 2>&1)"

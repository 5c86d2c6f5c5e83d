#!/usr/bin/env bash
# Starts the suite on the example configuration (what `make run` does after building).
# First start: creates the self-signed certificate under run/tls and, when run as
# root, the unprivileged system user "warren" the daemons switch to.
set -euo pipefail
cd "$(dirname "$0")/.."
conf=${1:-conf/example/warren.conf}
scripts/mkcert.sh run/tls
if [ "$(id -u)" -eq 0 ] && ! getent passwd warren >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin warren
  echo "run-example: created system user warren"
fi
echo "run-example: starting Warren on $conf (Ctrl-C stops it)"
exec "${BUILD:-build}/bin/warren" -c "$conf"

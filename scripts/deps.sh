#!/usr/bin/env bash
# Installs the Debian 12 packages Warren needs to build, run and test.
# Used by `make run`, `make test` and CI. Idempotent: installs only what is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  # libraries (DESIGN.md)
  libuv1-dev libssl-dev libdb5.3-dev libpam0g-dev libspf2-dev libc-ares-dev
  libconfuse-dev libcrypt-dev zlib1g-dev
  libmicrohttpd-dev libexpat1-dev
  # tools used at run time and by the tests
  openssl python3 python3-pytest swaks dnsmasq-base libpam-wrapper libcmocka-dev
  libnet-ssleay-perl   # swaks --tls
  # fuzzing and sanitizers (make fuzz, make test-asan)
  clang libclang-rt-14-dev
  curl procps
  fetchmail
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "deps: missing packages and not root; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

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
  libpcre2-dev         # smtpd content filter rules (docs/policy.md)
  # tools used at run time and by the tests
  openssl python3 python3-pytest swaks dnsmasq-base libpam-wrapper libcmocka-dev
  libnet-ssleay-perl   # swaks --tls
  # fuzzing and sanitizers (make fuzz, make test-asan)
  clang libclang-rt-14-dev
  curl procps
  fetchmail
  isync                # mbsync: IMAP two-way sync tests
  # outbound tests (#6): Postfix's smtp-sink as a foreign MTA, DKIM verification
  postfix python3-dkim python3-nacl
  pflogsumm            # #10: pflogsumm reads Warren's log (test_pflogsumm.py)
  testssl.sh           # #9: TLS policy scan (test_tls_policy.py)
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
# postfix is installed for its smtp-sink only: no configuration, and its service
# must not start and take port 25 (policy-rc.d 101: no service starts here)
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  REMOVE_POLICY=1
fi
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [ -n "${REMOVE_POLICY:-}" ]; then
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now postfix >/dev/null 2>&1 || true
fi

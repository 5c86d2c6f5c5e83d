#!/usr/bin/env bash
# Creates a self-signed certificate for the example config on first start.
# usage: scripts/mkcert.sh DIR [NAME...]   (writes DIR/cert.pem and DIR/key.pem)
set -euo pipefail
dir=$1; shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost mail.example.test mail.example.org example.test example.org)
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then
  exit 0
fi
mkdir -p "$dir"
san="IP:127.0.0.1,IP:::1"
for n in "${names[@]}"; do san="$san,DNS:$n"; done
umask 077
openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" \
  -subj "/CN=${names[0]}" -addext "subjectAltName=$san" 2>/dev/null
chmod 644 "$dir/cert.pem"
echo "mkcert: created $dir/cert.pem (self-signed for ${names[*]})"

#!/bin/sh
# bench/deps.sh: the peers of `make bench-compare`, from Debian's packages.
# Postfix is installed without a system configuration ('No configuration') and
# nothing is started: bench/compare.py runs its own instances in a temporary
# folder (postfix -c DIR, dovecot -c FILE). Not used by `make test` or CI.
set -e
PACKAGES="postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd build-essential linux-perf"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "bench-deps: missing:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "bench-deps: installing$missing"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# no service may start while installing (there is no init system here, and the
# system's own services are not ours to run)
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.bench
if [ ! -e /usr/sbin/policy-rc.d ]; then
    mv /usr/sbin/policy-rc.d.bench /usr/sbin/policy-rc.d; created=1
else
    rm -f /usr/sbin/policy-rc.d.bench
fi
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends $missing
[ -n "$created" ] && rm -f /usr/sbin/policy-rc.d
exit 0

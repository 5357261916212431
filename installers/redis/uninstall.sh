#!/usr/bin/env bash
# redis: removes the portal's settings; purges Redis (and its data) when this catalogue
# installed it, else restarts it with Debian's settings. Idempotent; exit codes as install.sh.
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_INSTALL=2 EXIT_CONFIG=3
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}
readonly REDIS_CONF=/etc/redis/redis.conf
readonly PORTAL_CONF=/etc/redis/portal.conf

log() { printf 'redis: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'redis: error: %s\n' "$*" >&2
    exit "$code"
}

rm -fv "$PORTAL_CONF"
if [[ -f $REDIS_CONF ]]; then
    sed -i -e '/^# Added by the portal redis installer$/d' -e "\|^include $PORTAL_CONF\$|d" \
        "$REDIS_CONF"
fi
if ! dpkg-query -W -f='${Status}' redis-server 2>/dev/null | grep -q 'ok installed'; then
    log "redis-server is not installed"
    exit 0
fi
if [[ ! -e $MARKERS/redis-server ]]; then
    systemctl restart redis-server || fail $EXIT_CONFIG "redis-server does not restart"
    log "removed the portal's settings; redis-server (not installed by the portal) stays"
    exit 0
fi
apt-get -q -y -o DPkg::Lock::Timeout=120 purge redis-server redis-tools ||
    fail $EXIT_INSTALL "apt-get purge redis-server failed"
apt-get -q -y -o DPkg::Lock::Timeout=120 autoremove --purge ||
    fail $EXIT_INSTALL "apt-get autoremove failed"
rm -f "$MARKERS/redis-server"
log "removed redis-server"

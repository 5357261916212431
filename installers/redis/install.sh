#!/usr/bin/env bash
# redis: installs Redis on loopback with PASSWORD, PORT (default 6379), MAXMEMORY_MB and
# MAXMEMORY_POLICY. The settings live in /etc/redis/portal.conf (0640 redis:redis), included
# from Debian's redis.conf. The password never appears on a command line: redis-cli gets it
# in REDISCLI_AUTH. Without PASSWORD (a later run: the portal generates it for the first
# install only) the password of the installed settings is kept. Contract
# (installers/README.md): exit 0 success, 1 bad input, 2 installation error (retried),
# 3 configuration error (Redis does not come up with it).
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_VALIDATION=1 EXIT_INSTALL=2 EXIT_CONFIG=3
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}
CHANGED=0

log() { printf 'redis: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'redis: error: %s\n' "$*" >&2
    exit "$code"
}

# --- shared helpers (the same in every installer: each directory ships on its own) ---------

# apt-get install what is missing; a marker records each package this installer installed,
# so an uninstall purges only those.
apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$package")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "unchanged: packages $*"
        return 0
    fi
    log "installing ${missing[*]}"
    apt-get -q -o DPkg::Lock::Timeout=120 update || fail $EXIT_INSTALL "apt-get update failed"
    apt-get -q -y -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold install "${missing[@]}" ||
        fail $EXIT_INSTALL "apt-get install ${missing[*]} failed"
    mkdir -p "$MARKERS"
    for package in "${missing[@]}"; do touch "$MARKERS/$package"; done
    CHANGED=1
}

# Write content to path (mode, owner) only when it differs; atomic; reports either way.
put_file() {
    local path=$1 content=$2 mode=${3:-644} owner=${4:-root:root} temporary
    if [[ -f $path ]] && cmp -s "$path" <(printf '%s' "$content") &&
        [[ $(stat -c '%a %U:%G' "$path") == "$mode $owner" ]]; then
        log "unchanged: $path"
        return 0
    fi
    mkdir -p "$(dirname "$path")"
    temporary=$(mktemp "$path.XXXXXX")
    chmod "$mode" "$temporary"
    chown "$owner" "$temporary"
    printf '%s' "$content" >"$temporary"
    mv -f "$temporary" "$path"
    log "changed: $path"
    CHANGED=1
}

in_range() { [[ $1 =~ ^[0-9]{1,9}$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

# --- inputs ---------------------------------------------------------------------------------

PORT=${PORT:-6379}
MAXMEMORY_MB=${MAXMEMORY_MB:-128}
MAXMEMORY_POLICY=${MAXMEMORY_POLICY:-noeviction}
PASSWORD=${PASSWORD:-}

readonly REDIS_CONF=/etc/redis/redis.conf
readonly PORTAL_CONF=/etc/redis/portal.conf
readonly INCLUDE_LINE="include $PORTAL_CONF"

# The password of the settings a previous run wrote (empty when there are none): the one
# every client uses, so a run not given one keeps it.
installed_password() {
    [[ -f $PORTAL_CONF ]] || return 0
    sed -n 's/^requirepass "\([^"]*\)"$/\1/p' "$PORTAL_CONF" | tail -n 1
}

in_range "$PORT" 1 65535 || fail $EXIT_VALIDATION "PORT must be a port (1-65535), got '$PORT'"
PORT=$((10#$PORT))
in_range "$MAXMEMORY_MB" 16 65536 ||
    fail $EXIT_VALIDATION "MAXMEMORY_MB must be an integer from 16 to 65536, got '$MAXMEMORY_MB'"
MAXMEMORY_MB=$((10#$MAXMEMORY_MB))
case $MAXMEMORY_POLICY in
noeviction | allkeys-lru | volatile-lru | allkeys-lfu | volatile-ttl) ;;
*) fail $EXIT_VALIDATION "MAXMEMORY_POLICY '$MAXMEMORY_POLICY' is not an allowed value" ;;
esac
if [[ -z $PASSWORD ]]; then
    PASSWORD=$(installed_password)
    [[ -n $PASSWORD ]] ||
        fail $EXIT_VALIDATION "password is required: no installed Redis settings have one"
    log "keeping the installed password (no PASSWORD given)"
fi
((${#PASSWORD} >= 16 && ${#PASSWORD} <= 128)) ||
    fail $EXIT_VALIDATION "PASSWORD must have 16 to 128 characters"
if [[ ! $PASSWORD =~ ^[[:graph:]]+$ || $PASSWORD == *[\"\'\\]* ]]; then
    fail $EXIT_VALIDATION "PASSWORD may not contain spaces, quotes or backslashes"
fi

# --- install --------------------------------------------------------------------------------

apt_install redis-server

settings() {
    cat <<CONF
# Managed by the portal's redis installer: a rerun rewrites this file.
bind 127.0.0.1 -::1
protected-mode yes
port $PORT
maxmemory ${MAXMEMORY_MB}mb
maxmemory-policy $MAXMEMORY_POLICY
requirepass "$PASSWORD"
CONF
}

put_file "$PORTAL_CONF" "$(settings)"$'\n' 640 redis:redis
if grep -qxF "$INCLUDE_LINE" "$REDIS_CONF"; then
    log "unchanged: $REDIS_CONF includes $PORTAL_CONF"
else
    # Last in the file: an included directive overrides the ones before it.
    printf '\n# Added by the portal redis installer\n%s\n' "$INCLUDE_LINE" >>"$REDIS_CONF"
    log "changed: $REDIS_CONF includes $PORTAL_CONF"
    CHANGED=1
fi

if ! systemctl is-enabled --quiet redis-server; then
    systemctl enable --quiet redis-server
    CHANGED=1
fi
if ((CHANGED)) || ! systemctl is-active --quiet redis-server; then
    systemctl restart redis-server ||
        fail $EXIT_CONFIG "redis-server does not start (journalctl -u redis-server)"
    log "restarted redis-server"
fi

# Redis answers with these settings (the password in the environment, not on argv).
pong() { [[ $(REDISCLI_AUTH=$PASSWORD redis-cli -p "$PORT" ping 2>/dev/null) == PONG ]]; }
for _ in $(seq 50); do
    pong && break
    sleep 0.2
done
pong || fail $EXIT_CONFIG "redis does not answer PING with the password on port $PORT"

if ((CHANGED)); then log "result: changed"; else log "result: unchanged"; fi

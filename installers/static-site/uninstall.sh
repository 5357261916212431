#!/usr/bin/env bash
# static-site: removes the site for SERVER_NAME and its certificate; purges nginx when this
# catalogue installed it and no portal site is left. Idempotent; exit codes as install.sh.
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_VALIDATION=1 EXIT_INSTALL=2
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}

log() { printf 'static-site: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'static-site: error: %s\n' "$*" >&2
    exit "$code"
}

SERVER_NAME=${SERVER_NAME:-}
readonly HOSTNAME_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'
[[ ${#SERVER_NAME} -le 253 && $SERVER_NAME =~ $HOSTNAME_RE ]] ||
    fail $EXIT_VALIDATION "SERVER_NAME must be a lowercase host name, got '$SERVER_NAME'"

readonly SITE=portal-static-site-$SERVER_NAME
rm -fv "/etc/nginx/sites-enabled/$SITE.conf" "/etc/nginx/sites-available/$SITE.conf"
rm -rfv "/var/www/portal-static-site/$SERVER_NAME"
rm -fv "/etc/ssl/portal-static-site/$SERVER_NAME.crt" "/etc/ssl/portal-static-site/$SERVER_NAME.key"
rmdir --ignore-fail-on-non-empty /var/www/portal-static-site /etc/ssl/portal-static-site \
    2>/dev/null || true

if ! command -v nginx >/dev/null; then
    log "nginx is not installed"
    exit 0
fi
if compgen -G '/etc/nginx/sites-enabled/portal-*' >/dev/null || [[ ! -e $MARKERS/nginx ]]; then
    # Other portal sites still use nginx, or it was there before the portal: keep it.
    if systemctl is-active --quiet nginx; then
        nginx -t -q && systemctl reload nginx
    fi
    log "removed site $SERVER_NAME; nginx stays"
    exit 0
fi
apt-get -q -y -o DPkg::Lock::Timeout=120 purge nginx nginx-common ||
    fail $EXIT_INSTALL "apt-get purge nginx failed"
apt-get -q -y -o DPkg::Lock::Timeout=120 autoremove --purge ||
    fail $EXIT_INSTALL "apt-get autoremove failed"
rm -f "$MARKERS/nginx"
log "removed site $SERVER_NAME and nginx"

#!/usr/bin/env bash
# nginx: installs nginx and serves a page for SERVER_NAME on LISTEN_PORT (default 80).
# The installer contract (installers/README.md): no stdin, inputs as UPPERCASE environment
# variables, logs on stdout/stderr, idempotent; exit 0 success, 1 bad input, 2 installation
# error (retried), 3 configuration error (nginx -t fails: the change is rolled back).
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_VALIDATION=1 EXIT_INSTALL=2 EXIT_CONFIG=3
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}
CHANGED=0

log() { printf 'nginx: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'nginx: error: %s\n' "$*" >&2
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

# --- inputs ---------------------------------------------------------------------------------

SERVER_NAME=${SERVER_NAME:-}
LISTEN_PORT=${LISTEN_PORT:-80}
readonly HOSTNAME_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'

[[ -n $SERVER_NAME ]] || fail $EXIT_VALIDATION "SERVER_NAME is required"
[[ ${#SERVER_NAME} -le 253 && $SERVER_NAME =~ $HOSTNAME_RE ]] ||
    fail $EXIT_VALIDATION "SERVER_NAME must be a lowercase host name, got '$SERVER_NAME'"
is_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
is_port "$LISTEN_PORT" ||
    fail $EXIT_VALIDATION "LISTEN_PORT must be a port (1-65535), got '$LISTEN_PORT'"
LISTEN_PORT=$((10#$LISTEN_PORT))

readonly SITE=portal-nginx-$SERVER_NAME
readonly AVAILABLE=/etc/nginx/sites-available/$SITE.conf
readonly ENABLED=/etc/nginx/sites-enabled/$SITE.conf
readonly WEBROOT=/var/www/portal-nginx/$SERVER_NAME

# --- install --------------------------------------------------------------------------------

apt_install nginx

site_config() {
    cat <<CONF
# Managed by the portal's nginx installer: a rerun rewrites this file.
server {
    listen $LISTEN_PORT;
    listen [::]:$LISTEN_PORT;
    server_name $SERVER_NAME;
    root $WEBROOT;
    index index.html;
    location / {
        try_files \$uri \$uri/ =404;
    }
}
CONF
}

page() {
    cat <<HTML
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>$SERVER_NAME</title></head>
<body><h1>$SERVER_NAME</h1><p>Served by nginx, installed by the provisioning portal.</p></body>
</html>
HTML
}

# Keep what was there, so a configuration nginx rejects is rolled back.
backup=$(mktemp)
trap 'rm -f "$backup"' EXIT
had_config=0
if [[ -f $AVAILABLE ]]; then
    cp -p "$AVAILABLE" "$backup"
    had_config=1
fi
had_link=0
[[ -L $ENABLED ]] && had_link=1
had_webroot=0
[[ -d $WEBROOT ]] && had_webroot=1

put_file "$WEBROOT/index.html" "$(page)"$'\n'
put_file "$AVAILABLE" "$(site_config)"$'\n'
if [[ $(readlink "$ENABLED" 2>/dev/null) != "$AVAILABLE" ]]; then
    ln -sfn "$AVAILABLE" "$ENABLED"
    log "changed: $ENABLED"
    CHANGED=1
else
    log "unchanged: $ENABLED"
fi

if ! nginx -t -q; then
    if ((had_config)); then cp -p "$backup" "$AVAILABLE"; else rm -f "$AVAILABLE"; fi
    ((had_link)) || rm -f "$ENABLED"
    ((had_webroot)) || rm -rf "$WEBROOT"
    fail $EXIT_CONFIG "nginx -t rejects the configuration (see above); site change rolled back"
fi

if ! systemctl is-enabled --quiet nginx; then
    systemctl enable --quiet nginx
    CHANGED=1
fi
if ! systemctl is-active --quiet nginx; then
    # restart, not start: nginx may still be starting from the package's own start, with
    # the configuration read before this site existed; a start would just wait for that one.
    systemctl restart nginx || fail $EXIT_CONFIG "nginx does not start (journalctl -u nginx)"
    log "started nginx"
    CHANGED=1
elif ((CHANGED)); then
    systemctl reload nginx || fail $EXIT_CONFIG "nginx does not reload (journalctl -u nginx)"
    log "reloaded nginx"
fi

# The site answers for its name (bash's /dev/tcp: the node needs no HTTP client).
last_seen="nothing"
answers() {
    local response
    exec 3<>"/dev/tcp/127.0.0.1/$LISTEN_PORT" || return 1
    printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$SERVER_NAME" >&3
    response=$(cat <&3)
    exec 3<&-
    last_seen="${response%%$'\r'*}, $(grep -c "<h1>$SERVER_NAME</h1>" <<<"$response") own heading"
    [[ $response == "HTTP/1.1 200"* && $response == *"<h1>$SERVER_NAME</h1>"* ]]
}
serves_within() { # tries, 0.2 s apart
    local try
    for ((try = 0; try < $1; try++)); do
        answers 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
if ! serves_within 50; then
    # A reload can be lost on an nginx the package has only just started (a test host's CI
    # run saw the default page for 20 s after one): a restart reads the configuration anew.
    log "nginx still does not serve $SERVER_NAME after 10 s (last: $last_seen): restarting it"
    systemctl restart nginx || fail $EXIT_CONFIG "nginx does not restart (journalctl -u nginx)"
    CHANGED=1
    serves_within 50 ||
        fail $EXIT_CONFIG "nginx does not serve $SERVER_NAME on port $LISTEN_PORT (last: $last_seen)"
fi

if ((CHANGED)); then log "result: changed"; else log "result: unchanged"; fi

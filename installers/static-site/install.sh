#!/usr/bin/env bash
# static-site: serves a page for SERVER_NAME with nginx; with TLS=true over HTTPS (HTTP
# redirects) with a self-signed certificate (CERTIFICATE_MODE=self-signed) or the given
# CERTIFICATE and PRIVATE_KEY (CERTIFICATE_MODE=provided; the portal passes them only then).
# The key is written 0600 and never put on a command line. Contract (installers/README.md):
# exit 0 success, 1 bad input, 2 installation error (retried), 3 configuration error
# (nginx -t fails: the site change is rolled back).
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_VALIDATION=1 EXIT_INSTALL=2 EXIT_CONFIG=3
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}
CHANGED=0

log() { printf 'static-site: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'static-site: error: %s\n' "$*" >&2
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

remove_file() {
    if [[ -e $1 || -L $1 ]]; then
        rm -f "$1"
        log "changed: removed $1"
        CHANGED=1
    fi
}

# --- inputs ---------------------------------------------------------------------------------

SERVER_NAME=${SERVER_NAME:-}
TLS=${TLS:-false}
CERTIFICATE_MODE=${CERTIFICATE_MODE:-self-signed}
readonly HOSTNAME_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'

[[ -n $SERVER_NAME ]] || fail $EXIT_VALIDATION "SERVER_NAME is required"
[[ ${#SERVER_NAME} -le 253 && $SERVER_NAME =~ $HOSTNAME_RE ]] ||
    fail $EXIT_VALIDATION "SERVER_NAME must be a lowercase host name, got '$SERVER_NAME'"
case $TLS in
true | false) ;;
*) fail $EXIT_VALIDATION "TLS must be true or false, got '$TLS'" ;;
esac
if [[ $TLS == true ]]; then
    case $CERTIFICATE_MODE in
    self-signed) ;;
    provided)
        [[ -n ${CERTIFICATE:-} && -n ${PRIVATE_KEY:-} ]] ||
            fail $EXIT_VALIDATION "CERTIFICATE and PRIVATE_KEY are required when CERTIFICATE_MODE=provided"
        # Both parse, and the key is the certificate's (stdin only: never on argv).
        cert_key=$(openssl x509 -noout -pubkey 2>/dev/null <<<"$CERTIFICATE") ||
            fail $EXIT_VALIDATION "CERTIFICATE is not a PEM certificate"
        key_key=$(openssl pkey -pubout 2>/dev/null <<<"$PRIVATE_KEY") ||
            fail $EXIT_VALIDATION "PRIVATE_KEY is not an unencrypted PEM private key"
        [[ $cert_key == "$key_key" ]] ||
            fail $EXIT_VALIDATION "PRIVATE_KEY does not belong to CERTIFICATE"
        ;;
    *) fail $EXIT_VALIDATION "CERTIFICATE_MODE must be self-signed or provided" ;;
    esac
fi

readonly SITE=portal-static-site-$SERVER_NAME
readonly AVAILABLE=/etc/nginx/sites-available/$SITE.conf
readonly ENABLED=/etc/nginx/sites-enabled/$SITE.conf
readonly WEBROOT=/var/www/portal-static-site/$SERVER_NAME
readonly CERT_FILE=/etc/ssl/portal-static-site/$SERVER_NAME.crt
readonly KEY_FILE=/etc/ssl/portal-static-site/$SERVER_NAME.key

# --- install --------------------------------------------------------------------------------

apt_install nginx openssl

# A self-signed certificate is kept while it is ours: for this name, valid 30 more days and
# matching its key.
self_signed_current() {
    [[ -f $CERT_FILE && -f $KEY_FILE ]] || return 1
    [[ $(openssl x509 -noout -subject -issuer -nameopt RFC2253 -in "$CERT_FILE") == \
        "subject=CN=$SERVER_NAME"$'\n'"issuer=CN=$SERVER_NAME" ]] || return 1
    openssl x509 -noout -checkend 2592000 -in "$CERT_FILE" >/dev/null || return 1
    [[ $(openssl x509 -noout -pubkey -in "$CERT_FILE") == $(openssl pkey -pubout -in "$KEY_FILE") ]]
}

make_self_signed() {
    local directory
    directory=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$SERVER_NAME" \
        -addext "subjectAltName=DNS:$SERVER_NAME" \
        -keyout "$directory/key" -out "$directory/cert" 2>/dev/null ||
        fail $EXIT_CONFIG "openssl cannot make a self-signed certificate"
    mkdir -p "$(dirname "$CERT_FILE")"
    install -m 600 -o root -g root "$directory/key" "$KEY_FILE"
    install -m 644 -o root -g root "$directory/cert" "$CERT_FILE"
    rm -rf "$directory"
    log "changed: made a self-signed certificate for $SERVER_NAME"
    CHANGED=1
}

if [[ $TLS == true && $CERTIFICATE_MODE == provided ]]; then
    put_file "$KEY_FILE" "${PRIVATE_KEY%$'\n'}"$'\n' 600
    put_file "$CERT_FILE" "${CERTIFICATE%$'\n'}"$'\n'
elif [[ $TLS == true ]]; then
    if self_signed_current; then log "unchanged: $CERT_FILE"; else make_self_signed; fi
else
    remove_file "$CERT_FILE"
    remove_file "$KEY_FILE"
fi

site_config() {
    echo "# Managed by the portal's static-site installer: a rerun rewrites this file."
    if [[ $TLS == true ]]; then
        cat <<CONF
server {
    listen 80;
    listen [::]:80;
    server_name $SERVER_NAME;
    return 301 https://\$host\$request_uri;
}
server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name $SERVER_NAME;
    ssl_certificate $CERT_FILE;
    ssl_certificate_key $KEY_FILE;
    root $WEBROOT;
    index index.html;
}
CONF
    else
        cat <<CONF
server {
    listen 80;
    listen [::]:80;
    server_name $SERVER_NAME;
    root $WEBROOT;
    index index.html;
}
CONF
    fi
}

page() {
    cat <<HTML
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>$SERVER_NAME</title></head>
<body><h1>$SERVER_NAME</h1><p>A static site installed by the provisioning portal.</p></body>
</html>
HTML
}

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
    systemctl start nginx || fail $EXIT_CONFIG "nginx does not start (journalctl -u nginx)"
    log "started nginx"
    CHANGED=1
elif ((CHANGED)); then
    systemctl reload nginx || fail $EXIT_CONFIG "nginx does not reload (journalctl -u nginx)"
    log "reloaded nginx"
fi

# The site answers: HTTP (bash's /dev/tcp) with the page, or a redirect and a TLS handshake.
last_seen="nothing"
http_status() {
    local response
    exec 3<>/dev/tcp/127.0.0.1/80 || return 1
    printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$SERVER_NAME" >&3
    response=$(cat <&3)
    exec 3<&-
    last_seen="HTTP: ${response%%$'\r'*}"
    [[ $response == "HTTP/1.1 $1"* ]]
}
handshake() {
    local output
    output=$(openssl s_client -connect 127.0.0.1:443 -servername "$SERVER_NAME" </dev/null 2>&1) &&
        return 0
    last_seen="TLS: $(grep -m1 -i error <<<"$output" || echo "handshake failed")"
    return 1
}
answers() {
    if [[ $TLS == true ]]; then http_status 301 && handshake; else http_status 200; fi
}
wait_answers() {
    local _
    for _ in $(seq "$1"); do
        answers 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
# A reload that switches TLS on or off was once seen to leave the old configuration served
# (a 301 after 20 s; nginx -t passed): restart once rather than fail the install.
if ! wait_answers 25 && ((CHANGED)); then
    log "nginx still serves the previous configuration ($last_seen): restarting it"
    systemctl restart nginx || fail $EXIT_CONFIG "nginx does not restart (journalctl -u nginx)"
fi
wait_answers 75 || fail $EXIT_CONFIG "nginx does not serve $SERVER_NAME as configured (last: $last_seen)"

if ((CHANGED)); then log "result: changed"; else log "result: unchanged"; fi

{% autoescape off %}#!/bin/sh
# Proxmox post-install: registers node {{ node }} with the portal (reprovision run {{ run }}).
# Made for this node and run only: its token works once and expires at {{ expires }}.
# Needs POSIX sh, curl, openssl and od (all on Proxmox VE). What it detects may be given in
# the environment instead: PORTAL_HOSTNAME, PORTAL_IP, PORTAL_LINK0; and the retries:
# PORTAL_ATTEMPTS (default 10), PORTAL_RETRY_DELAY (seconds, default 5, doubling up to 60).
set -u
umask 077

PORTAL_URL={{ url }}
PORTAL_TOKEN={{ token }}
PORTAL_SECRET={{ secret }}
PORTAL_MAC={{ mac }}
LINK0_CONFIGURED={{ link0 }}
ATTEMPTS=${PORTAL_ATTEMPTS:-10}
DELAY=${PORTAL_RETRY_DELAY:-5}

log() { echo "portal-register: $*" >&2; }

# The IPv4 address on the interface (or its bridge) with the provisioning MAC.
detect_ip() {
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/address" 2>/dev/null)" = "$PORTAL_MAC" ] || continue
        addr=$(ip -4 -o addr show dev "${dev##*/}" scope global 2>/dev/null | awk '{print $4; exit}')
        if [ -n "$addr" ]; then echo "${addr%%/*}"; return 0; fi
    done
    hostname -I 2>/dev/null | awk '{print $1}'
}

# HMAC-SHA256 (RFC 2104) with the key kept off every command line (openssl -hmac would
# show it in ps): the shell's printf writes the key XOR ipad/opad into the two hashes.
pad_key() { # $1: 54 (ipad) or 92 (opad); writes 64 bytes
    rest=$PORTAL_SECRET
    i=0
    while [ "$i" -lt 64 ]; do
        if [ -n "$rest" ]; then
            byte=$(( 0x$(printf %.2s "$rest") ^ $1 ))
            rest=${rest#??}
        else
            byte=$1
        fi
        printf "\\$(printf %o "$byte")"
        i=$((i + 1))
    done
}

unhex() { # $1: hex digits, written as bytes
    rest=$1
    while [ -n "$rest" ]; do
        printf "\\$(printf %o "$(( 0x$(printf %.2s "$rest") ))")"
        rest=${rest#??}
    done
}

hmac_sha256() { # the message on stdin; prints the hex digest
    inner=$({ pad_key 54; cat; } | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')
    { pad_key 92; unhex "$inner"; } | openssl dgst -sha256 -r | cut -c1-64
}

send() { # headers through curl's config on stdin, never its command line
    {
        printf 'header = "Content-Type: application/json"\n'
        printf 'header = "X-Portal-Token: %s"\n' "$PORTAL_TOKEN"
        printf 'header = "X-Portal-Timestamp: %s"\n' "$ts"
        printf 'header = "X-Portal-Nonce: %s"\n' "$nonce"
        printf 'header = "X-Portal-Signature: %s"\n' "$sig"
    } | curl -sS -K - --max-time 30 -o "$tmp/answer" -w '%{http_code}' \
        --data-binary "@$tmp/body" "$PORTAL_URL"
}

host=${PORTAL_HOSTNAME:-$(hostname)}
ip=${PORTAL_IP:-$(detect_ip)}
link0=${PORTAL_LINK0:-${LINK0_CONFIGURED:-$ip}}
# The new SSH host keys (type and key, no comment: plain JSON), so the portal's jobs trust
# this install's keys and no other.
keys=$(cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null | awk 'NF >= 2 {printf "%s%s %s", sep, $1, $2; sep="\\n"}')
body=$(printf '{"mac":"%s","hostname":"%s","ip":"%s","link0":"%s","status":"post-install-complete","host_keys":"%s"}' \
    "$PORTAL_MAC" "$host" "$ip" "$link0" "$keys")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s' "$body" >"$tmp/body"

attempt=1
while :; do
    ts=$(date +%s)
    nonce=$(openssl rand -hex 16)
    sig=$(printf '%s\n%s\n%s' "$ts" "$nonce" "$body" | hmac_sha256)
    code=$(send) || code=000
    case $code in
        200 | 201)
            log "registered: $(cat "$tmp/answer")"
            exit 0
            ;;
        408 | 429) ;;
        4??)
            log "refused ($code): $(cat "$tmp/answer" 2>/dev/null)"
            exit 1
            ;;
    esac
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
        log "gave up after $attempt attempt(s); last answer: $code"
        exit 1
    fi
    log "attempt $attempt failed ($code); again in ${DELAY}s"
    sleep "$DELAY"
    attempt=$((attempt + 1))
    DELAY=$((DELAY * 2 > 60 ? 60 : DELAY * 2))
done
{% endautoescape %}
#!/usr/bin/env bash
# The contract probe: exits as OUTCOME says; never prints a value of its environment.
set -euo pipefail
readonly STATE=/var/lib/portal-probe
mkdir -p "$STATE"
echo "probe: environment names: $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo run >>"$STATE/runs"
if [[ -n ${SECRET_TOKEN:-} ]]; then
    # Proof that it arrived, without keeping it: its hash.
    printf '%s' "$SECRET_TOKEN" | sha256sum | cut -d' ' -f1 >"$STATE/token.sha256"
fi
sleep "${PAUSE_SECONDS:-0}"

fetch_packages() {
    # An installation error: the package source is not there (exit 2, retried).
    ls /nonexistent-package-source >/dev/null 2>&1 || return 2
}

case $OUTCOME in
ok)
    if [[ -f $STATE/installed ]]; then
        echo "probe: result: unchanged"
    else
        touch "$STATE/installed"
        echo "probe: result: changed"
    fi
    ;;
validation)
    echo "probe: error: OUTCOME=validation is refused" >&2
    exit 1
    ;;
install)
    fetch_packages
    ;;
config)
    echo "probe: error: the configuration check failed" >&2
    exit 3
    ;;
esac

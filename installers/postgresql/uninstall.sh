#!/usr/bin/env bash
# postgresql: drops DATABASE_NAME and the role OWNER_NAME (their data is gone); purges
# PostgreSQL when this catalogue installed it and no other database is left.
# Idempotent; exit codes as install.sh.
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_VALIDATION=1 EXIT_INSTALL=2 EXIT_CONFIG=3
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}

log() { printf 'postgresql: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'postgresql: error: %s\n' "$*" >&2
    exit "$code"
}

DATABASE_NAME=${DATABASE_NAME:-}
OWNER_NAME=${OWNER_NAME:-}
readonly IDENTIFIER_RE='^[a-z_][a-z0-9_]{0,62}$'
[[ $DATABASE_NAME =~ $IDENTIFIER_RE && $OWNER_NAME =~ $IDENTIFIER_RE ]] ||
    fail $EXIT_VALIDATION "DATABASE_NAME and OWNER_NAME must match $IDENTIFIER_RE"
[[ $OWNER_NAME != postgres && $OWNER_NAME != pg_* ]] ||
    fail $EXIT_VALIDATION "OWNER_NAME '$OWNER_NAME' is reserved"

if ! command -v pg_isready >/dev/null || ! pg_isready -q; then
    log "PostgreSQL is not installed or not running: nothing to drop"
else
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -v owner="$OWNER_NAME" -v database="$DATABASE_NAME" <<'SQL' ||
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'database') \gexec
SELECT format('DROP ROLE IF EXISTS %I', :'owner') \gexec
SQL
        fail $EXIT_CONFIG "cannot drop $DATABASE_NAME or $OWNER_NAME (does the role own more?)"
    log "dropped database $DATABASE_NAME and role $OWNER_NAME"
fi

[[ -e $MARKERS/postgresql ]] || exit 0
others=$(runuser -u postgres -- psql -X -q -t -A -d postgres -c \
    "SELECT count(*) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')" \
    2>/dev/null || echo 0)
if ((others > 0)); then
    log "PostgreSQL stays: $others other database(s)"
    exit 0
fi
apt-get -q -y -o DPkg::Lock::Timeout=120 purge postgresql 'postgresql-[0-9]*' \
    'postgresql-client-[0-9]*' postgresql-common postgresql-client-common ||
    fail $EXIT_INSTALL "apt-get purge postgresql failed"
apt-get -q -y -o DPkg::Lock::Timeout=120 autoremove --purge ||
    fail $EXIT_INSTALL "apt-get autoremove failed"
rm -f "$MARKERS/postgresql"
rmdir --ignore-fail-on-non-empty /etc/postgresql /var/lib/postgresql 2>/dev/null || true
log "removed PostgreSQL"

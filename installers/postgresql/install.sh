#!/usr/bin/env bash
# postgresql: installs PostgreSQL and creates DATABASE_NAME owned by the login role
# OWNER_NAME with OWNER_PASSWORD, idempotently. The password never appears on a command
# line: psql reads it from its environment (\getenv) in SQL sent on stdin, and the check
# that it works connects with a 0600 password file. Without OWNER_PASSWORD (a later run:
# the portal generates it for the first install only) an existing role keeps its password;
# a role to create needs one. Contract (installers/README.md): exit 0 success, 1 bad
# input, 2 installation error (retried), 3 configuration error.
set -euo pipefail
umask 022 # whatever the runner's: nginx and redis must read what we write

readonly EXIT_VALIDATION=1 EXIT_INSTALL=2 EXIT_CONFIG=3
readonly MARKERS=/var/lib/portal-installers/packages
export DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-noninteractive}
CHANGED=0

log() { printf 'postgresql: %s\n' "$*"; }
fail() {
    local code=$1
    shift
    printf 'postgresql: error: %s\n' "$*" >&2
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

# --- inputs ---------------------------------------------------------------------------------

DATABASE_NAME=${DATABASE_NAME:-}
OWNER_NAME=${OWNER_NAME:-}
OWNER_PASSWORD=${OWNER_PASSWORD:-}
readonly IDENTIFIER_RE='^[a-z_][a-z0-9_]{0,62}$'

[[ $DATABASE_NAME =~ $IDENTIFIER_RE ]] ||
    fail $EXIT_VALIDATION "DATABASE_NAME must match $IDENTIFIER_RE, got '$DATABASE_NAME'"
case $DATABASE_NAME in
postgres | template0 | template1) fail $EXIT_VALIDATION "DATABASE_NAME '$DATABASE_NAME' is reserved" ;;
esac
[[ $OWNER_NAME =~ $IDENTIFIER_RE ]] ||
    fail $EXIT_VALIDATION "OWNER_NAME must match $IDENTIFIER_RE, got '$OWNER_NAME'"
[[ $OWNER_NAME != postgres && $OWNER_NAME != pg_* ]] ||
    fail $EXIT_VALIDATION "OWNER_NAME '$OWNER_NAME' is reserved"
if [[ -n $OWNER_PASSWORD ]]; then
    ((${#OWNER_PASSWORD} >= 12 && ${#OWNER_PASSWORD} <= 128)) ||
        fail $EXIT_VALIDATION "OWNER_PASSWORD must have 12 to 128 characters"
    [[ $OWNER_PASSWORD != *[$'\r\n']* ]] ||
        fail $EXIT_VALIDATION "OWNER_PASSWORD must be one line"
    export OWNER_PASSWORD # psql reads it with \getenv
fi
readonly NO_PASSWORD="owner_password is required to create the role $OWNER_NAME"

# --- install --------------------------------------------------------------------------------

# Without a password only an existing role will do, and none exists before PostgreSQL does:
# refused before installing anything.
if [[ -z $OWNER_PASSWORD ]] &&
    ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q 'ok installed'; then
    fail $EXIT_VALIDATION "$NO_PASSWORD"
fi

apt_install postgresql

if ! systemctl is-enabled --quiet postgresql; then
    systemctl enable --quiet postgresql
    CHANGED=1
fi
systemctl start postgresql || fail $EXIT_CONFIG "postgresql does not start"
for _ in $(seq 60); do
    pg_isready -q && break
    sleep 0.5
done
pg_isready -q || fail $EXIT_CONFIG "PostgreSQL does not accept connections (pg_lsclusters)"

# SQL on stdin as the postgres superuser; names as psql variables (quoted by :'name').
admin_sql() {
    runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -d postgres \
        -v owner="$OWNER_NAME" -v database="$DATABASE_NAME"
}

# Connects as the owner over TCP with a 0600 password file (removed on exit); without
# OWNER_PASSWORD the file is empty and nothing connects.
passfile=$(mktemp)
trap 'rm -f "$passfile"' EXIT
if [[ -n $OWNER_PASSWORD ]]; then
    escaped=${OWNER_PASSWORD//\\/\\\\}
    printf '*:*:*:%s:%s\n' "$OWNER_NAME" "${escaped//:/\\:}" >"$passfile"
fi
owner_connects() {
    PGPASSFILE=$passfile psql -X -q -t -A -w -h 127.0.0.1 -U "$OWNER_NAME" -d "$1" \
        -c 'SELECT 1' >/dev/null 2>&1
}

# Neither statement nor error goes to the server log: they carry the password.
readonly QUIET_LOG="SET log_statement = 'none'; SET log_min_error_statement = 'panic';"

# No OWNER_PASSWORD: the role exists with a password (the one its clients use) and keeps
# it; LOGIN is restored if it was taken away.
keep_password() {
    [[ -n $role ]] || fail $EXIT_VALIDATION "$NO_PASSWORD"
    local has_password
    has_password=$(admin_sql <<'SQL'
SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = :'owner';
SQL
)
    [[ $has_password == t ]] ||
        fail $EXIT_VALIDATION "owner_password is required: role $OWNER_NAME has no password"
    if [[ $role != login ]]; then
        admin_sql <<'SQL'
SELECT format('ALTER ROLE %I LOGIN', :'owner') \gexec
SQL
        log "changed: LOGIN for role $OWNER_NAME (its password unchanged)"
        CHANGED=1
    else
        log "unchanged: role $OWNER_NAME (its password kept: no OWNER_PASSWORD given)"
    fi
}

owner=$(admin_sql <<'SQL'
SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'database';
SQL
)
# An existing database of another role is never taken over (checked before any change).
if [[ -n $owner && $owner != "$OWNER_NAME" ]]; then
    fail $EXIT_CONFIG "database $DATABASE_NAME exists and belongs to $owner, not $OWNER_NAME"
fi

role=$(admin_sql <<'SQL'
SELECT CASE WHEN rolcanlogin THEN 'login' ELSE 'nologin' END FROM pg_roles WHERE rolname = :'owner';
SQL
)
if [[ -z $OWNER_PASSWORD ]]; then
    keep_password
elif [[ -z $role ]]; then
    admin_sql <<SQL
$QUIET_LOG
\getenv owner_password OWNER_PASSWORD
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'owner', :'owner_password') \gexec
SQL
    log "changed: created role $OWNER_NAME"
    CHANGED=1
elif [[ $role != login ]] || ! owner_connects postgres; then
    admin_sql <<SQL
$QUIET_LOG
\getenv owner_password OWNER_PASSWORD
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'owner', :'owner_password') \gexec
SQL
    log "changed: set the password (and LOGIN) of role $OWNER_NAME"
    CHANGED=1
else
    log "unchanged: role $OWNER_NAME"
fi

if [[ -z $owner ]]; then
    # Only its owner (and superusers) may connect to the new database.
    admin_sql <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner') \gexec
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', :'database') \gexec
SQL
    log "changed: created database $DATABASE_NAME owned by $OWNER_NAME"
    CHANGED=1
else
    log "unchanged: database $DATABASE_NAME"
fi

if [[ -n $OWNER_PASSWORD ]]; then
    owner_connects "$DATABASE_NAME" || fail $EXIT_CONFIG \
        "$OWNER_NAME cannot connect to $DATABASE_NAME over 127.0.0.1 (pg_hba.conf?)"
else
    log "not checked: $OWNER_NAME connecting (no OWNER_PASSWORD given)"
fi

if ((CHANGED)); then log "result: changed"; else log "result: unchanged"; fi

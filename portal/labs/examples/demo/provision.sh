#!/bin/bash
# Demo lab (manage.py seed_demo): safe on the developer's own machine.
# Usage: provision.sh USERNAME NAMESPACE
# Writes only sessions/NAMESPACE/ beside this script (seed_demo copies it into the portal's
# var/demo-lab/): no users, no sudo, nothing else on the machine. Exit 0 = ready.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 USERNAME NAMESPACE" >&2
    exit 2
fi
portal_user=$1
namespace=$2
if [[ ! $namespace =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]]; then
    echo "refusing namespace '$namespace'" >&2
    exit 2
fi
here=$(cd -- "$(dirname -- "$0")" && pwd)
dir="$here/sessions/$namespace"

mkdir -p -- "$dir"
printf 'Demo lab session %s of %s, started %s.\nTry: ls, cat, edit files here.\n' \
    "$namespace" "$portal_user" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dir/README"
echo "lab ready: $dir"

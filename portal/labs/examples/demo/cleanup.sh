#!/bin/bash
# Demo lab (manage.py seed_demo): cleanup.  Usage: cleanup.sh USERNAME NAMESPACE
# Removes sessions/NAMESPACE/ beside this script; running it twice is fine.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 USERNAME NAMESPACE" >&2
    exit 2
fi
namespace=$2
if [[ ! $namespace =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]]; then
    echo "refusing namespace '$namespace'" >&2
    exit 2
fi
here=$(cd -- "$(dirname -- "$0")" && pwd)

rm -rf -- "${here:?}/sessions/$namespace"
echo "lab removed: $namespace"

#!/bin/bash
# Example lab: cleanup.  Usage: cleanup.sh USERNAME NAMESPACE
# Removes what provision.sh created; running it twice is fine.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 USERNAME NAMESPACE" >&2
    exit 2
fi
namespace=$2
if [[ ! $namespace =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]]; then
    echo "refusing namespace '$namespace'" >&2
    exit 2
fi
root=${LAB_EXAMPLE_ROOT:-/srv/labs}

rm -rf -- "${root:?}/$namespace"
if id "$namespace" >/dev/null 2>&1; then
    pkill -KILL -u "$namespace" || true
    userdel --remove "$namespace" 2>/dev/null || userdel "$namespace"
fi
echo "lab removed: $namespace"

#!/bin/bash
# Example lab: provision.  Usage: provision.sh USERNAME NAMESPACE
# Creates a Linux user named after the namespace (always a valid Linux name) and the
# namespace's working directory. Exit 0 = ready; any other exit = failed.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 USERNAME NAMESPACE" >&2
    exit 2
fi
portal_user=$1
namespace=$2
if [[ ! $namespace =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]]; then
    echo "refusing namespace '$namespace'" >&2
    exit 2
fi
root=${LAB_EXAMPLE_ROOT:-/srv/labs}

if ! id "$namespace" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "lab session of $portal_user" "$namespace"
fi
install -d -m 0750 -o "$namespace" -g "$namespace" "$root/$namespace"
printf 'Lab session %s for %s\n' "$namespace" "$portal_user" > "$root/$namespace/README"
chown "$namespace:$namespace" "$root/$namespace/README"
echo "lab ready: user $namespace, directory $root/$namespace"

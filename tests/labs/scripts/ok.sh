#!/bin/bash
# Test lab script: records its arguments (one per line) under /tmp/portal-lab-tests/.
set -eu
mkdir -p /tmp/portal-lab-tests
printf '%s\n' "$@" > "/tmp/portal-lab-tests/$2.args"
echo "ready: $1 $2"

#!/bin/bash
# Test lab script: records its arguments (one per line) in args/ beside itself (the tests run
# a copy in their own temporary folder).
set -eu
args_dir="$(dirname "$0")/args"
mkdir -p "$args_dir"
printf '%s\n' "$@" > "$args_dir/$2.args"
echo "ready: $1 $2"

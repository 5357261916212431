#!/bin/bash
set -eu
rm -f "$(dirname "$0")/args/$2.args"
echo "removed $2"

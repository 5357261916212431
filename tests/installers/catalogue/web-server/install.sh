#!/usr/bin/env bash
# Test catalogue: never run; the unit tests only hash it.
set -euo pipefail
echo "install ${SERVER_NAME}"

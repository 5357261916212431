#!/bin/bash
set -eu
rm -f "/tmp/portal-lab-tests/$2.args"
echo "removed $2"

#!/usr/bin/env bash
set -euo pipefail
sleep 3601 &
setsid sleep 3602 &
echo "slow: started"
sleep 3600

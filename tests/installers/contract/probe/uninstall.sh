#!/usr/bin/env bash
set -euo pipefail
echo uninstall >>/var/lib/portal-probe/uninstalls 2>/dev/null || true
rm -f /var/lib/portal-probe/installed /var/lib/portal-probe/token.sha256
echo "probe: result: changed"

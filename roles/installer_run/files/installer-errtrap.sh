# shellcheck shell=bash
# Read by bash before an installer's script (BASH_ENV, set by installer-wrapper.sh): on a
# failing command (set -e), report its line and text; the portal shows it as the failing
# line. errtrace: also inside the script's functions and subshells.
unset BASH_ENV
set -o errtrace
trap 'printf "portal-installer: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

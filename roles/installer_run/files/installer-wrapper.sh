#!/bin/bash
# Runs one script of a catalogue installer for the portal (roles/installer_run, called by
# its installer_script module): exports the sensitive inputs from their 0600 file, so they
# never appear on a command line, then execs the script with bash, whose ERR trap
# (installer-errtrap.sh, read through BASH_ENV) reports the failing line and command.
# Usage: installer-wrapper.sh SECRETS_FILE SCRIPT   (run in the installer's directory)
set -euo pipefail
secrets_file=$1
script=$2
if [[ -f $secrets_file ]]; then
    set -a
    # shellcheck disable=SC1090 # the file the role wrote: export NAME='value' lines
    . "$secrets_file"
    set +a
fi
BASH_ENV="$(dirname "$0")/installer-errtrap.sh"
export BASH_ENV
exec /bin/bash "./$script"

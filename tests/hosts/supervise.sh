#!/bin/bash
# Runs one test host: systemd-nspawn, booted again whenever the host reboots (nspawn exits
# 133), as systemd-nspawn@.service would. No `set -e`: a failing nspawn must reach the
# exit-code check. SIGTERM powers the host off cleanly and ends the loop.
# usage: SUPERVISE_CGROUPS="dir..." supervise.sh systemd-nspawn ARGS...

# Without systemd on the machine, nspawn puts the container's cgroup below its own; each host
# needs its own directory or two hosts collide. Children inherit it.
for dir in $SUPERVISE_CGROUPS; do
    echo $$ > "$dir/cgroup.procs" || exit 97
done

stopping=0
child=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP

while :; do
    "$@" </dev/null &
    child=$!
    wait "$child"
    rc=$?
    # A trapped signal interrupts `wait`; wait again for nspawn's own exit code.
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        rc=$?
    done
    echo "supervise: systemd-nspawn exited $rc" >&2
    if [ "$stopping" = 1 ] || [ "$rc" != 133 ]; then
        exit "$rc"
    fi
done

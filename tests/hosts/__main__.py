"""python -m tests.hosts up [N] | down [RUN_ID...] [--all] | status | code-server | apt-repo
| reimage --run RUN --host NAME [--first-boot-url URL] | power --run RUN --host NAME on|off|state

See README.md."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time

from .apt_repo import build_apt_repo
from .code_server import code_server_artifact
from .containers import Host
from .harness import start_pool
from .machine import HarnessError
from .reimage import (
    host_lock,
    host_mac,
    host_of,
    host_pids,
    load_run,
    power_off,
    power_on,
    reimage_host,
)
from .state import all_runs, tear_down


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    try:
        return args.command(args)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.hosts", description=__doc__)
    commands = parser.add_subparsers(required=True)
    up_parser = commands.add_parser("up", help="boot hosts and leave them running")
    up_parser.add_argument("count", type=int, nargs="?", default=3)
    up_parser.add_argument(
        "--volumes",
        type=int,
        default=1,
        help="how many hosts (the first ones) get a btrfs /srv/workspaces",
    )
    up_parser.add_argument("--inventory", help="also write the inventory to this path")
    up_parser.set_defaults(command=up)
    down_parser = commands.add_parser("down", help="tear down runs left up by `up`")
    down_parser.add_argument("run_ids", nargs="*", help="only these runs (see status)")
    down_parser.add_argument(
        "--all", action="store_true", help="also runs owned by a live process (e.g. a hung pytest)"
    )
    down_parser.set_defaults(command=down)
    commands.add_parser("status", help="list runs and their hosts").set_defaults(command=status)
    code_server_parser = commands.add_parser(
        "code-server",
        help="build the air-gapped code-server tarball if it is not cached; print its path",
    )
    code_server_parser.add_argument(
        "--rebuild", action="store_true", help="build it again even when it is cached"
    )
    code_server_parser.set_defaults(command=code_server)
    apt_parser = commands.add_parser(
        "apt-repo",
        help="build the hosts' local apt repository if it is not cached; print its path",
    )
    apt_parser.add_argument(
        "--rebuild", action="store_true", help="build it again even when it is cached"
    )
    apt_parser.add_argument(
        "--extra-packages", nargs="*", default=(), help="the base image's extra packages"
    )
    apt_parser.set_defaults(command=apt_repo)
    reimage_parser = commands.add_parser(
        "reimage",
        help="re-image one host of a run (its disk back to the base) and boot it; prints "
        "timings and host0's MAC as JSON",
    )
    add_host_arguments(reimage_parser)
    reimage_parser.add_argument(
        "--first-boot-url",
        help="a first-boot unit fetches this (http/https; {mac} becomes host0's MAC) and runs "
        "it with sh",
    )
    reimage_parser.add_argument(
        "--keep-host-keys",
        action="store_true",
        help="keep the SSH host keys the host had (a real reinstall makes new ones)",
    )
    reimage_parser.add_argument("--timeout", type=float, default=90.0, help="boot until ready")
    reimage_parser.set_defaults(command=reimage)
    power_parser = commands.add_parser(
        "power", help="power one host of a run off or on (as its disk is), or print its state"
    )
    add_host_arguments(power_parser)
    power_parser.add_argument("action", choices=("on", "off", "state"))
    power_parser.set_defaults(command=power)
    return parser.parse_args(argv)


def add_host_arguments(parser):
    parser.add_argument("--run", required=True, help="the run's id (see status), e.g. n7")
    parser.add_argument("--host", required=True, help="the host's name, e.g. t7-host1")


def up(args):
    pool = start_pool(args.count, volumes=args.volumes)
    pool.detach()
    if args.inventory:
        shutil.copyfile(pool.inventory_path, args.inventory)
    print(pool.inventory_path.read_text())
    note = [
        f"run {pool.run_id} is up (base {pool.timings['base_source']}, "
        f"{pool.timings['total']} s); it stays up until `python -m tests.hosts down`",
        f"inventory:      {args.inventory or pool.inventory_path}",
        f"ANSIBLE_CONFIG={pool.ansible_cfg}",
        f"ssh:            ssh -i {pool.ssh_key_path} -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null root@{pool[0].address}",
    ]
    print("\n".join(note), file=sys.stderr)
    return 0


def down(args):
    runs = [r for r in all_runs() if wanted_for_down(r, args)]
    if not runs:
        print("no runs to tear down", file=sys.stderr)
    failed = 0
    for state in runs:
        try:
            tear_down(state)
        except HarnessError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def wanted_for_down(state, args):
    if args.run_ids:
        return state.run_id in args.run_ids
    return args.all or state.detached or state.is_orphaned()


def status(_args):
    runs = all_runs()
    if not runs:
        print("no test host runs")
    for state in runs:
        owner = "detached" if state.detached else f"owner pid {state.owner_pid}"
        if state.is_orphaned():
            owner += " (gone: orphaned, `down` removes it)"
        age = time.time() - state.created
        print(f"{state.run_id}: bridge {state.bridge}, {owner}, up {age:.0f} s, {state.run_dir}")
        for entry in state.hosts:
            print("  " + host_line(entry, state))
    return 0


def code_server(args):
    print(code_server_artifact(rebuild=args.rebuild))
    return 0


def apt_repo(args):
    print(build_apt_repo(args.extra_packages, rebuild=args.rebuild))
    return 0


def reimage(args):
    state = load_run(args.run)
    timings, _process = reimage_host(
        state,
        args.host,
        args.first_boot_url,
        keep_host_keys=args.keep_host_keys,
        ready_timeout=args.timeout,
    )
    mac = host_mac(host_of(state, args.host))
    print(json.dumps({"host": args.host, "mac": mac, "seconds": timings}))
    return 0


def power(args):
    state = load_run(args.run)
    host = host_of(state, args.host)
    if args.action == "state":
        print("on" if host_pids(state, host.name) else "off")
        return 0
    with host_lock(host):
        if args.action == "off":
            power_off(state, host)
        else:
            power_on(state, host)
    return 0


def host_line(entry, state):
    host = Host(
        entry["name"],
        entry["address"],
        state.run_dir / "ssh/id_ed25519",
        state.run_dir / "hosts" / entry["name"],
        entry["has_volume"],
    )
    ssh = "ssh answers" if host.port_open(22, timeout=0.3) else "ssh down"
    volume = " +btrfs /srv/workspaces" if host.has_volume else ""
    return f"{host.name} {host.address} {ssh}{volume}"


if __name__ == "__main__":
    sys.exit(main())

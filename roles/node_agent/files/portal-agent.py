#!/usr/bin/python3
"""Portal node agent: one heartbeat with the node's metrics every interval.

Standard library only (python3 is on every Debian node). Reads /proc/stat (cpu),
/proc/meminfo (memory), os.getloadavg() (load), /proc/uptime and statvfs() of the disk
path, and sends them with PUT {url}/api/nodes/{id}/heartbeat, authenticated with the token
read from the token file (0600) before every beat, so a rotated token is used at once.

The product version the node runs (a fleet VM's ``version``) is read from the version file
before every beat (the fleet's update playbook writes it) and sent as ``version``; no file,
an unreadable one or one that is not a version: no ``version`` field (the portal keeps what
it had).

Sequence numbers are milliseconds since the epoch, always above the last one sent (and
above the portal's last_seq after a 409), so they keep increasing across restarts and
reinstalls without a state file. A refused or failed beat is never retried: the next one
goes at the next tick.
"""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

VERSION = "1.0.0"
CONFIG = os.environ.get("PORTAL_AGENT_CONFIG", "/etc/portal-agent/agent.json")
GIB = 1024**3
PRODUCT_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,64}\Z")  # as the portal checks it


def log(message):
    print(message, file=sys.stderr, flush=True)


def cpu_times():
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])  # guest time is already counted in user


def cpu_percent(before, after):
    idle, total = after[0] - before[0], after[1] - before[1]
    return 0.0 if total <= 0 else max(0.0, min(100.0, 100.0 * (total - idle) / total))


def memory_percent():
    values = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0])
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable", values.get("MemFree", 0))
    return 0.0 if total <= 0 else max(0.0, min(100.0, 100.0 * (total - available) / total))


def disk(path):
    """Used percent as df counts it (blocks reserved for root excluded) and GiB used."""
    fs = os.statvfs(path)
    used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    usable = used + fs.f_bavail * fs.f_frsize
    return (0.0 if usable <= 0 else min(100.0, 100.0 * used / usable)), used / GIB


def uptime_seconds():
    with open("/proc/uptime") as uptime:
        return int(float(uptime.read().split()[0]))


def product_version(path):
    """The version file's first line, or None (no file, unreadable, not a version)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            value = handle.readline(256).strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        log(f"version not sent: {error}")
        return None
    if not PRODUCT_VERSION.match(value):
        log(f"version not sent: {path} holds no version (1-64 of A-Z a-z 0-9 . _ + -)")
        return None
    return value


def measure(config, cpu_before, cpu_after, seq):
    disk_percent, disk_used = disk(config.get("disk_path", "/"))
    body = {
        "cpu_percent": round(cpu_percent(cpu_before, cpu_after), 2),
        "memory_percent": round(memory_percent(), 2),
        "disk_percent": round(disk_percent, 2),
        "disk_used_gb": round(disk_used, 3),
        "load": [round(v, 2) for v in os.getloadavg()],
        "uptime_seconds": uptime_seconds(),
        "agent_version": VERSION,
        "interval_seconds": int(config["interval"]),
        "seq": seq,
    }
    version = product_version(config.get("version_file"))
    if version is not None:
        body["version"] = version
    return body


def send(config, body):
    """PUT the beat once. Returns the portal's last_seq on a 409, else None."""
    with open(config["token_file"]) as handle:
        token = handle.read().strip()
    url = f"{config['url'].rstrip('/')}/api/nodes/{int(config['node_id'])}/heartbeat"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the portal URL must be http(s): {config['url']!r}")
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": f"portal-agent/{VERSION}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=config.get("timeout", 10)) as answer:  # noqa: S310
            answer.read()
    except urllib.error.HTTPError as error:
        detail = error.read(2000).decode(errors="replace")
        log(f"heartbeat refused: HTTP {error.code} {detail}")
        if error.code == 409:
            try:
                return int(json.loads(detail).get("last_seq"))
            except (ValueError, TypeError, AttributeError):
                return None
    except (OSError, ValueError) as error:  # unreachable, timeout, TLS
        log(f"heartbeat not sent: {error}")
    return None


def main():
    with open(CONFIG) as handle:
        config = json.load(handle)
    interval = max(1, int(config["interval"]))
    last_seq = 0
    before = cpu_times()
    time.sleep(min(1.0, interval))
    log(f"portal-agent {VERSION}: node {config['node_id']} every {interval} s to {config['url']}")
    while True:
        started = time.monotonic()
        after = cpu_times()
        seq = max(last_seq + 1, time.time_ns() // 1_000_000)
        try:
            portal_seq = send(config, measure(config, before, after, seq))
        except OSError as error:  # the token file or /proc unreadable: say so, go on
            log(f"heartbeat not sent: {error}")
            portal_seq = None
        last_seq = max(seq, portal_seq or 0)
        before = after
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()

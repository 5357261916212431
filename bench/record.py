"""Record a real ansible-runner event stream for the ingest figure.

``python -m bench.record`` runs ``bench/playbooks/tasks50.yml`` on 20 local hosts through
ansible-runner (the same call shape as ``portal.jobs.runner``) and saves every event the
runner hands to its event handler, one JSON object per line, gzipped:
``bench/data/events.jsonl.gz``. The bench replays this file; it never needs re-recording
unless ansible-runner's event format changes.
"""

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.paths import EVENTS_FILE, PLAYBOOKS

HOSTS = 20


def static_inventory(hosts: int, python: str = "{{ ansible_playbook_python }}") -> str:
    """Local-connection hosts, as the portal's inventory builder writes them."""
    lines = ["all:", "  hosts:"]
    for i in range(1, hosts + 1):
        lines += [
            f"    bench-{i:02d}:",
            "      ansible_host: 127.0.0.1",
            "      ansible_connection: local",
            f"      ansible_python_interpreter: '{python}'",
        ]
    return "\n".join(lines) + "\n"


def record(out: Path = EVENTS_FILE, playbook: str = "tasks50.yml", hosts: int = HOSTS) -> int:
    import ansible_runner

    events: list[dict] = []

    def handler(event: dict) -> bool:
        events.append(event)
        return False

    work = Path(tempfile.mkdtemp(prefix="bench-record-"))
    try:
        (work / "inventory").mkdir()
        (work / "inventory" / "hosts.yml").write_text(static_inventory(hosts))
        (work / "ansible.cfg").write_text(
            "[defaults]\nhost_key_checking = False\nretry_files_enabled = False\n"
            f"interpreter_python = auto_silent\nforks = {hosts}\nlocal_tmp = {work / 'tmp'}\n"
        )
        result = ansible_runner.run(
            private_data_dir=str(work),
            playbook=str(PLAYBOOKS / playbook),
            inventory=str(work / "inventory" / "hosts.yml"),
            quiet=True,
            ident="run",
            envvars={
                "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_HOME": str(work / "ansible-home"),
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            },
            event_handler=handler,
            suppress_env_files=True,
            settings={"suppress_ansible_output": True, "pexpect_timeout": 0.2},
        )
        if result.status != "successful":
            raise SystemExit(f"recording run ended {result.status} (rc {result.rc})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event, sort_keys=True) + "\n")
    return len(events)


def load(path: Path = EVENTS_FILE) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.record", description=__doc__)
    parser.add_argument("--out", type=Path, default=EVENTS_FILE)
    args = parser.parse_args(argv)
    count = record(args.out)
    print(f"recorded {count} events into {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

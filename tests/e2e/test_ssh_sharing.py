"""Jobs to the same test host share one SSH master; a new window gets a new one; a
stopping worker makes the masters stop (portal/jobs/ssh.py)."""

import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import pytest

from portal.jobs import ssh
from tests.e2e.test_hosts_smoke import assert_succeeded, run_job
from tests.hosts.machine import pid_alive
from tests.waiting import wait_for

PLAYBOOK = "hostname.yml"


@pytest.fixture
def control_dir(settings):
    # Short: a control socket path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))
    settings.JOBS_CONTROL_DIR = str(directory)
    settings.JOB_SSH_SHARE_SECONDS = 300
    yield directory
    ssh.stop_masters(ssh.shared_dir(), how="exit")
    shutil.rmtree(directory, ignore_errors=True)


def masters(directory: Path) -> dict[str, int]:
    """socket name -> pid of the ssh master process serving it."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmdline.startswith("ssh: ") and str(directory) in cmdline and "[mux]" in cmdline:
            found[Path(cmdline.split()[1]).name] = int(entry.name)
    return found


def test_jobs_to_one_node_share_one_master(test_hosts, portal_nodes, transactional_db, control_dir):
    node = portal_nodes[0]
    now = time.time()  # both jobs in one window, even if the clock crosses into the next
    with mock.patch("portal.jobs.ssh.time.time", return_value=now):
        first = run_job([node], PLAYBOOK)
        assert_succeeded(first)
        shared = ssh.shared_dir()
        after_first = masters(shared)
        assert len(after_first) == 1 and next(iter(after_first)).startswith(f"n{node.pk}-")

        second = run_job([node], PLAYBOOK)
        assert_succeeded(second)
        assert masters(shared) == after_first  # the same master served the second job

    later = now + 2 * 300
    with mock.patch("portal.jobs.ssh.time.time", return_value=later):
        third = run_job([node], PLAYBOOK)
    assert_succeeded(third)
    assert len(masters(shared)) == 2  # a new window: a new master, the old one idles out

    pids = list(masters(shared).values())
    ssh.stop_shared_masters()  # what a stopping worker does
    wait_for(
        lambda: not any(pid_alive(pid) for pid in pids), 10, message="the shared masters to stop"
    )

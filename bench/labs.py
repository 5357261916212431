"""lab_assign_to_active_p50: from assigning the example lab to the session being ACTIVE.

One real systemd test host (tests/hosts, root and systemd-nspawn needed) is the lab server,
reached over SSH; the example lab (portal/labs/examples) is installed on it by a portal job.
Each assignment goes through ``actions.do_assign`` (what the admin action, the API and
``manage.py lab assign`` call); the stack's Celery worker runs the provisioning job; the
time is taken from the call to the moment the session row says ``active``. Median over
``assignments`` sequential assignments (at least 5, more while the figure's share of the
bench's time lasts).
"""

import time
from pathlib import Path

from bench import stats
from bench.context import wait_job

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "/opt/portal-labs/example"


def _lab_server(host, key_path):
    from portal.nodes.models import Credential, Node

    credential = Credential.objects.create(
        name=f"bench-lab-{host.name}", kind="ssh_key", secret=Path(key_path).read_text()
    )
    return Node.objects.create(
        name=f"bench-lab-{host.name}",
        address=host.address,
        ssh_port=host.ssh_port,
        ssh_user="root",
        purpose="lab_server",
        credential=credential,
    )


def _install_example(node):
    from portal.jobs import actions as jobs

    job = jobs.launch(
        playbook="lab_example_install.yml",
        nodes=[node],
        extra_vars={"lab_example_source_dir": str(ROOT / "portal" / "labs" / "examples")},
    )
    job = wait_job(job.pk, timeout=120)
    if job.status != "successful":
        raise RuntimeError(f"installing the example lab failed: {job.reason}")


def _wait_active(session_id: int, timeout: float) -> str:
    from portal.labs.models import LabSession

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = LabSession.objects.values_list("status", flat=True).get(pk=session_id)
        if status in ("active", "failed"):
            return status
        time.sleep(0.02)
    raise TimeoutError(f"lab session {session_id} not active after {timeout:.0f}s")


def measure(ctx, assignments: int = 10, minimum: int = 5) -> dict:
    from django.contrib.auth import get_user_model

    from portal.labs import actions
    from portal.labs.models import Lab
    from tests.hosts import boot_hosts, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"test hosts unavailable: {reason}")
    timings = []
    with boot_hosts(1) as pool:
        host = pool[0]
        node = _lab_server(host, pool.ssh_key_path)
        _install_example(node)
        lab = Lab.objects.create(
            name="bench-example",
            server=node,
            provision_script_path=f"{EXAMPLE}/provision.sh",
            cleanup_script_path=f"{EXAMPLE}/cleanup.sh",
        )
        for index in range(assignments):
            # one assignment now and, for the first five, a plain run of it afterwards
            seconds = 2 * timings[-1] / 1000 if timings else 10.0
            if not ctx.another(len(timings), minimum, seconds, "lab assign"):
                break
            user = get_user_model().objects.create_user(f"bench-lab-{index}", password=None)
            started = time.monotonic()
            session, _ = actions.do_assign(lab, user)
            if _wait_active(session.pk, timeout=60) != "active":
                raise RuntimeError(f"lab session {session.pk} failed: {session.last_error}")
            timings.append((time.monotonic() - started) * 1000)
        plain = _plain_runs(node, lab, runs=min(5, len(timings)))
    return {
        "figures": {"lab_assign_to_active_p50": (round(stats.median(timings), 1), "ms")},
        "details": {
            "lab_assign_to_active_p50": {
                "method": "do_assign -> session active (real worker, SSH to one nspawn test "
                "host, example lab); median over sequential assignments",
                "assignments": len(timings),
                "ms": stats.summary(timings),
                "plain_ansible_playbook_ms": stats.summary(plain),
                "plain_method": "the same lab_provision.yml, inventory, ansible.cfg and kind of "
                "extra vars run by plain ansible-playbook on the same host (a "
                "fresh namespace each): Ansible's own floor for this figure",
            }
        },
    }


def _plain_runs(node, lab, runs: int) -> list[float]:
    """Wall ms of plain ``ansible-playbook lab_provision.yml`` as the runner would start it."""
    from bench.overhead import Baseline

    timings = []
    for index in range(runs):
        baseline = Baseline(
            [node.name],
            playbook="lab_provision.yml",
            extra_vars={
                "lab_session_script": lab.provision_script_path,
                "lab_session_username": f"bench-plain-{index}",
                "lab_session_namespace": f"bench-plain-{index}",
            },
        )
        try:
            elapsed, _ = baseline.run()
        finally:
            baseline.close()
        timings.append(elapsed * 1000)
    return timings

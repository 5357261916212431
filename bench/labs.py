"""lab_assign_ratio: assigning the example lab until the session is ACTIVE, over plain
``ansible-playbook`` of the same lab playbook on the same host.

One real systemd test host (tests/hosts, root and systemd-nspawn needed) is the lab server,
reached over SSH; the example lab (portal/labs/examples) is installed on it by a portal job.
Each assignment goes through ``actions.do_assign`` (what the admin action, the API and
``manage.py lab assign`` call); the stack's Celery worker runs the provisioning job; the
time is taken from the call to the session's move to ``active`` (the row's ``updated_at``,
written by that move). The floor: the same ``lab_provision.yml`` with the same inventory,
``ansible.cfg`` and kind of extra vars (a fresh namespace each) run by plain
``ansible-playbook`` on the same host. Pairs alternate
(assignment plain, plain assignment, ...); the figure is the median of the per-pair ratios,
at least ``minimum`` pairs, more while the figure's share of the bench's time lasts. The
absolute median (``lab_assign_to_active_p50``) and the plain runs' times are details.
"""

import time
from pathlib import Path

from bench import phases as bench_phases
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


# The end is the row's own time of the move to active (``updated_at``, written by the move's
# UPDATE): a poll's period would be error on the portal's side only (the plain side is a
# process's exit), and a tight poll's queries would load the machine the run shares.
POLL_SECONDS = 0.05


def _wait_active(session_id: int, timeout: float) -> tuple[str, float]:
    """The session's status once it is active or failed, and the time it was written."""
    from portal.labs.models import LabSession

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, written = LabSession.objects.values_list("status", "updated_at").get(pk=session_id)
        if status in ("active", "failed"):
            return status, written.timestamp()
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"lab session {session_id} not active after {timeout:.0f}s")


def _assign_once(lab, index: int, phases: dict[str, list[float]]) -> float:
    from django.contrib.auth import get_user_model

    from portal.labs import actions

    user = get_user_model().objects.create_user(f"bench-lab-{index}", password=None)
    started = time.time()  # the worker's clock is the same machine's: its times compare
    session, _ = actions.do_assign(lab, user)
    status, active_at = _wait_active(session.pk, timeout=60)
    if status != "active":
        session.refresh_from_db()
        raise RuntimeError(f"lab session {session.pk} failed: {session.last_error}")
    bench_phases.add(phases, _provisioning_job(session), started, active_at)
    return (active_at - started) * 1000


def _provisioning_job(session):
    from django.contrib.contenttypes.models import ContentType

    from portal.jobs.models import Job

    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(session), target_id=str(session.pk)
    ).latest("created_at")


def pair_order(index: int) -> tuple[str, str]:
    """Pairs alternate their order so drift on the machine hits both sides alike."""
    return ("portal", "plain") if index % 2 == 0 else ("plain", "portal")


def measure(ctx, pairs: int = 15, minimum: int = 5) -> dict:
    from portal.labs.models import Lab
    from tests.hosts import boot_hosts, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"test hosts unavailable: {reason}")
    timings: list[float] = []
    plain: list[float] = []
    ratios: list[float] = []
    phases: dict[str, list[float]] = {}
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
        for index in range(pairs):
            seconds = (timings[-1] + plain[-1]) / 1000 * 1.5 if timings else 15.0
            if ctx.decided("lab_assign_ratio", ratios, minimum):
                break
            if not ctx.another(len(ratios), minimum, seconds, "lab assign"):
                break
            for side in pair_order(index):
                if side == "portal":
                    timings.append(_assign_once(lab, index, phases))
                else:
                    plain.append(_plain_run(node, lab, index))
            ratios.append(timings[-1] / plain[-1])
    return {
        "figures": {"lab_assign_ratio": (round(stats.median(ratios), 3), "x")},
        "details": {
            "lab_assign_ratio": {
                "method": "do_assign -> session active (real worker, SSH to one nspawn test "
                "host, example lab) over plain ansible-playbook of lab_provision.yml on the "
                "same host; pairs alternate; median of per-pair ratios",
                "pairs": len(ratios),
                "ratios": [round(r, 3) for r in ratios],
                **ctx.verdict_spread("lab_assign_ratio", ratios),
                "lab_assign_to_active_p50": stats.rounded(stats.median(timings), 1),
                "ms": stats.summary(timings),
                "plain_ansible_playbook_ms": stats.summary(plain),
                "portal_phases_median_ms": bench_phases.medians(phases),
                "plain_method": "the same lab_provision.yml, inventory, ansible.cfg and kind of "
                "extra vars run by plain ansible-playbook on the same host (a "
                "fresh namespace each): Ansible's own floor for this figure",
            }
        },
    }


def _plain_run(node, lab, index: int) -> float:
    """Wall ms of plain ``ansible-playbook lab_provision.yml`` as the runner would start it."""
    from bench.overhead import Baseline

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
    return elapsed * 1000

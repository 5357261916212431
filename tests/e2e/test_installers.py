"""Installers through the portal on a real host: the action, its job, the installer_run role
over SSH, the script under the contract, the result on the installation.

nginx (the repo's installer): installed, answers for its server name, a rerun changes
nothing, uninstall removes it. The contract (tests/installers/contract, copied per test):
exit 2 retried with growing delays then failed; exit 1 rejected, never retried; exit 3
needs an operator, whose retry with the fixed installer installs it; a run past
timeout_seconds ends as 124 with none of its processes left; a sensitive value reaches the
script and nowhere else (events, stored vars, the log, `ps`, files on the node); a hidden
input never reaches the script; a node below the requirements is refused by preflight.
Several nodes: one job installs on all of them and each reports its own result.
"""

from __future__ import annotations

import hashlib
import itertools
import shlex
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from portal.installers import actions, catalogue
from portal.installers.choices import InstallationStatus as S
from portal.installers.models import Installation
from portal.jobs import actions as jobs
from portal.jobs.models import Job, JobEvent
from tests.factories import UserFactory

CONTRACT = Path(__file__).resolve().parents[1] / "installers" / "contract"
RUNS_DIR = "/var/lib/portal-installer-runs"
PROBE_STATE = "/var/lib/portal-probe"
SECRET = "Sx9-kq2-vault-token-7731"  # the value a test looks for everywhere


@pytest.fixture
def node(scratch_host, transactional_db, settings, tmp_path, broker):
    """The module's own host (with the local apt repository) as a portal Node; jobs run
    here in the test (the broker is stubbed); a per-test copy of the contract catalogue."""
    from portal.nodes.actions import do_record_host_key
    from portal.nodes.models import Credential, Node

    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.INSTALLERS_RETRY_BASE_SECONDS = 1  # 1 s, 2 s: growing, and short
    settings.INSTALLERS_GENERATION_FILE = tmp_path / "installers.generation"
    shutil.copytree(CONTRACT, tmp_path / "catalogue")
    use_catalogue(settings, tmp_path / "catalogue")
    credential = Credential.objects.create(
        name="installers-e2e",
        kind="ssh_key",
        username="root",
        secret=Path(scratch_host.ssh_key_path).read_text(),
    )
    created = Node.objects.create(
        name=scratch_host.name,
        address=scratch_host.address,
        ssh_port=scratch_host.ssh_port,
        ssh_user="root",
        purpose="fleet_host",
        credential=credential,
    )
    do_record_host_key(created)
    scratch_host.run(f"rm -rf {PROBE_STATE} {RUNS_DIR}/probe {RUNS_DIR}/slow", check=True)
    yield created
    catalogue.mark_stale()


def use_catalogue(settings, directory):
    settings.INSTALLERS_DIR = directory
    catalogue.reload()


def run_jobs(max_jobs: int = 10) -> list[Job]:
    """Act as the worker: run every pending job (retries when their not_before comes)."""
    ran = []
    while len(ran) < max_jobs:
        job = Job.objects.filter(status__in=["pending", "dispatched"]).order_by("id").first()
        if job is None:
            return ran
        if job.not_before and job.not_before > timezone.now():
            time.sleep((job.not_before - timezone.now()).total_seconds())
        jobs.execute(job.pk, job.signature, worker="e2e")
        job.refresh_from_db()
        ran.append(job)
    raise AssertionError(f"more than {max_jobs} jobs")


def install(node, installer_id, data, **options) -> Installation:
    launched = actions.do_install([node], installer_id, data, by=UserFactory(), **options)
    run_jobs()
    return Installation.objects.get(pk=launched.installations[0].pk)


def job_output(job: Job) -> str:
    return "\n".join(job.events.order_by("counter").values_list("stdout", flat=True))


def described(installation: Installation) -> str:
    job = installation.current_job
    return f"{installation.status}: {installation.reason}\n{installation.log_tail}\n" + (
        job_output(job)[-3000:] if job else ""
    )


def runs_on_node(host) -> int:
    found = host.run(f"cat {PROBE_STATE}/runs 2>/dev/null | wc -l")
    return int(found.stdout.strip() or 0)


# --- nginx, the repo's installer ------------------------------------------------------------


def test_nginx_answers_for_its_name_a_rerun_changes_nothing_and_uninstall_removes_it(
    node, scratch_host, settings
):
    use_catalogue(settings, Path(django_settings.BASE_DIR) / "installers")
    name = "shop.example.test"
    installation = install(node, "nginx", {"server_name": name})
    assert installation.status == S.INSTALLED, described(installation)
    assert installation.exit_code == 0 and "result: changed" in installation.log_tail
    page = scratch_host.run(["curl", "-sS", "-H", f"Host: {name}", "http://127.0.0.1/"])
    assert f"<title>{name}</title>" in page.stdout, page.stdout + page.stderr
    job = installation.current_job
    assert job.extra_vars["installer_run_sha256"] == catalogue.get("nginx").sha256

    actions.do_reinstall(installation)
    run_jobs()
    installation.refresh_from_db()
    assert installation.status == S.INSTALLED, described(installation)
    assert installation.reason == "exit 0 (unchanged)"
    rerun = installation.current_job
    assert rerun.pk != job.pk and rerun.status == "successful"
    changed = rerun.events.filter(changed=True).values_list("task", flat=True)
    assert list(changed) == [], "a rerun changed: " + ", ".join(changed)

    actions.do_uninstall(installation)
    run_jobs()
    installation.refresh_from_db()
    assert installation.status == S.UNINSTALLED, described(installation)
    gone = scratch_host.run(["curl", "-sS", "-H", f"Host: {name}", "http://127.0.0.1/"])
    assert gone.returncode != 0  # nginx itself is gone (this installer installed it)
    assert "ok installed" not in scratch_host.run("dpkg-query -W -f='${Status}' nginx").stdout
    assert scratch_host.run(f"test -e {RUNS_DIR}/nginx").returncode == 1


# --- the exit-code contract -----------------------------------------------------------------


def test_exit_2_is_retried_twice_with_growing_delays_then_failed(node, scratch_host):
    installation = install(node, "probe", {"outcome": "install"})
    assert installation.status == S.FAILED, described(installation)
    chain = list(Job.objects.order_by("id"))
    assert [job.attempt for job in chain] == [1, 2, 3]
    assert [job.limit for job in chain[1:]] == [node.name, node.name]
    delays = [
        (later.not_before - earlier.finished_at).total_seconds()
        for earlier, later in itertools.pairwise(chain)
    ]
    assert delays[0] < delays[1], delays
    assert runs_on_node(scratch_host) == 3
    uninstalls = scratch_host.run(f"wc -l < {PROBE_STATE}/uninstalls").stdout.strip()
    assert uninstalls == "3"  # each failed attempt was undone (keep_on_failure is off)
    assert installation.exit_code == 2 and installation.attempts == 3
    assert installation.reason.startswith("exit 2 (installation error, after 3 attempt(s))")
    # The ERR trap's report: the script's line that failed (the call of the function that
    # returned 2) and the last command bash ran.
    script = (CONTRACT / "probe" / "install.sh").read_text().splitlines()
    line = next(n for n, text in enumerate(script, 1) if text.strip() == "fetch_packages")
    assert installation.failing_line == f"line {line}: return 2"
    assert list(installation.jobs.order_by("id")) == chain


def test_exit_1_is_rejected_and_never_retried(node, scratch_host):
    installation = install(node, "probe", {"outcome": "validation"})
    assert installation.status == S.REJECTED, described(installation)
    assert "OUTCOME=validation is refused" in installation.failing_line, described(installation)
    assert Job.objects.count() == 1 and runs_on_node(scratch_host) == 1
    assert scratch_host.run(f"test -e {PROBE_STATE}/uninstalls").returncode == 1  # no undo


def test_exit_3_needs_an_operator_whose_retry_with_the_fixed_installer_installs(
    node, scratch_host, settings
):
    installation = install(node, "probe", {"outcome": "config"}, keep_on_failure=True)
    assert installation.status == S.NEEDS_OPERATOR, described(installation)
    assert installation.failing_line == "probe: error: the configuration check failed"
    assert Job.objects.count() == 1
    # keep_on_failure: no uninstall, and the log stays (0600) for the operator
    assert scratch_host.run(f"test -e {PROBE_STATE}/uninstalls").returncode == 1
    log = scratch_host.run(f"stat -c %a {RUNS_DIR}/probe/run.log", check=True).stdout
    assert log.strip() == "600"

    script = Path(settings.INSTALLERS_DIR) / "probe" / "install.sh"
    script.write_text(script.read_text().replace("    exit 3\n", "    echo fixed\n"))
    catalogue.announce_reload()  # what `manage.py installers reload` does
    fixed_sha = catalogue.get("probe").sha256
    assert fixed_sha != installation.manifest_sha256

    actions.do_retry(installation, by=UserFactory())
    run_jobs()
    installation.refresh_from_db()
    assert installation.status == S.INSTALLED, described(installation)
    assert installation.manifest_sha256 == fixed_sha
    assert installation.current_job.extra_vars["installer_run_sha256"] == fixed_sha
    statuses = list(installation.history.order_by("id").values_list("status", flat=True))
    assert statuses == [S.INSTALLING, S.NEEDS_OPERATOR, S.INSTALLING, S.INSTALLED]


def test_a_run_past_its_timeout_is_124_and_leaves_no_process(node, scratch_host):
    installation = install(node, "slow", {})
    assert installation.status == S.FAILED, described(installation)
    assert installation.exit_code == 124
    assert installation.reason.startswith("exit 124 (timed out)")
    assert "slow: started" in installation.log_tail
    left = scratch_host.run("pgrep -af 'sleep 360[0-2]'")
    assert left.returncode == 1, f"left running on the node:\n{left.stdout}"
    assert Job.objects.count() == 1  # 124 is not retried


def test_a_preflight_refusal_is_rejected_with_the_reason_and_nothing_runs(
    node, scratch_host, settings
):
    manifest = Path(settings.INSTALLERS_DIR) / "probe" / "manifest.yml"
    manifest.write_text(manifest.read_text().replace("min_ram_mb: 16", "min_ram_mb: 99999999"))
    catalogue.reload()
    installation = install(node, "probe", {"outcome": "ok"})
    assert installation.status == S.REJECTED, described(installation)
    assert installation.reason.startswith("refused by preflight: "), installation.reason
    assert "99999999 MB needed" in installation.reason
    assert runs_on_node(scratch_host) == 0 and Job.objects.count() == 1


# --- sensitive and hidden inputs ----------------------------------------------------------


def test_a_sensitive_value_reaches_the_script_and_nothing_else_a_hidden_input_never_does(
    node, scratch_host
):
    # Sample every process's command line on the node while the script runs (it pauses).
    sampler = (
        "rm -f /root/ps-samples.stop; for i in $(seq 1 3000); do "
        "[ -e /root/ps-samples.stop ] && break; ps -eo pid,args; "
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done; "
        "sleep 0.1; done > /root/ps-samples 2>/dev/null"
    )
    scratch_host.run(f"nohup sh -c {shlex.quote(sampler)} >/dev/null 2>&1 &", check=True)
    data = {
        "outcome": "ok",
        "secret_token": SECRET,
        "pause_seconds": 4,
        "show_note": False,
        "hidden_note": "HIDDEN-NOTE-VALUE",
    }
    installation = install(node, "probe", data)
    assert installation.status == S.INSTALLED, described(installation)

    # It reached the script: the script kept its hash.
    kept = scratch_host.run(f"cat {PROBE_STATE}/token.sha256", check=True).stdout.strip()
    assert kept == hashlib.sha256(SECRET.encode()).hexdigest()
    # The hidden input did not: the script logged its environment's names.
    names_line = next(
        line for line in installation.log_tail.splitlines() if "environment names:" in line
    )
    names = set(names_line.split(":", 2)[2].split())
    assert {"OUTCOME", "SECRET_TOKEN", "PAUSE_SECONDS", "SHOW_NOTE"} <= names
    assert {"DEBIAN_FRONTEND", "PROVISIONING_JOB"} <= names
    assert "HIDDEN_NOTE" not in names

    # Nowhere else: events, the job's stored vars (secrets forgotten), the installation.
    job = installation.current_job
    for event in JobEvent.objects.filter(job=job):
        assert SECRET not in event.stdout and SECRET not in str(event.event_data), event.task
    assert SECRET not in str(job.extra_vars) and job.secret_vars == ""
    stored = Installation.objects.filter(pk=installation.pk).values().get()
    assert SECRET not in str(stored) and "HIDDEN-NOTE-VALUE" not in str(stored)
    # Not on a command line while it ran (the samples did see the script running).
    stop = "touch /root/ps-samples.stop; sleep 1; cat /root/ps-samples"
    samples = scratch_host.run(stop).stdout
    scratch_host.run("rm -f /root/ps-samples /root/ps-samples.stop", check=True)
    assert "/bin/bash ./install.sh" in samples and "sleep 4" in samples  # seen running
    assert SECRET not in samples
    # No file left on the node holds it (the secrets file is gone, the log was deleted).
    for where in (RUNS_DIR, PROBE_STATE, "/root", "/tmp", "/var/tmp", "/run", "/etc", "/var/log"):
        found = scratch_host.run(f"grep -rlF -D skip {SECRET} {where}")
        assert found.returncode == 1, f"{SECRET} left in {found.stdout}"
    assert scratch_host.run(f"ls -A {RUNS_DIR}/probe").stdout.split() == [
        job.extra_vars["installer_run_sha256"]
    ]


# --- several nodes, one job ------------------------------------------------------------------


def test_one_job_installs_on_several_nodes_and_reports_each(
    test_hosts, portal_nodes, transactional_db, settings, tmp_path, broker
):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    use_catalogue(settings, CONTRACT)
    for host in test_hosts:
        host.run(f"rm -rf {PROBE_STATE} {RUNS_DIR}/probe", check=True)
    launched = actions.do_install(portal_nodes, "probe", {"outcome": "ok"}, by=UserFactory())
    ran = run_jobs()
    assert ran == [launched.job] and launched.job.nodes.count() == len(portal_nodes)
    for installation in Installation.objects.filter(pk__in=[i.pk for i in launched.installations]):
        assert installation.status == S.INSTALLED, described(installation)
        assert "probe: result: changed" in installation.log_tail
    for host in test_hosts:
        assert runs_on_node(host) == 1
        host.run(f"rm -rf {PROBE_STATE} {RUNS_DIR}", check=True)  # the pool is shared
    catalogue.mark_stale()


# --- upgrade, a failing uninstall, the API ----------------------------------------------------


def new_version(settings, version: str, script_line: str) -> None:
    """The catalogue's probe becomes ``version``; its install.sh also runs ``script_line``."""
    directory = Path(settings.INSTALLERS_DIR) / "probe"
    manifest = directory / "manifest.yml"
    manifest.write_text(manifest.read_text().replace('version: "1.0"', f'version: "{version}"'))
    script = directory / "install.sh"
    script.write_text(script.read_text().replace("sleep ", f"{script_line}\nsleep ", 1))
    catalogue.announce_reload()


def test_upgrade_runs_the_new_version_and_a_failing_uninstall_is_failed_then_retried(
    node, scratch_host, settings
):
    installation = install(node, "probe", {"outcome": "ok"})
    assert installation.status == S.INSTALLED, described(installation)
    new_version(settings, "1.1", f'echo 1.1 >"{PROBE_STATE}/version"')
    actions.do_upgrade(installation, by=UserFactory())
    run_jobs()
    installation.refresh_from_db()
    assert installation.status == S.INSTALLED, described(installation)
    assert installation.version == "1.1"
    assert scratch_host.run(f"cat {PROBE_STATE}/version", check=True).stdout.strip() == "1.1"
    assert runs_on_node(scratch_host) == 2

    uninstall = Path(settings.INSTALLERS_DIR) / "probe" / "uninstall.sh"
    working = uninstall.read_text()
    uninstall.write_text(working.replace("set -euo pipefail\n", "set -euo pipefail\nexit 3\n"))
    catalogue.announce_reload()
    actions.do_uninstall(installation, by=UserFactory())
    run_jobs()
    installation.refresh_from_db()
    assert installation.status == S.FAILED, described(installation)
    assert installation.reason.startswith("uninstall exit 3 (configuration error)")
    assert scratch_host.run(f"test -e {PROBE_STATE}/installed").returncode == 0  # still there

    uninstall.write_text(working)
    catalogue.announce_reload()
    actions.do_uninstall(installation, by=UserFactory())
    run_jobs()
    installation.refresh_from_db()
    assert installation.status == S.UNINSTALLED, described(installation)
    assert scratch_host.run(f"test -e {PROBE_STATE}/installed").returncode == 1


def test_the_api_installs_reinstalls_and_uninstalls_on_the_node(node, scratch_host, api):
    from tests.factories import AdminFactory

    operator = AdminFactory(username="api-operator")
    operator.set_password("an-operator-passphrase-7")
    operator.save()
    login = api.post(
        "/api/auth/token/", {"username": "api-operator", "password": "an-operator-passphrase-7"}
    )
    assert login.status_code == 200, login.content
    api.credentials(HTTP_AUTHORIZATION=f"Token {login.json()['token']}")
    bad = api.post(
        "/api/installations/",
        {"installer": "probe", "nodes": [node.pk], "inputs": {"outcome": "maybe"}},
        format="json",
    )
    assert bad.status_code == 400 and "outcome" in str(bad.json()) and not Job.objects.exists()
    body = {"installer": "probe", "nodes": [node.pk], "inputs": {"outcome": "ok"}}
    created = api.post("/api/installations/", body, format="json")
    assert created.status_code == 202, created.content
    installation_id = created.json()["installations"][0]["id"]
    run_jobs()
    detail = api.get(f"/api/installations/{installation_id}/").json()
    assert (detail["status"], detail["exit_code"]) == ("installed", 0), detail
    assert scratch_host.run(f"test -e {PROBE_STATE}/installed").returncode == 0

    again = api.post(f"/api/installations/{installation_id}/reinstall/", {}, format="json")
    assert again.status_code == 202, again.content
    run_jobs()
    detail = api.get(f"/api/installations/{installation_id}/").json()
    assert detail["status"] == "installed" and "unchanged" in detail["reason"], detail
    removed = api.post(f"/api/installations/{installation_id}/uninstall/", {}, format="json")
    assert removed.status_code == 202, removed.content
    run_jobs()
    assert api.get(f"/api/installations/{installation_id}/").json()["status"] == "uninstalled"
    assert scratch_host.run(f"test -e {PROBE_STATE}/installed").returncode == 1

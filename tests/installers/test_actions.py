"""The installers' actions: rows and one job per request, the job's variables (no secret in
the stored ones), checks before anything is written, and the exit-code contract applied to
what the role reports (0/1/2/3/124/unreachable, the engine's retries and their delays)."""

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from portal.core.errors import Conflict, NotFound
from portal.installers import actions, catalogue
from portal.installers.choices import InstallationStatus as S
from portal.installers.inputs import InputsInvalid
from portal.installers.models import Installation, InstallationEvent
from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from tests.factories import NodeFactory, UserFactory
from tests.helpers import stubbed_broker
from tests.installers.conftest import CATALOGUE

pytestmark = pytest.mark.django_db
CONTRACT = Path(__file__).resolve().parent / "contract"
TOKEN = "tok-3f1b9a77c2"


@pytest.fixture(autouse=True)
def contract_catalogue(settings, test_catalogue):
    settings.INSTALLERS_DIR = CONTRACT
    settings.INSTALLERS_RETRY_ATTEMPTS = 3
    settings.INSTALLERS_RETRY_BASE_SECONDS = 10
    catalogue.reload()


def install(nodes=None, **data):
    data.setdefault("outcome", "ok")
    with stubbed_broker():
        return actions.do_install(nodes or [NodeFactory()], "probe", data, by=UserFactory())


# --- install: rows, job, variables ---------------------------------------------------------


def test_install_creates_the_rows_and_one_job_with_the_contract_variables():
    nodes = [NodeFactory(name="web-1"), NodeFactory(name="web-2")]
    launched = install(nodes, secret_token=TOKEN, show_note=True, hidden_note="hi")
    job = launched.job
    assert [i.node for i in launched.installations] == nodes
    assert set(job.nodes.all()) == set(nodes) and job.playbook == "installer_run.yml"
    manifest = catalogue.get("probe")
    for installation in launched.installations:
        assert installation.status == S.INSTALLING and installation.current_job == job
        assert list(installation.jobs.all()) == [job]
        assert (installation.version, installation.manifest_sha256) == ("1.0", manifest.sha256)
        assert installation.inputs == {
            "outcome": "ok",
            "pause_seconds": 0,
            "show_note": True,
            "hidden_note": "hi",
        }
        history = list(InstallationEvent.objects.filter(installation=installation))
        assert [(e.from_status, e.status, e.job) for e in history] == [
            (S.PENDING, S.INSTALLING, job)
        ]
    variables = job.extra_vars
    assert variables["installer_run_sha256"] == manifest.sha256
    assert variables["installer_run_version"] == "1.0"
    assert variables["installer_run_source"] == str(CONTRACT / "probe")
    assert variables["installer_run_environment"] == {
        "OUTCOME": "ok",
        "PAUSE_SECONDS": "0",
        "SHOW_NOTE": "true",
        "HIDDEN_NOTE": "hi",
        "DEBIAN_FRONTEND": "noninteractive",
        "PROVISIONING_JOB": "true",
    }
    assert TOKEN not in str(job.extra_vars) and TOKEN not in str(job.signature)
    assert job.secrets() == {"installer_run_secrets": {"SECRET_TOKEN": TOKEN}}
    assert "installer_run_secrets" in job.sensitive_names
    assert all(TOKEN not in str(i.inputs) for i in Installation.objects.all())


def test_a_hidden_input_is_neither_stored_nor_passed():
    launched = install(show_note=False, hidden_note="never")
    assert "hidden_note" not in launched.installations[0].inputs
    assert "HIDDEN_NOTE" not in launched.job.extra_vars["installer_run_environment"]
    assert "never" not in str(launched.job.extra_vars)


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"outcome": "explode"}, "outcome", "allowed_values"),
        ({}, "outcome", "required"),
        ({"outcome": "ok", "pause_seconds": 99}, "pause_seconds", "max_value"),
        ({"outcome": "ok", "pause_seconds": "x"}, "pause_seconds", "type"),
        ({"outcome": "ok", "rm_rf": "/"}, "rm_rf", "unknown"),
    ],
)
def test_bad_inputs_are_refused_before_any_row_or_job(data, field, rule):
    with pytest.raises(InputsInvalid) as refused, stubbed_broker():
        actions.do_install([NodeFactory()], "probe", data)
    assert refused.value.field == field and refused.value.code == rule
    assert refused.value.status_code == 400
    assert not Installation.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("installer_id", ["nope", "../probe", "probe/../slow", None, 7])
def test_an_installer_not_in_the_catalogue_is_404_before_anything(installer_id):
    with pytest.raises(NotFound), stubbed_broker():
        actions.do_install([NodeFactory()], installer_id, {"outcome": "ok"})
    assert not Installation.objects.exists() and not Job.objects.exists()


def test_one_live_installation_per_node_and_installer():
    node = NodeFactory()
    install([node])
    with pytest.raises(Conflict) as refused:
        install([node, NodeFactory()])
    assert refused.value.code == "already_installed"
    assert Installation.objects.count() == 1 and Job.objects.count() == 1


def test_no_nodes_or_a_node_twice_is_refused():
    node = NodeFactory()
    for nodes in ([], [node, node]):
        with pytest.raises(Exception) as refused, stubbed_broker():
            actions.do_install(nodes, "probe", {"outcome": "ok"})
        assert refused.value.field == "nodes"
    assert not Job.objects.exists()


# --- the contract: what a finished job does ------------------------------------------------


def report(job, host_results, summary, status=JobStatus.FAILED):
    """Pretend the job ran: its stats event carries the role's per-host results."""
    Job.objects.filter(pk=job.pk).update(
        status=status, host_summary=summary, finished_at=timezone.now()
    )
    JobEvent.objects.create(
        job=job,
        counter=1,
        event="playbook_on_stats",
        created=timezone.now(),
        event_data={"artifact_data": {"installer_run_results": host_results}},
    )
    job.refresh_from_db()
    with stubbed_broker():
        return jobs.finalize(job)


def script(rc, **more):
    return {"stage": "install", "rc": rc, "tail": "a\nb", "failing_line": f"exit {rc}", **more}


@pytest.mark.parametrize(
    ("rc", "status", "reason"),
    [
        (0, S.INSTALLED, "exit 0"),
        (1, S.REJECTED, "exit 1 (validation error): exit 1"),
        (3, S.NEEDS_OPERATOR, "exit 3 (configuration error): exit 3"),
        (124, S.FAILED, "exit 124 (timed out): exit 124"),
        (7, S.FAILED, "exit 7 (failed): exit 7"),
    ],
)
def test_exit_codes_that_are_never_retried(rc, status, reason):
    launched = install([NodeFactory(name="n-1")])
    failed = {"n-1": {"failures": 1}} if rc else {"n-1": {"ok": 5}}
    retry = report(
        launched.job, {"n-1": script(rc)}, failed, JobStatus.FAILED if rc else "successful"
    )
    assert retry is None and Job.objects.count() == 1
    installation = Installation.objects.get()
    assert (installation.status, installation.reason) == (status, reason)
    assert (installation.exit_code, installation.log_tail) == (rc, "a\nb")
    assert installation.failing_line == f"exit {rc}"
    assert installation.history.first().job == launched.job


def test_a_preflight_refusal_is_rejected_with_its_reason_and_not_retried():
    launched = install([NodeFactory(name="n-1")])
    refusal = {"stage": "preflight", "rc": None, "reason": "OS centos is not one of debian"}
    assert report(launched.job, {"n-1": refusal}, {"n-1": {"failures": 1}}) is None
    installation = Installation.objects.get()
    assert installation.status == S.REJECTED
    assert installation.reason == "refused by preflight: OS centos is not one of debian"


@pytest.mark.parametrize("cause", ["exit 2", "unreachable"])
def test_exit_2_and_unreachable_are_retried_10_then_20_seconds_later_then_failed(cause):
    launched = install([NodeFactory(name="n-1")], secret_token=TOKEN)
    job, delays = launched.job, []
    for attempt in (1, 2, 3):
        assert job.attempt == attempt
        if cause == "exit 2":
            retry = report(job, {"n-1": script(2)}, {"n-1": {"failures": 1}})
        else:
            retry = report(job, {}, {"n-1": {"unreachable": 1}})
        job.refresh_from_db()
        assert job.secret_vars == ""  # forgotten: the retry (if any) carries its own copy
        installation = Installation.objects.get()
        if attempt < 3:
            assert retry.limit == "n-1" and retry.retry_of == job
            assert retry.secrets() == {"installer_run_secrets": {"SECRET_TOKEN": TOKEN}}
            delays.append(round((retry.not_before - job.finished_at).total_seconds()))
            assert installation.status == S.INSTALLING
            assert installation.current_job == retry
            assert f"(attempt {attempt + 1} of 3)" in installation.reason
            job = retry
        else:
            assert retry is None
    assert delays == [10, 20]
    assert installation.status == S.FAILED
    expected = (
        "exit 2 (installation error, after 3 attempt(s)): exit 2"
        if cause == "exit 2"
        else "node unreachable after 3 attempt(s)"
    )
    assert installation.reason == expected
    assert installation.jobs.count() == 3
    assert not any(j.secret_vars for j in Job.objects.all())


def test_one_job_on_several_nodes_retries_only_the_nodes_that_asked():
    nodes = [NodeFactory(name=name) for name in ("n-1", "n-2", "n-3", "n-4")]
    launched = install(nodes)
    retry = report(
        launched.job,
        {"n-1": script(0), "n-2": script(2), "n-3": script(3)},
        {
            "n-1": {"ok": 5},
            "n-2": {"failures": 1},
            "n-3": {"failures": 1},
            "n-4": {"unreachable": 1},
        },
    )
    assert retry.limit == "n-2,n-4" and retry.attempt == 2
    statuses = dict(Installation.objects.values_list("node__name", "status"))
    assert statuses == {
        "n-1": S.INSTALLED,
        "n-2": S.INSTALLING,
        "n-3": S.NEEDS_OPERATOR,
        "n-4": S.INSTALLING,
    }
    assert (
        report(retry, {"n-2": script(0)}, {"n-2": {"ok": 3}, "n-4": {"ok": 3}}, "successful")
        is None
    )
    statuses = dict(Installation.objects.values_list("node__name", "status"))
    assert statuses["n-2"] == S.INSTALLED
    assert statuses["n-4"] == S.FAILED  # reached, yet reported nothing: not installed


def test_a_job_that_never_reported_fails_its_installations_with_the_job_reason():
    launched = install([NodeFactory(name="n-1")])
    Job.objects.filter(pk=launched.job.pk).update(status=JobStatus.LOST, reason="worker died")
    launched.job.refresh_from_db()
    with stubbed_broker():
        jobs.finalize(launched.job)
    installation = Installation.objects.get()
    assert installation.status == S.FAILED and "worker died" in installation.reason


# --- later runs -------------------------------------------------------------------------------


def finished(launched, rc):
    summary = {launched.installations[0].node.name: {"failures": 1} if rc else {"ok": 1}}
    report(launched.job, {launched.installations[0].node.name: script(rc)}, summary)
    return Installation.objects.get(pk=launched.installations[0].pk)


def test_an_operator_retry_moves_needs_operator_back_to_installing_with_a_new_job():
    installation = finished(install(secret_token=TOKEN), 3)
    assert installation.status == S.NEEDS_OPERATOR
    with stubbed_broker():
        again = actions.do_retry(installation, by=UserFactory())
    installation.refresh_from_db()
    assert installation.status == S.INSTALLING and installation.current_job == again.job
    assert again.job.extra_vars["installer_run_environment"]["OUTCOME"] == "ok"
    assert again.job.secrets() == {}  # the first run's secrets are gone: given anew or none
    with stubbed_broker():
        given = actions.do_retry(finished(again, 3), {"secret_token": "new-one"})
    assert given.job.secrets() == {"installer_run_secrets": {"SECRET_TOKEN": "new-one"}}


def test_later_runs_keep_a_generated_password_unless_one_is_given(settings, tmp_path):
    """A reinstall, a retry or an upgrade not given the generated password passes none: the
    script keeps the one it set (another one would change it under every client)."""
    copy = tmp_path / "catalogue" / "web-server"
    shutil.copytree(CATALOGUE / "web-server", copy)
    settings.INSTALLERS_DIR = copy.parent
    catalogue.reload()
    with stubbed_broker():
        first = actions.do_install([NodeFactory()], "web-server", {"server_name": "example.org"})
    password = first.generated["admin_password"]
    assert first.job.secrets() == {"installer_run_secrets": {"ADMIN_PASSWORD": password}}

    with stubbed_broker():
        reinstall = actions.do_reinstall(finished(first, 0))
    assert (reinstall.generated, reinstall.job.secrets()) == ({}, {})
    assert "ADMIN_PASSWORD" not in reinstall.job.extra_vars["installer_run_environment"]
    with stubbed_broker():
        retry = actions.do_retry(finished(reinstall, 3))
    assert (retry.generated, retry.job.secrets()) == ({}, {})
    with stubbed_broker():
        rotated = actions.do_retry(finished(retry, 3), {"admin_password": "rotated on purpose"})
    assert rotated.generated == {}
    assert rotated.job.secrets() == {
        "installer_run_secrets": {"ADMIN_PASSWORD": "rotated on purpose"}
    }
    manifest = copy / "manifest.yml"
    manifest.write_text(manifest.read_text().replace('"1.2.0"', '"1.3.0"'))
    catalogue.reload()
    with stubbed_broker():
        upgrade = actions.do_upgrade(finished(rotated, 0))
    assert upgrade.job.extra_vars["installer_run_version"] == "1.3.0"
    assert (upgrade.generated, upgrade.job.secrets()) == ({}, {})
    installation = Installation.objects.get()
    assert "admin_password" not in installation.inputs
    assert Job.objects.count() == 5


def test_retry_reinstall_upgrade_and_uninstall_only_from_their_statuses():
    installation = finished(install(), 0)
    with pytest.raises(Conflict), stubbed_broker():
        actions.do_retry(installation)
    with pytest.raises(Conflict) as up_to_date, stubbed_broker():
        actions.do_upgrade(installation)
    assert up_to_date.value.code == "up_to_date"
    with stubbed_broker():
        reinstall = actions.do_reinstall(installation, {"pause_seconds": 2})
    installation.refresh_from_db()
    assert installation.status == S.INSTALLING and installation.inputs["pause_seconds"] == 2
    with pytest.raises(InputsInvalid), stubbed_broker():
        actions.do_reinstall(finished(reinstall, 0), {"outcome": "explode"})
    installation.refresh_from_db()
    assert installation.status == S.INSTALLED and installation.inputs["outcome"] == "ok"
    with stubbed_broker():
        removal = actions.do_uninstall(installation)
    installation.refresh_from_db()
    assert installation.status == S.UNINSTALLING
    assert removal.job.extra_vars["installer_run_action"] == "uninstall"
    assert removal.job.extra_vars["installer_run_environment"]["OUTCOME"] == "ok"
    report(removal.job, {installation.node.name: {**script(0), "stage": "uninstall"}}, {})
    installation.refresh_from_db()
    assert installation.status == S.UNINSTALLED
    install([installation.node])  # an uninstalled installation leaves room for a new one


def test_upgrade_runs_the_catalogues_newer_version(tmp_path, settings):
    installation = finished(install(), 0)
    copy = tmp_path / "catalogue"
    (copy / "probe").mkdir(parents=True)
    for file in (CONTRACT / "probe").iterdir():
        (copy / "probe" / file.name).write_text(file.read_text().replace('"1.0"', '"1.1"'))
    settings.INSTALLERS_DIR = copy
    catalogue.reload()
    with pytest.raises(Conflict), stubbed_broker():
        actions.do_reinstall(installation)  # the installed version is no longer there
    with stubbed_broker():
        upgrade = actions.do_upgrade(installation)
    installation.refresh_from_db()
    assert (installation.version, upgrade.job.extra_vars["installer_run_version"]) == ("1.1", "1.1")
    assert installation.manifest_sha256 == catalogue.get("probe").sha256


def test_keep_on_failure_reaches_the_role():
    with stubbed_broker():
        launched = actions.do_install(
            [NodeFactory()], "probe", {"outcome": "ok"}, keep_on_failure=True
        )
    assert launched.installations[0].keep_on_failure
    assert launched.job.extra_vars["installer_run_keep_on_failure"] is True


def test_the_job_timeout_covers_the_script_and_its_undo():
    launched = install()
    assert launched.job.timeout >= 2 * catalogue.get("probe").timeout_seconds
    assert timedelta(seconds=launched.job.timeout) < timedelta(hours=1)


def test_a_script_may_stay_silent_up_to_its_own_timeout(settings):
    settings.JOB_IDLE_TIMEOUT = 30  # shorter than the probe's timeout_seconds (60)
    launched = install([NodeFactory(name="n-1")])
    assert launched.job.idle_timeout > catalogue.get("probe").timeout_seconds
    retry = report(launched.job, {"n-1": script(2)}, {"n-1": {"failures": 1}})
    assert retry.idle_timeout == launched.job.idle_timeout  # and so may its retries


def test_a_failed_rerun_of_an_installed_application_is_never_undone():
    """uninstall.sh undoes a failed first install only: after the application was once
    installed it would delete what it holds (postgresql: the database and its role)."""
    with stubbed_broker():
        first = actions.do_install([NodeFactory()], "probe", {"outcome": "ok"})
    assert first.job.extra_vars["installer_run_keep_on_failure"] is False  # first: undone
    installed = finished(first, 0)
    with stubbed_broker():
        reinstall = actions.do_reinstall(installed)
    assert reinstall.job.extra_vars["installer_run_keep_on_failure"] is True
    with stubbed_broker():
        retry = actions.do_retry(finished(reinstall, 3))
    assert retry.job.extra_vars["installer_run_keep_on_failure"] is True
    assert not retry.installations[0].keep_on_failure  # the installation's choice is kept

    with stubbed_broker():
        never = actions.do_install([NodeFactory()], "probe", {"outcome": "ok"})
    with stubbed_broker():
        again = actions.do_retry(finished(never, 3))  # never installed: undo as a first install
    assert again.job.extra_vars["installer_run_keep_on_failure"] is False


def test_an_upgrade_generates_a_password_the_node_never_had(settings, tmp_path):
    """A version that adds a ``generate: true`` password: the upgrade generates that one
    (shown once) and leaves the one the node has as it is."""
    copy = tmp_path / "catalogue" / "web-server"
    shutil.copytree(CATALOGUE / "web-server", copy)
    settings.INSTALLERS_DIR = copy.parent
    catalogue.reload()
    with stubbed_broker():
        first = actions.do_install([NodeFactory()], "web-server", {"server_name": "example.org"})
    installation = finished(first, 0)
    assert installation.secret_inputs == ["admin_password"]
    manifest = copy / "manifest.yml"
    manifest.write_text(
        manifest.read_text().replace('"1.2.0"', '"1.3.0"')
        + "  - name: api_key\n    type: password\n    label: API key\n    generate: true\n"
        "    validation:\n      min_length: 16\n"
    )
    catalogue.reload()
    with stubbed_broker():
        upgrade = actions.do_upgrade(installation)
    assert list(upgrade.generated) == ["api_key"] and len(upgrade.generated["api_key"]) >= 16
    assert upgrade.job.secrets() == {
        "installer_run_secrets": {"API_KEY": upgrade.generated["api_key"]}
    }
    installation.refresh_from_db()
    assert installation.secret_inputs == ["admin_password", "api_key"]
    with stubbed_broker():
        again = actions.do_reinstall(finished(upgrade, 0))
    assert (again.generated, again.job.secrets()) == ({}, {})


def test_a_retry_of_a_first_install_that_never_succeeded_generates_anew(settings, tmp_path):
    copy = tmp_path / "catalogue" / "web-server"
    shutil.copytree(CATALOGUE / "web-server", copy)
    settings.INSTALLERS_DIR = copy.parent
    catalogue.reload()
    with stubbed_broker():
        first = actions.do_install([NodeFactory()], "web-server", {"server_name": "example.org"})
        retry = actions.do_retry(finished(first, 3))
    assert list(retry.generated) == ["admin_password"]
    assert retry.generated["admin_password"] != first.generated["admin_password"]


def test_the_history_keeps_each_runs_exit_code():
    installation = finished(install(), 124)
    ended = installation.history.first()
    assert (ended.status, ended.exit_code) == (S.FAILED, 124)
    assert installation.history.last().exit_code is None  # pending -> installing: no script

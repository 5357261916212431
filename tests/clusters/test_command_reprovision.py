"""manage.py reprovision: starts a run (named nodes or --all), prints each transition and a
summary, exits 0 clustered / 1 error / 2 timeout, Ctrl-C says how to resume, --cancel."""

from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import ReprovisionRun
from portal.clusters.watch import Watcher
from tests.clusters.conftest import make_cluster, node_runs, start

pytestmark = pytest.mark.django_db


def command(*args):
    out = StringIO()
    try:
        call_command("reprovision", *args, "--poll", "0.1", stdout=out)
        code = 0
    except CommandError as error:
        code = error.returncode
    return code, out.getvalue()


def finish(run, node_status, run_status, reason="done"):
    for node_run in node_runs(run).values():
        node_run.move(node_status, reason=reason)
    ReprovisionRun.objects.get(pk=run.pk).move(run_status, reason=reason)


def test_start_named_nodes_and_watch_until_clustered(broker):
    cluster = make_cluster(count=3)
    mac = cluster.nodes.get(node__name="pve-2").mac

    def progress(seconds):
        run = ReprovisionRun.objects.get()
        for node_run in node_runs(run).values():
            for to in (N.REBOOTING, N.INSTALLING, N.REGISTERED, N.READY, N.JOINING, N.CLUSTERED):
                node_run.move(to, reason=f"to {to}")
        run.move(R.RUNNING, reason="first node rebooting")
        run.move(R.CLUSTERED, reason="2 node(s) clustered")

    with mock.patch("portal.clusters.watch.time.sleep", side_effect=progress):
        code, out = command("pve-1", mac.upper(), "--timeout", "30")
    assert code == 0, out
    run = ReprovisionRun.objects.get()
    assert run.timeout_minutes == 30
    assert f"run {run.pk} started on cluster pve: pve-1, pve-2 (deadline 30 minutes)" in out
    assert "pve-1: requested: reimage requested" in out
    assert "pve-2: joining -> clustered: to clustered" in out
    assert out.rstrip().endswith(f"run {run.pk} ended clustered: 2 node(s) clustered")


@pytest.mark.parametrize(
    ("node_status", "run_status", "code"),
    [(N.TIMEOUT, R.TIMEOUT, 2), (N.ERROR, R.ERROR, 1), (N.CANCELED, R.CANCELED, 1)],
)
def test_the_exit_code_is_the_outcome(broker, node_status, run_status, code):
    run = start(make_cluster(count=1))
    finish(run, node_status, run_status)
    got, out = command("--watch", str(run.pk))
    assert got == code and f"ended {run_status}" in out


def test_ctrl_c_stops_watching_and_says_how_to_resume(broker):
    run = start(make_cluster(count=1))
    with (
        mock.patch("portal.clusters.watch.time.sleep", side_effect=KeyboardInterrupt),
        pytest.raises(SystemExit) as stopped,
    ):
        command("--watch", str(run.pk))
    assert stopped.value.code == 130
    run.refresh_from_db()
    assert run.is_active  # the run goes on


def test_a_summary_every_progress_period(broker):
    run = start(make_cluster(count=2))
    lines = []
    ticks = iter([0, 0, 301, 301, 700, 700, 800])
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            finish(run, N.ERROR, R.ERROR)

    watcher = Watcher(run.pk, lines.append, sleep=sleep, clock=lambda: next(ticks))
    assert watcher.watch() == 1
    summaries = [line for line in lines if line.startswith(f"run {run.pk} running:")]
    assert len(summaries) == 2
    assert "2 rebooting" in summaries[0] and "min to the run's deadline" in summaries[0]


def test_all_and_cancel(broker):
    make_cluster(count=2)
    with (
        mock.patch("portal.clusters.watch.time.sleep", side_effect=KeyboardInterrupt),
        pytest.raises(SystemExit),
    ):
        command("--all")
    run = ReprovisionRun.objects.get()
    assert run.node_runs.count() == 2
    code, out = command("--cancel", str(run.pk))
    assert code == 0 and f"run {run.pk} canceled" in out
    assert ReprovisionRun.objects.get().status == R.CANCELED


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "Name the nodes"),
        (("pve-1", "--all"), "Name the nodes"),
        (("nope",), "No cluster node"),
        (("--all", "--cluster", "nope"), "No cluster named"),
        (("--watch", "999"), "No run 999"),
        (("--cancel", "999"), "No run 999"),
        (("pve-1", "--timeout", "0"), "timeout"),
    ],
)
def test_bad_arguments_are_cli_errors(broker, args, says):
    make_cluster(count=1)
    with pytest.raises(CommandError, match=says):
        call_command("reprovision", *args, stdout=StringIO())
    assert not ReprovisionRun.objects.exists()

"""Every speed figure a ratio to its floor (#18): the verdicts, the side-by-side order, the
floors' own paths, how the run's time is shared and how a figure that could not be
measured is reported. No timed assertion: the figures themselves are the bench's."""

import os
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import NoReverseMatch, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bench import ingest, labs, launches
from bench.__main__ import (
    QUICK_SKIPS,
    judge,
    not_measured,
    select,
    unmeasured,
    verdict,
)
from bench.procs import minor_faults
from bench.stack import web_threads
from bench.suite import MINIMUM_SECONDS, ORDER, share, window
from portal.jobs.models import Job
from tests.factories import UserFactory


def test_the_ratios_are_judged_against_the_issues_targets():
    assert judge("launch_ratio", (0.8, "x"))["met"] is True
    assert judge("launch_ratio", (0.79, "x"))["met"] is False
    assert judge("event_ingest_ratio", (0.69, "x")) == {
        "value": 0.69,
        "unit": "x",
        "target": ">= 0.7",
        "met": False,
    }
    assert judge("lab_assign_ratio", (1.05, "x"))["met"] is True
    assert judge("lab_assign_ratio", (1.06, "x"))["met"] is False
    assert judge("job_overhead_ratio", (1.06, "x"))["target"] == "<= 1.05"


def test_the_absolute_figures_are_no_longer_judged():
    for absolute in ("launch_rate", "event_ingest_rate", "lab_assign_to_active_p50"):
        assert judge(absolute, (1.0, "x"))["target"] == "report"


@pytest.mark.parametrize("module", [launches, ingest, labs])
def test_pairs_alternate_their_order(module):
    orders = [module.pair_order(index) for index in range(4)]
    assert orders[0] == orders[2] and orders[1] == orders[3]
    assert orders[0] == tuple(reversed(orders[1])) and len(set(orders[0])) == 2


def test_a_ratio_names_the_entry_that_measures_it():
    assert select("launch_ratio") == ["launch_rate"]
    assert select("event_ingest_ratio,lab_assign_ratio") == [
        "event_ingest_rate",
        "lab_assign_to_active_p50",
    ]


def test_a_quick_run_leaves_out_only_what_does_not_fit_unless_named():
    full, quick = select(""), select("", quick=True)
    assert set(full) - set(quick) == set(QUICK_SKIPS)
    assert select("workspace_batch_speedup", quick=True) == ["workspace_batch_speedup"]


def test_a_figure_never_takes_the_time_the_next_ones_need_for_their_minimum():
    remaining = ["launch_rate", "job_overhead_ratio", "workspace_batch_speedup"]
    reserved = MINIMUM_SECONDS["job_overhead_ratio"] + MINIMUM_SECONDS["workspace_batch_speedup"]
    # Plenty of time: the share. Little time: only what the others' minimum leave.
    assert window(10_000, "launch_rate", remaining) == share(10_000, "launch_rate", remaining)
    assert window(reserved + 5, "launch_rate", remaining) == 5
    assert window(reserved - 50, "launch_rate", remaining) == 0  # its minimum only
    assert window(100, "installer_overhead_ratio", ["installer_overhead_ratio"]) == 100


def test_every_default_figure_has_a_minimum_to_reserve():
    assert set(select("")) <= set(MINIMUM_SECONDS) <= set(ORDER)


def test_a_figure_that_could_not_be_measured_is_listed_with_why_and_the_others_stay():
    plan = [
        ("postgres", ["launch_rate", "event_lag_p95", "lab_assign_to_active_p50"], 500.0),
        ("sqlite", ["job_overhead_ratio"], 60.0),
    ]
    figures = {"launch_ratio": (0.9, "x"), "event_lag_p95": (40.0, "ms")}
    errors = {"lab_assign_to_active_p50": "RuntimeError: boom", "suite_sqlite": "no time left"}
    assert unmeasured(plan, figures, errors) == {
        "lab_assign_ratio": "RuntimeError: boom",
        "event_lag_p95_50x20": "its share of the run's time did not allow it",
        "worker_rss_mb": "its share of the run's time did not allow it",
        "job_overhead_ratio_sqlite": "no time left",
    }


def test_a_missing_figure_keeps_its_target_and_says_why():
    entry = not_measured("launch_ratio", "out of time: 3s left")
    assert entry == {
        "value": None,
        "target": ">= 0.8",
        "met": None,
        "not_measured": "out of time: 3s left",
    }
    assert verdict(entry) == "not measured: out of time: 3s left"
    assert verdict(judge("launch_ratio", (0.5, "x"))) == "NOT met (target >= 0.8)"
    assert verdict(judge("worker_rss_mb", (200.0, "MB"))) == "report"


def test_the_launch_floor_is_a_bench_url_only_behind_the_same_token(db, settings, broker):
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor-launch")
    settings.ROOT_URLCONF = "bench.urls"
    client = APIClient()
    body = {"playbook": "one.yml", "queue": "parked"}
    assert client.post(reverse("bench-floor-launch"), body, format="json").status_code == 401
    token = Token.objects.create(user=UserFactory())
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    answer = client.post(reverse("bench-floor-launch"), body, format="json")
    assert answer.status_code == 201
    job = Job.objects.get(pk=answer.json()["id"])  # one INSERT ...
    assert (job.playbook, job.queue) == ("one.yml", "parked")
    assert broker.publish.call_count == 1  # ... and one publish, to the queue named
    assert broker.publish.call_args.kwargs["queue"] == "parked"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the floor is a PostgreSQL COPY")
def test_the_ingest_floor_writes_the_same_rows_the_portal_stored():
    from portal.jobs.models import JobEvent

    events = ingest.load()[:50]
    _, job_id = ingest.run_live(events, ingest._lines(events))
    columns, rows = ingest.stored_rows(job_id)
    assert len(rows) == len(events)
    ingest.run_floor(columns, rows)
    copied_job = Job.objects.order_by("-pk").first().pk
    fields = [c for c in columns if c != "job_id"]
    original = list(JobEvent.objects.filter(job_id=job_id).order_by("counter").values(*fields))
    copied = list(JobEvent.objects.filter(job_id=copied_job).order_by("counter").values(*fields))
    assert copied == original


def test_a_quick_run_says_what_it_left_out():
    plan = [("postgres", ["event_lag_p95"], 160.0)]
    left_out = unmeasured(plan, {"event_lag_p95": (40.0, "ms")}, {}, quick=True)
    assert left_out == {
        "event_lag_p95_50x20": "left out of a --quick run",
        "worker_rss_mb": "left out of a --quick run",
    }


def test_the_first_installer_pair_is_estimated_from_the_hosts_warm_up():
    from bench.installers import _pair_seconds

    assert _pair_seconds([], [], warm_up=12.0) == 30.0
    assert _pair_seconds([4000.0], [3000.0], warm_up=12.0) == 14.0  # then from the last pair


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's VACUUM")
def test_before_a_figure_the_rows_the_last_one_wrote_are_vacuumed_not_during_it():
    from bench.suite import settle_database

    Job.objects.bulk_create(
        Job(playbook="one.yml", queue="settle", timeout=60, idle_timeout=60) for _ in range(1500)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # the counters it reads, now
    assert settle_database() >= 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL, n_ins_since_vacuum "
            "FROM pg_stat_user_tables WHERE relname = %s",
            [Job._meta.db_table],
        )
        assert cursor.fetchone() == (True, True, 0)


def test_the_launch_warm_up_reaches_every_web_thread_before_a_round_counts(monkeypatch):
    class Measuring(Exception):
        pass

    def no_pairs(*args):
        raise Measuring  # the warm-up is over: the first measured pair would start here

    rounds = []
    monkeypatch.setattr(launches, "_round", lambda ctx, send, *sized: rounds.append(sized))
    monkeypatch.setattr(
        launches,
        "connections",
        lambda ctx, clients: [SimpleNamespace(close=lambda: None)] * clients,
    )
    ctx = SimpleNamespace(
        fixtures=SimpleNamespace(parked_node="n", parked_queue="q"),
        services={"web": SimpleNamespace(pid=1)},
        decided=lambda *args: False,
        another=no_pairs,
    )
    with pytest.raises(Measuring):
        launches.measure(ctx)
    assert len(rounds) == 2  # one per side
    for apis, count, _seconds in rounds:
        assert len(apis) >= web_threads() and count >= 2 * len(apis)


class FakeApi:
    """A connection whose web process is the next of ``pids``."""

    pids: list[int] = []
    opened: list["FakeApi"] = []

    def __init__(self, port, token):
        self.pid, self.closed = FakeApi.pids.pop(0), False
        FakeApi.opened.append(self)

    def request(self, method, path, body=None):
        assert (method, path) == ("GET", launches.PROCESS_PATH)
        return 200, {"pid": self.pid}

    def close(self):
        self.closed = True


def test_launch_connections_are_spread_evenly_over_the_web_processes(monkeypatch):
    monkeypatch.setattr(launches, "Api", FakeApi)
    monkeypatch.setattr(launches, "web_processes", lambda: 2)
    ctx = SimpleNamespace(port=0, fixtures=SimpleNamespace(token="t"))
    FakeApi.pids, FakeApi.opened = [7, 7, 7, 7, 8, 7, 8], []
    kept = launches.connections(ctx, 4)
    assert sorted(api.pid for api in kept) == [7, 7, 8, 8]
    assert [api.closed for api in FakeApi.opened] == [False, False, True, True, False, True, False]
    # Chance that never spreads them is bounded: an error, and nothing left open.
    FakeApi.pids, FakeApi.opened = [7] * 100, []
    with pytest.raises(RuntimeError, match="could not spread"):
        launches.connections(ctx, 4)
    assert all(api.closed for api in FakeApi.opened)


def test_a_process_minor_faults_are_read_and_a_gone_one_has_none():
    assert minor_faults(os.getpid()) > 0
    assert minor_faults(2**22 + 12345) == 0

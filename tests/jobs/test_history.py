"""Cost flat in the history (#18): the tally behind /metrics, retention, the jobs list's
cursor and the admin list's queries."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from portal.jobs import retention, tally
from portal.jobs.api import pagination
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent, JobTally
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db

S = JobStatus


def _job(playbook="ping.yml", **fields) -> Job:
    return Job.objects.create(
        playbook=playbook, action="jobs.adhoc", queue="default", timeout=60, idle_timeout=60,
        **fields,
    )  # fmt: skip


def _ran(seconds: float, status=S.SUCCESSFUL, playbook="ping.yml") -> Job:
    job = _job(playbook)
    assert job.claim("w")
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=seconds))
    job.started_at = timezone.now() - timedelta(seconds=seconds)
    assert job.finish(status, rc=0)
    return job


def _tally() -> dict:
    return {
        (row.status, row.playbook, row.le_seconds): (row.count, round(row.seconds))
        for row in JobTally.objects.all()
    }


def _ended(days_ago: float, status=S.SUCCESSFUL, events: int = 3, **fields) -> Job:
    """A job that ended ``days_ago`` days ago, with ``events`` events."""
    ended = timezone.now() - timedelta(days=days_ago)
    job = _job(**fields)
    Job.objects.filter(pk=job.pk).update(
        status=status, created_at=ended - timedelta(minutes=1), started_at=ended,
        finished_at=ended, host_summary={"n1": {"ok": 1}}, event_count=events,
    )  # fmt: skip
    JobEvent.objects.bulk_create(
        JobEvent(job=job, counter=n, event="runner_on_ok", created=ended)
        for n in range(1, events + 1)
    )
    job.refresh_from_db()
    return job


# --- the tally ------------------------------------------------------------------------------


def test_each_terminal_move_is_counted_once_in_its_bucket():
    _ran(3)
    _ran(3)
    _ran(4000, status=S.FAILED)
    canceled = _job()
    assert canceled.cancel_before_start("no") and not canceled.cancel_before_start("again")
    refused = _job()
    assert refused.refuse("not allowed")
    lost = _job()
    lost.claim("w")
    assert not lost.mark_lost(timezone.now() - timedelta(hours=1))  # still beating
    assert lost.mark_lost(timezone.now() + timedelta(seconds=1))
    assert not Job.objects.get(pk=lost.pk).finish(S.SUCCESSFUL)  # a lost move: no count
    counts = _tally()
    assert counts.pop((S.SUCCESSFUL, "ping.yml", 5)) == (2, 6)
    assert counts.pop((S.FAILED, "ping.yml", tally.OVER)) == (1, 4000)
    assert counts.pop((S.CANCELED, "ping.yml", tally.NOT_RUN)) == (1, 0)
    assert counts.pop((S.REFUSED, "ping.yml", tally.NOT_RUN)) == (1, 0)
    assert counts.pop((S.LOST, "ping.yml", 1)) == (1, 0)
    assert counts == {}


def test_rebuild_gives_what_the_moves_counted():
    for seconds in (0.5, 7, 50, 700):
        _ran(seconds, playbook=f"p{seconds}.yml")
    _job().cancel_before_start("no")
    counted = _tally()
    JobTally.objects.all().delete()
    tally.rebuild(Job, JobTally)
    assert _tally() == counted


def _metrics(client, settings) -> dict:
    settings.METRICS_TOKEN = "t0ken"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken")
    families = text_string_to_metric_families(response.content.decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_metrics_count_ended_jobs_that_retention_deleted(client, settings):
    old = _ended(400, events=0)
    JobTally.objects.all().delete()
    tally.rebuild(Job, JobTally)  # as the migration counts the jobs stored before the tally
    _ran(2)
    _job()  # pending: counted live
    retention.prune()
    assert not Job.objects.filter(pk=old.pk).exists()
    samples = _metrics(client, settings)
    assert samples[("portal_jobs", (("playbook", "ping.yml"), ("status", "successful")))] == 2
    assert samples[("portal_jobs", (("playbook", "ping.yml"), ("status", "pending")))] == 1
    assert samples[("portal_job_duration_seconds_count", ())] == 2
    assert samples[("portal_job_duration_seconds_bucket", (("le", "5"),))] == 2
    assert samples[("portal_job_duration_seconds_bucket", (("le", "1"),))] == 1


# --- retention ------------------------------------------------------------------------------


def test_old_events_go_and_the_summary_stays(settings):
    settings.JOB_EVENTS_RETENTION_DAYS, settings.JOB_RETENTION_DAYS = 30, 180
    old = _ended(40)
    recent = _ended(5)
    done = retention.prune()
    assert done == {"jobs": 0, "events": 3, "event_jobs": 1}
    assert not JobEvent.objects.filter(job=old).exists()
    assert JobEvent.objects.filter(job=recent).count() == 3
    kept = Job.objects.get(pk=old.pk)
    assert (kept.status, kept.event_count, kept.host_summary) == (
        S.SUCCESSFUL,
        3,
        {"n1": {"ok": 1}},
    )
    assert kept.finished_at == old.finished_at


def test_the_admin_job_page_says_when_retention_deleted_its_events(settings, admin_client):
    settings.JOB_EVENTS_RETENTION_DAYS, settings.JOB_RETENTION_DAYS = 30, 180
    old, recent, silent = _ended(40), _ended(5), _ended(40, events=0)
    retention.prune()

    def page(job):
        return admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    said = "Its 3 events were deleted by retention (events are kept 30 days after a job ends"
    assert said in page(old) and "the job&#x27;s summary stays" in page(old)
    assert "deleted by retention" not in page(recent)  # its events are shown
    assert "deleted by retention" not in page(silent)  # it never had any
    assert retention.events_deleted(old) and not retention.events_deleted(recent)
    settings.JOB_EVENTS_RETENTION_DAYS = 0  # kept forever: nothing was deleted by age
    assert not retention.events_deleted(old)


def test_old_jobs_go_with_their_links_and_active_or_recent_ones_stay(settings):
    settings.JOB_EVENTS_RETENTION_DAYS, settings.JOB_RETENTION_DAYS = 30, 180
    old = _ended(200, status=S.FAILED)
    old.nodes.add(NodeFactory())
    retry = _ended(10, retry_of=old)  # a retained job pointing at it (SET_NULL)
    recent = _ended(100)
    active = _job(created_at=timezone.now() - timedelta(days=400))
    active.claim("w")
    done = retention.prune()
    assert done["jobs"] == 1 and done["events"] == 3 + 3  # its own + the 100-day-old job's
    assert not Job.objects.filter(pk=old.pk).exists()
    assert not JobEvent.objects.filter(job_id=old.pk).exists()
    assert not Job.nodes.through.objects.filter(job_id=old.pk).exists()
    assert Job.objects.get(pk=retry.pk).retry_of_id is None
    assert set(Job.objects.values_list("pk", flat=True)) == {retry.pk, recent.pk, active.pk}


def test_every_foreign_key_to_a_job_is_handled_before_the_raw_delete():
    """A raw DELETE skips Django's on_delete: every key to Job in every app (hidden "+"
    relations and many-to-many tables included) must be nulled, deleted with the job, or
    keep it."""
    from django.apps import apps

    declared = {
        (model._meta.db_table, field.column)
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is Job and model is not JobEvent
    }
    handled = {(f.model._meta.db_table, f.column) for f in retention._foreign_keys()}
    assert declared == handled
    assert ("workspaces_workspace", "current_job_id") in handled


def test_batches_are_bounded_and_the_next_run_takes_the_rest(settings):
    settings.JOB_PRUNE_BATCH, settings.JOB_PRUNE_MAX_BATCHES = 2, 2
    for _ in range(5):
        _ended(300)
    with CaptureQueriesContext(connection) as queries:
        assert retention.prune()["jobs"] == 4
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "jobs_job"')]
    assert len(deletes) == 2 and all(sql.count("%s") <= 2 or "IN (" in sql for sql in deletes)
    assert Job.objects.count() == 1
    assert retention.prune()["jobs"] == 1 and not Job.objects.exists()


def test_zero_days_keeps_forever(settings):
    settings.JOB_EVENTS_RETENTION_DAYS, settings.JOB_RETENTION_DAYS = 0, 0
    _ended(5000)
    assert retention.prune() == {"jobs": 0, "events": 0, "event_jobs": 0}
    assert JobEvent.objects.count() == 3


def test_prune_jobs_dry_run_counts_and_deletes_nothing(settings, capsys):
    _ended(200)
    _ended(40)
    _ended(1)
    call_command("prune_jobs", "--dry-run")
    assert "would delete 1 jobs, 6 events (and the events of 1 jobs" in capsys.readouterr().out
    assert Job.objects.count() == 3 and JobEvent.objects.count() == 9
    call_command("prune_jobs")
    assert "deleted 1 jobs, 6 events" in capsys.readouterr().out
    assert Job.objects.count() == 2 and JobEvent.objects.count() == 3


def test_prune_is_a_beat_task(settings):
    assert settings.CELERY_BEAT_SCHEDULE["jobs-prune"]["task"] == "jobs.prune"


# --- the jobs list --------------------------------------------------------------------------


@pytest.fixture
def jobs():
    now = timezone.now()
    made = [_job() for _ in range(7)]
    for n, job in enumerate(made):  # two share a created_at: the id breaks the tie
        Job.objects.filter(pk=job.pk).update(created_at=now - timedelta(minutes=min(n, 5)))
    return [job.pk for job in made]


def _walk(api, url):
    seen, pages = [], 0
    while url:
        body = api.get(url).json()
        seen += [job["id"] for job in body["results"]]
        url, pages = body["next"], pages + 1
    return seen, pages


def test_the_list_pages_by_cursor_newest_first_and_oldest_first(admin_api, jobs):
    seen, pages = _walk(admin_api, "/api/jobs/?page_size=2")
    assert pages == 4 and seen == sorted(
        jobs, key=lambda pk: (jobs.index(pk) if jobs.index(pk) < 5 else 5, -pk)
    )
    first = admin_api.get("/api/jobs/?page_size=2").json()
    assert "cursor=" in first["next"] and first["count"] == 7
    oldest_first, _ = _walk(admin_api, "/api/jobs/?page_size=3&ordering=created_at")
    assert oldest_first == list(reversed(seen))


def test_page_numbers_work_for_the_first_jobs_only(admin_api, jobs, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_PAGE_ROWS", 4)
    second = admin_api.get("/api/jobs/?page=2&page_size=2").json()
    assert len(second["results"]) == 2 and second["previous"].endswith("page_size=2")
    deep = admin_api.get(second["next"])  # page 3: past the cap, the answer says what to do
    assert deep.status_code == 400
    assert deep.json()["errors"][0]["field"] == "page" and "next" in deep.json()["message"]
    assert admin_api.get("/api/jobs/?page=abc").status_code == 400
    monkeypatch.setattr(pagination, "MAX_PAGE_ROWS", 100)
    assert admin_api.get("/api/jobs/?page=9&page_size=2").status_code == 404


def test_count_is_exact_then_estimated(jobs, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_COUNT_UP_TO", 3)
    with CaptureQueriesContext(connection) as queries:
        count = pagination.estimated_count(Job.objects.all())
    assert count >= 4 if connection.vendor == "postgresql" else count == 7
    assert "LIMIT 4" in queries[0]["sql"]


# --- the admin list -------------------------------------------------------------------------


def test_admin_list_reads_no_distinct_and_counts_no_whole_table(admin_client, jobs):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:jobs_job_changelist"))
    assert response.status_code == 200
    on_jobs = [q["sql"] for q in queries if '"jobs_job"' in q["sql"]]
    assert on_jobs and not [sql for sql in on_jobs if "DISTINCT" in sql]
    counts = [sql for sql in on_jobs if "COUNT(" in sql]
    assert counts and all("LIMIT 1001" in sql for sql in counts)
    page = response.content.decode()
    assert "ping.yml" in page and "jobs.adhoc" in page  # filters from the known values


# --- the event table's indexes --------------------------------------------------------------


def test_events_are_found_by_job_through_the_one_index_that_leads_with_it():
    """Each stored event writes every index of its table: one leading with the job is enough."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, JobEvent._meta.db_table)
    leading = sorted(
        name
        for name, c in found.items()
        if (c["index"] or c["unique"]) and c["columns"][:1] == ["job_id"]
    )
    assert leading == ["unique_job_event_counter"]
    job = _ended(days_ago=1, events=5)
    if connection.vendor == "postgresql":  # on a small table a scan is cheaper
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    events = JobEvent.objects.filter(job=job).order_by("counter")
    plan = events.explain()  # SQLite names the unique constraint's index itself
    assert "unique_job_event_counter" in plan or "USING INDEX sqlite_autoindex" in plan
    assert [e.counter for e in events] == [1, 2, 3, 4, 5]

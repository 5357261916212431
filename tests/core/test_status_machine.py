"""The status machine base (portal/core/status.py) on every model that uses it.

Table-driven: for Job, Workspace and LabSession every declared move succeeds from its status
and every other (from, to) pair is refused naming it; two competing movers never both win;
the deadline sweep moves what is overdue (with the reason) and nothing else.
"""

import itertools
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import checks
from django.db import connection, connections, models, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone

from portal.accounts.models import Plan
from portal.core import status as machine
from portal.core.status import StatusModel, TransitionNotAllowed, humane_duration
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.labs.choices import SessionStatus
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import Connection, NodePurpose
from portal.workspaces.choices import WorkspaceStatus
from portal.workspaces.models import Workspace, WorkspaceEvent
from tests.factories import MembershipFactory, NodeFactory, UserFactory

MODELS = {Job: JobStatus, Workspace: WorkspaceStatus, LabSession: SessionStatus}
_serial = itertools.count(1)


def make(model, status, **fields):
    """A row of ``model`` in ``status``, with whatever else it needs."""
    n = next(_serial)
    if model is Job:
        values = {
            "playbook": "ping.yml",
            "action": "jobs.adhoc",
            "queue": "default",
            "timeout": 60,
            "idle_timeout": 60,
        }
    elif model is Workspace:
        # Its own plan: a transactional test flushes the plans the data migration made.
        plan, _ = Plan.objects.get_or_create(
            tier="status-test",
            defaults={
                "name": "Status test",
                "workspace_limit": 100,
                "disk_quota_gb": 10,
                "cpu_limit": 1,
                "memory_limit_mb": 512,
            },
        )
        membership = MembershipFactory(customer__plan=plan)
        node = NodeFactory(
            purpose=NodePurpose.WORKSPACE_HOST, connection=Connection.LOCAL, credential=None
        )
        values = {
            "customer": membership.customer,
            "owner": membership.user,
            "node": node,
            "name": f"ws {n}",
            "slug": f"ws-{n}",
            "linux_username": f"ws{n}",
            "password": "pw",
            "disk_quota_gb": 10,
            "cpu_limit": 1,
            "memory_limit_mb": 512,
        }
    else:
        server = NodeFactory(
            purpose=NodePurpose.LAB_SERVER, connection=Connection.LOCAL, credential=None
        )
        lab = Lab.objects.create(
            name=f"lab {n}",
            server=server,
            provision_script_path="/p.sh",
            cleanup_script_path="/c.sh",
        )
        values = {
            "user": UserFactory(),
            "lab": lab,
            "namespace": f"ns-{n}",
            "token_hash": "x",
            "access_expiry": timezone.now() + timedelta(hours=1),
        }
    return model.objects.create(**{**values, **fields, "status": status})


def pairs(allowed: bool) -> list:
    return [
        pytest.param(model, source, target, id=f"{model.__name__}:{source}->{target}")
        for model, choices in MODELS.items()
        for source, target in itertools.product(choices.values, repeat=2)
        if (target in model.TRANSITIONS.get(source, ())) == allowed
    ]


# --- the tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_the_table_passes_the_checks(model):
    assert machine.check_machine(model) == []
    assert model.check() == []


@pytest.mark.parametrize("model", MODELS)
def test_terminal_statuses_have_no_way_out_and_all_others_have_one(model):
    for status in MODELS[model].values:
        assert (status in model.TERMINAL) == (not model.TRANSITIONS.get(status))


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "source", "target"), pairs(allowed=True))
def test_every_declared_move_succeeds(model, source, target):
    obj = make(model, source)
    assert obj.move(target, [source]) is True
    assert obj.status == target
    assert model.objects.get(pk=obj.pk).status == target
    again = make(model, source)  # without allowed_from: the table's sources
    assert again.move(target) is True
    assert model.objects.get(pk=again.pk).status == target


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "source", "target"), pairs(allowed=False))
def test_every_other_pair_is_refused_naming_it(model, source, target):
    obj = make(model, source)
    with pytest.raises(TransitionNotAllowed) as refused:
        obj.move(target, [source])
    assert (
        f"{model._meta.verbose_name} {obj.pk}: {source} -> {target} is not a transition "
        f"of {model.__name__}"
    ) in refused.value.message
    assert refused.value.status_code == 409 and refused.value.field == "status"
    with pytest.raises(TransitionNotAllowed, match=f"{source} -> {target} is not"):
        obj.move(target)
    assert model.objects.get(pk=obj.pk).status == source


@pytest.mark.django_db
def test_allowed_from_may_narrow_the_table_never_widen_it():
    ws = make(Workspace, WorkspaceStatus.STOPPED)
    # Narrower: allowed, and the row is not in it, so nothing moves.
    assert ws.move(WorkspaceStatus.FAILED, [WorkspaceStatus.PROVISIONING]) is False
    assert Workspace.objects.get(pk=ws.pk).status == WorkspaceStatus.STOPPED
    # Wider: an error at call time, even though the row's own status would be allowed.
    with pytest.raises(TransitionNotAllowed, match="running -> failed is not a transition"):
        ws.move(WorkspaceStatus.FAILED, [WorkspaceStatus.STOPPED, WorkspaceStatus.RUNNING])
    assert Workspace.objects.get(pk=ws.pk).status == WorkspaceStatus.STOPPED
    with pytest.raises(TransitionNotAllowed, match="nothing moves to pending"):
        ws.move(WorkspaceStatus.PENDING)


# --- two movers ---------------------------------------------------------------------------

RACES = [
    (Job, JobStatus.PENDING, JobStatus.RUNNING, JobStatus.CANCELED),
    (Workspace, WorkspaceStatus.PROVISIONING, WorkspaceStatus.RUNNING, WorkspaceStatus.FAILED),
    (LabSession, SessionStatus.EXPIRING, SessionStatus.EXPIRED, SessionStatus.CLEANUP_FAILED),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "source", "first", "second"), RACES)
def test_of_two_movers_from_one_status_only_the_first_wins(model, source, first, second):
    obj = make(model, source)
    stale = model.objects.get(pk=obj.pk)
    assert obj.move(first, [source]) is True
    assert stale.move(second, [source]) is False
    assert stale.move(first, [source]) is False
    assert model.objects.get(pk=obj.pk).status == first
    if model is Workspace:
        assert list(
            WorkspaceEvent.objects.filter(workspace=obj).values_list("from_status", "to_status")
        ) == [(source, first)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("model", "source", "first", "second"), RACES)
def test_competing_threads_never_both_win(model, source, first, second):
    obj = make(model, source)
    start = threading.Barrier(4)
    won = []

    def mover(target):
        try:
            mine = model.objects.get(pk=obj.pk)
            start.wait(timeout=10)
            won.append((target, mine.move(target, [source])))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=mover, args=(t,)) for t in (first, second) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [target for target, moved in won if moved]
    assert len(won) == 4 and len(winners) == 1, won
    assert model.objects.get(pk=obj.pk).status == winners[0]
    if model is Workspace:
        assert WorkspaceEvent.objects.filter(workspace=obj).count() == 1


# --- what a move writes -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_workspace_move_writes_its_reason_time_and_history():
    ws = make(Workspace, WorkspaceStatus.RUNNING)
    by = UserFactory()
    job = make(Job, JobStatus.RUNNING)
    before = ws.status_changed_at
    assert (
        ws.move(
            WorkspaceStatus.STOPPED,
            [WorkspaceStatus.RUNNING],
            message="stopped",
            job=job,
            by=by,
            route_wanted=False,
        )
        is True
    )
    assert (ws.status, ws.status_reason, ws.route_wanted) == ("stopped", "stopped", False)
    assert ws.status_changed_at > before and ws.updated_at >= ws.status_changed_at
    event = WorkspaceEvent.objects.get(workspace=ws)
    assert (event.from_status, event.to_status, event.message, event.job, event.by) == (
        "running",
        "stopped",
        "stopped",
        job,
        by,
    )


@pytest.mark.django_db
def test_a_lost_move_writes_nothing():
    ws = make(Workspace, WorkspaceStatus.RUNNING)
    assert ws.move(WorkspaceStatus.RUNNING, [WorkspaceStatus.STOPPED], message="x") is False
    assert not WorkspaceEvent.objects.filter(workspace=ws).exists()
    assert Workspace.objects.get(pk=ws.pk).status_reason == ""


@pytest.mark.django_db
def test_the_reason_goes_to_the_models_reason_field():
    session = make(LabSession, SessionStatus.PROVISIONING)
    assert session.move(SessionStatus.FAILED, reason="provision script exited 3") is True
    assert session.last_error == "provision script exited 3"
    job = make(Job, JobStatus.PENDING)
    assert job.move(JobStatus.REFUSED, reason="no") is True
    assert Job.objects.get(pk=job.pk).reason == "no"


@pytest.mark.django_db
def test_a_job_move_sets_its_fields_without_reading_the_row_back(django_assert_num_queries):
    job = make(Job, JobStatus.PENDING)
    with django_assert_num_queries(1) as queries:  # the UPDATE only: the worker's hot path
        assert job.claim("w1") is True
    assert "status_expires" not in queries.captured_queries[0]["sql"]  # Job has no deadlines
    assert (job.status, job.worker, job.status_expires) == ("running", "w1", None)
    # An expression is read back, so the instance never holds F() objects.
    other = make(Job, JobStatus.PENDING)
    assert other.move(JobStatus.DISPATCHED, attempt=F("attempt") + 1) is True
    assert other.attempt == 2


@pytest.mark.django_db
def test_a_move_of_plain_values_stores_what_the_orms_update_would():
    """Plain values take the base's own UPDATE (portal.core.status.plain_guarded_update):
    a related row, its id, JSON and NULL land as QuerySet.update would write them."""
    user = UserFactory()
    fields = {"requested_by": user, "host_summary": {"web": {"ok": 1}}, "rc": None}
    moved, updated = make(Job, JobStatus.PENDING), make(Job, JobStatus.PENDING)
    assert moved.move(JobStatus.DISPATCHED, [JobStatus.PENDING], **fields) is True
    Job.objects.filter(pk=updated.pk).update(status=JobStatus.DISPATCHED, **fields)
    columns = ["status", "requested_by_id", "host_summary", "rc", "status_expires"]
    assert Job.objects.filter(pk=moved.pk).values(*columns).get() == {
        **Job.objects.filter(pk=updated.pk).values(*columns).get(),
        "status_expires": moved.status_expires,  # the move's own deadline, not the update's
    }
    by_id = make(Job, JobStatus.PENDING)
    assert by_id.move(JobStatus.DISPATCHED, requested_by_id=user.pk) is True
    assert Job.objects.get(pk=by_id.pk).requested_by == user
    assert by_id.move(JobStatus.DISPATCHED, [JobStatus.PENDING]) is False  # the guard holds


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's commit setting")
@pytest.mark.django_db(transaction=True)
def test_a_move_that_need_not_be_durable_skips_the_flush_of_its_own_commit_only():
    session_setting = synchronous_commit()
    job = make(Job, JobStatus.PENDING)
    with CaptureQueriesContext(connection) as queries:
        assert job.move(JobStatus.DISPATCHED, [JobStatus.PENDING], durable=False) is True
    [update] = [query["sql"] for query in queries]
    assert "set_config('synchronous_commit', 'off', true)" in update
    assert Job.objects.get(pk=job.pk).status == JobStatus.DISPATCHED
    assert synchronous_commit() == session_setting  # the next commit waits for the disk again
    # Inside a caller's transaction the caller's commit decides: the move is a plain UPDATE.
    other = make(Job, JobStatus.PENDING)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert other.move(JobStatus.DISPATCHED, [JobStatus.PENDING], durable=False) is True
        assert synchronous_commit() == session_setting
    assert "set_config" not in queries[0]["sql"]


@pytest.mark.django_db
def test_guard_conditions_narrow_the_move():
    stale_before = timezone.now()
    job = make(Job, JobStatus.RUNNING, heartbeat_at=stale_before + timedelta(seconds=5))
    assert job.mark_lost(stale_before) is False  # still beating
    Job.objects.filter(pk=job.pk).update(heartbeat_at=stale_before - timedelta(seconds=5))
    assert job.mark_lost(stale_before) is True
    assert job.status == JobStatus.LOST and "stopped reporting" in job.reason


# --- deadlines ----------------------------------------------------------------------------

P, FAILED, R = WorkspaceStatus.PROVISIONING, WorkspaceStatus.FAILED, WorkspaceStatus.RUNNING


@pytest.fixture
def provisioning_deadline(monkeypatch):
    """Workspaces get a 45-minute deadline in provisioning (none has one today)."""
    monkeypatch.setattr(Workspace, "STATUS_TIMEOUTS", {P: timedelta(minutes=45)})
    monkeypatch.setattr(Workspace, "TIMEOUT_STATUS", FAILED)
    timed_out = []
    monkeypatch.setattr(
        Workspace,
        "status_timed_out",
        lambda self, from_status: timed_out.append((self.pk, from_status)),
    )
    return timed_out


@pytest.mark.django_db
def test_a_move_sets_the_deadline_of_the_new_status_and_clears_it_after(provisioning_deadline):
    assert machine.check_machine(Workspace) == []
    ws = make(Workspace, WorkspaceStatus.PENDING)
    before = timezone.now()
    ws.move(P, [WorkspaceStatus.PENDING])
    assert before + timedelta(minutes=45) <= ws.status_expires
    assert ws.status_expires <= timezone.now() + timedelta(minutes=45)
    ws.move(R, [P])
    assert ws.status_expires is None


@pytest.mark.django_db
def test_a_move_to_the_same_status_keeps_its_deadline(monkeypatch):
    monkeypatch.setattr(
        LabSession, "STATUS_TIMEOUTS", {SessionStatus.REQUESTED: timedelta(hours=1)}
    )
    monkeypatch.setattr(LabSession, "TIMEOUT_STATUS", SessionStatus.FAILED)
    session = make(LabSession, SessionStatus.FAILED)
    session.move(SessionStatus.REQUESTED, [SessionStatus.FAILED])
    deadline = session.status_expires
    assert deadline is not None
    session.move(
        SessionStatus.REQUESTED,
        [SessionStatus.REQUESTED, SessionStatus.PROVISIONING],
        last_error="waiting for server",
    )
    assert session.status_expires == deadline
    # An explicit deadline (an operator's extension) wins.
    later = deadline + timedelta(hours=2)
    session.move(SessionStatus.REQUESTED, [SessionStatus.REQUESTED], status_expires=later)
    assert session.status_expires == later


@pytest.mark.django_db
def test_a_deadline_may_come_from_the_instance(provisioning_deadline, monkeypatch):
    monkeypatch.setattr(
        Workspace, "status_timeout", lambda self, status: timedelta(minutes=self.disk_quota_gb)
    )
    ws = make(Workspace, WorkspaceStatus.PENDING, disk_quota_gb=7)
    start = timezone.now()
    ws.move(P)
    assert start + timedelta(minutes=7) <= ws.status_expires <= start + timedelta(minutes=8)


@pytest.mark.django_db
def test_the_sweep_moves_what_is_overdue_with_the_reason_and_nothing_else(provisioning_deadline):
    overdue, not_due, moved_on = (make(Workspace, WorkspaceStatus.PENDING) for _ in range(3))
    for ws in (overdue, not_due, moved_on):
        ws.move(P)
    stale = Workspace.objects.get(pk=moved_on.pk)  # what the sweep read
    moved_on.move(R, [P], message="running")  # ... then a worker moved it on
    Workspace.objects.filter(pk=overdue.pk).update(
        status_expires=timezone.now() - timedelta(seconds=1)
    )

    moved = machine.expire_statuses()  # every model with deadlines: only this row moved
    assert {label: count for label, count in moved.items() if count} == {"workspaces.Workspace": 1}

    overdue.refresh_from_db()
    assert overdue.status == FAILED
    assert overdue.status_reason == "timed out after 45 minutes in provisioning"
    assert overdue.status_expires is None
    event = WorkspaceEvent.objects.filter(workspace=overdue).first()
    assert (event.from_status, event.to_status, event.message) == (
        P,
        FAILED,
        "timed out after 45 minutes in provisioning",
    )
    assert provisioning_deadline == [(overdue.pk, P)]
    not_due.refresh_from_db()
    assert (not_due.status, not_due.status_reason) == (P, "")
    # The row that moved on: the sweep's guarded move from what it read does not touch it.
    assert stale.expire(timezone.now() + timedelta(hours=1)) is False
    moved_on.refresh_from_db()
    assert (moved_on.status, moved_on.status_reason) == (R, "running")
    assert provisioning_deadline == [(overdue.pk, P)]


@pytest.mark.django_db
def test_a_row_whose_deadline_was_renewed_meanwhile_is_left_alone(provisioning_deadline):
    ws = make(Workspace, WorkspaceStatus.PENDING)
    ws.move(P)
    now = timezone.now()
    read = Workspace.objects.get(pk=ws.pk)
    Workspace.objects.filter(pk=ws.pk).update(status_expires=now + timedelta(hours=1))
    assert read.expire(now) is False
    assert Workspace.objects.get(pk=ws.pk).status == P


@pytest.mark.django_db
def test_a_failing_hook_does_not_stop_the_sweep(provisioning_deadline, monkeypatch):
    monkeypatch.setattr(Workspace, "status_timed_out", lambda self, s: 1 / 0)
    rows = [make(Workspace, WorkspaceStatus.PENDING) for _ in range(2)]
    for ws in rows:
        ws.move(P, status_expires=timezone.now() - timedelta(seconds=1))
    machine.expire_statuses()
    assert set(
        Workspace.objects.filter(pk__in=[w.pk for w in rows]).values_list("status", flat=True)
    ) == {FAILED}


@pytest.mark.django_db
def test_models_without_deadlines_are_not_swept():
    assert Workspace not in machine.status_models()
    job = make(Job, JobStatus.PENDING, status_expires=timezone.now() - timedelta(hours=1))
    assert "jobs.Job" not in machine.expire_statuses()
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING


@pytest.mark.django_db
def test_the_beat_task_runs_the_sweep(provisioning_deadline):
    from portal.celery import app
    from portal.core.tasks import expire_statuses

    ws = make(Workspace, WorkspaceStatus.PENDING)
    ws.move(P, status_expires=timezone.now() - timedelta(seconds=1))
    assert expire_statuses.delay is not None and "core.expire_statuses" in app.tasks
    assert expire_statuses() == 1
    assert settings.CELERY_BEAT_SCHEDULE["core-expire-statuses"]["task"] == ("core.expire_statuses")


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS)
def test_the_sweeps_query_has_its_partial_index(model):
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    index = found[f"{model._meta.app_label}_{model._meta.model_name}_exp"]
    assert index["index"] and index["columns"] == ["status_expires"]
    if connection.vendor == "postgresql":  # on an empty table a scan is cheaper
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    plan = machine.overdue(model, timezone.now()).explain()
    assert f"{model._meta.app_label}_{model._meta.model_name}_exp" in plan


def test_durations_read_as_people_say_them():
    assert humane_duration(timedelta(minutes=45)) == "45 minutes"
    assert humane_duration(timedelta(hours=2)) == "2 hours"
    assert humane_duration(timedelta(hours=1)) == "1 hour"
    assert humane_duration(timedelta(seconds=90)) == "90 seconds"
    assert humane_duration(timedelta(days=1)) == "1 day"


# --- the checks a new app gets ------------------------------------------------------------


@isolate_apps("portal.core")
def test_manage_py_check_names_what_is_wrong_with_a_table():
    class Phase(models.TextChoices):
        QUEUED = "queued"
        INSTALLING = "installing"
        STUCK = "stuck"
        DONE = "done"
        FAILED = "failed"

    class Installation(StatusModel):
        status = models.CharField(max_length=20, choices=Phase.choices)

        TRANSITIONS = {
            Phase.QUEUED: {Phase.INSTALLING, "bogus"},
            Phase.INSTALLING: {Phase.DONE},
            Phase.DONE: {Phase.QUEUED},
            Phase.FAILED: {Phase.QUEUED},
        }
        TERMINAL = frozenset({Phase.DONE})
        STATUS_TIMEOUTS = {Phase.INSTALLING: timedelta(minutes=45)}
        TIMEOUT_STATUS = Phase.FAILED
        STATUS_REASON_FIELD = "why"

        class Meta:  # not StatusModel.Meta: no index
            app_label = "core"

    messages = {error.msg for error in Installation.check() if error.level >= checks.ERROR}
    assert messages == {
        "'bogus' is not a status of Installation",
        "done is TERMINAL but may move to queued",
        "stuck has no way out: declare its moves or add it to TERMINAL",
        "installing times out into failed, which its table does not allow",
        "'why' is not a field of Installation",
        "no index on status_expires: let Meta inherit StatusModel.Meta (or add its index)",
    }

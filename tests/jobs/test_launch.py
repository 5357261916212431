"""Launch: the Job row exists iff the transaction committed; dispatch happens on commit."""

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from portal.core.errors import PortalError
from portal.jobs import actions, signing
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.playbooks import check_playbook, resolve_playbook
from portal.nodes.models import Node, NodeGroup
from tests.factories import NodeFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db


def test_launch_records_the_job_and_dispatches_on_commit(
    local_node, django_capture_on_commit_callbacks
):
    with stubbed_broker() as broker, django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = actions.launch(playbook="echo.yml", nodes=[local_node], extra_vars={"message": "hi"})
        assert broker.publish.call_count == 0  # nothing is published before the commit
    assert len(callbacks) == 1
    broker.publish.assert_called_once()
    assert broker.publish.call_args.kwargs["args"] == [job.pk, job.signature]
    assert broker.publish.call_args.kwargs["queue"] == "default"
    job.refresh_from_db()
    assert job.status == JobStatus.DISPATCHED and list(job.nodes.all()) == [local_node]
    assert signing.verify(job, job.signature)


def test_rolled_back_domain_change_leaves_no_job(local_node):
    with stubbed_broker() as broker, pytest.raises(RuntimeError), transaction.atomic():
        actions.launch(playbook="echo.yml", nodes=[local_node])
        raise RuntimeError("the domain change failed")
    assert not Job.objects.exists()
    broker.publish.assert_not_called()


def test_broker_down_leaves_job_pending_for_the_sweep(
    local_node, django_capture_on_commit_callbacks
):
    with (
        stubbed_broker(side_effect=ConnectionRefusedError("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING
    with stubbed_broker() as broker:
        from datetime import timedelta

        assert actions.sweep_pending(older_than=timedelta(0)) == 1
    broker.publish.assert_called_once()
    job.refresh_from_db()
    assert job.status == JobStatus.DISPATCHED


def test_a_job_is_marked_dispatched_only_once_its_message_is_out(
    local_node, django_capture_on_commit_callbacks
):
    status_when_published = []

    def publish(task, *args, **kwargs):
        status_when_published.append(Job.objects.get(pk=kwargs["args"][0]).status)

    with (
        stubbed_broker(side_effect=publish),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    assert status_when_published == [JobStatus.PENDING]
    job.refresh_from_db()
    assert job.status == JobStatus.DISPATCHED and job.dispatched_at is not None


@pytest.mark.django_db(transaction=True)
def test_without_a_callers_transaction_a_job_is_dispatched_only_once_its_message_is_out(
    local_node, django_assert_num_queries
):
    # As in the API: no transaction around the launch. On PostgreSQL the message goes out
    # first and the row is written once, already dispatched (no INSERT then UPDATE); on
    # SQLite the committed pending row is published, then marked.
    seen_at_publish = []

    def publish(task, *args, **kwargs):
        job = Job.objects.filter(pk=kwargs["args"][0]).first()
        seen_at_publish.append(job and (connection.get_autocommit(), job.status))

    publishes_first = connection.vendor == "postgresql"
    with stubbed_broker(side_effect=publish):
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    assert seen_at_publish == ([None] if publishes_first else [(True, JobStatus.PENDING)])
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.dispatched_at) == (JobStatus.DISPATCHED, job.dispatched_at)
    assert stored.dispatched_at is not None and list(stored.nodes.all()) == [local_node]
    assert signing.verify(stored, job.signature) and stored.signature == job.signature
    # The statements of a launch whose nodes are read (as the API's): PostgreSQL, the id and
    # the rows; SQLite: BEGIN, the row, its signature, its node rows, COMMIT, the mark.
    with stubbed_broker(), django_assert_num_queries(2 if publishes_first else 6):
        actions.launch(playbook="echo.yml", nodes=[local_node], nodes_loaded=True)


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_publish_failed_stays_pending_until_the_sweep_sends_it(local_node):
    with stubbed_broker(side_effect=ConnectionRefusedError("broker down")) as broker:
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    broker.publish.assert_called_once()
    job.refresh_from_db()
    assert (job.status, job.dispatched_at) == (JobStatus.PENDING, None)
    assert list(job.nodes.all()) == [local_node] and signing.verify(job, job.signature)
    with stubbed_broker() as broker:
        assert actions.sweep_pending(older_than=timedelta(0)) == 1
    assert broker.publish.call_args.kwargs["args"] == [job.pk, job.signature]
    job.refresh_from_db()
    assert job.status == JobStatus.DISPATCHED


def what_a_launch_reads(node):
    group = node.group and (node.group.pk, node.group.name, node.group.queue)
    fields = (node.enabled, node.connection, node.credential_id, node.queue, node.routing_queue)
    return (node.pk, node.name, *fields, group)


@pytest.mark.parametrize("grouped", [True, False], ids=["in-a-group", "no-group"])
def test_nodes_read_by_name_are_the_rows_the_orm_reads(grouped, django_assert_num_queries):
    group = NodeGroup.objects.create(name="site-d", queue="site-d") if grouped else None
    NodeFactory(name="d-2", group=group, enabled=False, queue="own")
    NodeFactory(name="d-1", group=group, credential=None, connection="local")
    names = ["d-2", "d-1", "missing"]
    by_orm = actions.nodes_to_launch_on(Node.objects.filter(name__in=names))
    with django_assert_num_queries(1):  # the fields a launch reads are all loaded
        by_name = actions.nodes_named(names)
        seen = [what_a_launch_reads(node) for node in by_name]
    assert seen == [what_a_launch_reads(node) for node in by_orm]
    assert [node.name for node in by_name] == ["d-1", "d-2"]
    assert [n.get_deferred_fields() for n in by_name] == [n.get_deferred_fields() for n in by_orm]
    assert actions.nodes_named([]) == []


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the publish-first launch")
@pytest.mark.django_db(transaction=True)
def test_nodes_read_for_a_launch_that_publishes_first_reserve_its_id_once(
    local_node, django_assert_num_queries
):
    with django_assert_num_queries(2):  # one each
        found = actions.nodes_named([local_node.name, "missing"])
        nobody = actions.nodes_named(["missing"])  # still one row: the id, and no node
    assert found == [local_node] and nobody == []
    assert nobody.reserved_job_id == found.reserved_job_id + 1
    reserved = found.reserved_job_id
    with stubbed_broker() as broker, django_assert_num_queries(1):  # the INSERT alone
        job = actions.launch(playbook="echo.yml", nodes=found, nodes_loaded=True)
    assert job.pk == reserved == broker.publish.call_args.kwargs["args"][0]
    assert found.reserved_job_id is None
    stored = Job.objects.get(pk=job.pk)
    assert signing.verify(stored, stored.signature) and list(stored.nodes.all()) == [local_node]
    with stubbed_broker(), django_assert_num_queries(2):  # the id taken: one reserved anew
        again = actions.launch(playbook="echo.yml", nodes=found, nodes_loaded=True)
    assert again.pk > job.pk


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="prepared statements")
@pytest.mark.django_db(transaction=True)
def test_a_launchs_statements_are_prepared_once_per_connection_whatever_the_node_count(
    local_node,
):
    """The server parses and plans the nodes' read and the INSERT once per connection."""
    others = [NodeFactory(connection=local_node.connection) for _ in range(3)]
    for count in (1, 2, 4, 1):
        named = actions.nodes_named([node.name for node in [local_node, *others][:count]])
        with stubbed_broker():
            actions.launch(playbook="echo.yml", nodes=named, nodes_loaded=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    reads = [sql for sql in prepared if "FROM nodes_node n" in sql]
    inserts = [sql for sql in prepared if sql.startswith('WITH job AS (INSERT INTO "jobs_job"')]
    assert (len(reads), len(inserts)) == (1, 1), prepared
    assert Job.objects.count() == 4


def test_queue_comes_from_the_nodes():
    group = NodeGroup.objects.create(name="site-b", queue="site-b")
    nodes = [NodeFactory(group=group), NodeFactory(group=group)]
    with stubbed_broker():
        job = actions.launch(playbook="echo.yml", nodes=nodes)
    assert job.queue == "site-b"
    assert actions.routing_queue([nodes[0], NodeFactory(queue="other")]) == "default"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"playbook": "nope.yml"}, "playbook"),
        ({"playbook": "../../etc/passwd.yml"}, "playbook"),
        ({"playbook": "echo.yml", "limit": "no-such-node"}, "limit"),
        ({"playbook": "echo.yml", "extra_vars": ["a", "list"]}, "extra_vars"),
        ({"playbook": "echo.yml", "extra_vars": {"bad name": 1}}, "extra_vars"),
    ],
)
def test_bad_input_is_refused_and_leaves_no_row(local_node, kwargs, field):
    with pytest.raises(PortalError) as error:
        actions.launch(nodes=[local_node], **kwargs)
    assert error.value.field == field
    assert not Job.objects.exists()


def test_a_playbook_is_what_its_name_resolves_to_inside_playbooks(settings, tmp_path):
    """A symlink may name a playbook inside playbooks/ (the path is the real file's), never
    one outside it; nor may a directory be a playbook."""
    inside, outside = tmp_path / "playbooks", tmp_path / "elsewhere"
    (inside / "sub.yml").mkdir(parents=True)
    outside.mkdir()
    (inside / "real.yml").write_text("[]\n")
    (outside / "secret.yml").write_text("[]\n")
    (inside / "alias.yml").symlink_to(inside / "real.yml")
    (inside / "escape.yml").symlink_to(outside / "secret.yml")
    (tmp_path / "link").symlink_to(inside)
    settings.PLAYBOOKS_DIR = tmp_path / "link"  # a symlinked root is followed
    assert resolve_playbook("alias.yml") == inside / "real.yml"
    for name in ("escape.yml", "sub.yml", "../elsewhere/secret.yml", "missing.yml"):
        with pytest.raises(PortalError) as error:
            resolve_playbook(name)
        assert error.value.field == "playbook", name


def test_a_launch_remembers_a_playbook_it_resolved_while_its_file_is_there(settings, tmp_path):
    """The launch's check resolves a name once per process; the worker's resolves it again,
    so a playbook turned into a symlink to outside playbooks/ since never runs."""
    root, outside = tmp_path / "playbooks", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "a.yml").write_text("[]\n")
    (outside / "secret.yml").write_text("[]\n")
    settings.PLAYBOOKS_DIR = root
    check_playbook("a.yml")
    with mock.patch("portal.jobs.playbooks.os.path.realpath", side_effect=AssertionError):
        check_playbook("a.yml")  # remembered: no path resolved again
    (root / "a.yml").unlink()
    with pytest.raises(PortalError) as error:
        check_playbook("a.yml")  # gone: resolved again, and refused
    assert error.value.code == "unknown_playbook"
    (root / "a.yml").symlink_to(outside / "secret.yml")
    with pytest.raises(PortalError):
        check_playbook("a.yml")
    (root / "a.yml").unlink()
    (root / "a.yml").write_text("[]\n")
    check_playbook("a.yml")
    (root / "a.yml").unlink()
    (root / "a.yml").symlink_to(outside / "secret.yml")
    check_playbook("a.yml")  # the launch's check still remembers the path it resolved...
    with pytest.raises(PortalError):
        resolve_playbook("a.yml")  # ...and the worker's refuses it


def test_node_without_credential_is_refused():
    node = NodeFactory(credential=None)
    with pytest.raises(PortalError, match="no credential"):
        actions.launch(playbook="echo.yml", nodes=[node])
    assert not Job.objects.exists()


def test_sensitive_vars_are_stored_encrypted_not_in_extra_vars(local_node):
    with stubbed_broker():
        job = actions.launch(
            playbook="secret.yml",
            action="tests.recorded",
            nodes=[local_node],
            extra_vars={"api_password": "pa55-word-xyz", "out_file": "/x"},
        )
    assert job.extra_vars == {"out_file": "/x"}
    assert job.secrets() == {"api_password": "pa55-word-xyz"}
    assert job.sensitive_names == ["api_password"]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_vars, extra_vars FROM jobs_job WHERE id=%s", [job.pk])
        assert "pa55-word-xyz" not in str(cursor.fetchone())


def test_altered_job_is_refused_and_recorded(local_node):
    with stubbed_broker():
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    Job.objects.filter(pk=job.pk).update(playbook="fail.yml")  # tampering in the database
    actions.execute(job.pk, job.signature, worker="w")
    job.refresh_from_db()
    assert job.status == JobStatus.REFUSED and "signature" in job.reason


@pytest.mark.django_db(transaction=True)
def test_a_message_without_the_jobs_signature_is_dropped_and_the_job_still_runs(local_node):
    # Forged, or left in a shared broker by another database whose job had the same id.
    with stubbed_broker():
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    job.refresh_from_db()
    assert job.status == JobStatus.DISPATCHED
    assert actions.execute(job.pk, "forged-signature", worker="w") is None
    actions.execute(job.pk, "", worker="w")
    job.refresh_from_db()
    assert job.status == JobStatus.DISPATCHED and job.reason == ""  # left alone
    actions.execute(job.pk, job.signature, worker="w")  # the job's own message
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason


def test_cancel_pending_and_409_on_finished(local_node):
    with stubbed_broker():
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    actions.cancel(job)
    assert job.status == JobStatus.CANCELED
    from portal.core.errors import Conflict

    with pytest.raises(Conflict, match="already ended"):
        actions.cancel(job)


@pytest.mark.django_db(transaction=True)
def test_a_worker_holding_a_message_before_its_row_waits_for_the_row(local_node, settings):
    # The API's launch publishes before it writes the row: the worker looks again until the
    # row is there, then runs the job as usual.
    settings.JOB_MESSAGE_ROW_WAIT = 10
    job_id = actions.reserve_job_id() if connection.vendor == "postgresql" else 10_000
    found = []

    def worker():  # its own thread, as a worker is its own process, with its own connection
        try:
            found.append(actions.job_named_by(job_id))
        finally:
            connection.close()

    looking = threading.Thread(target=worker)
    looking.start()
    time.sleep(0.3)
    assert looking.is_alive()  # still looking: the row is not there yet
    Job.objects.create(
        pk=job_id,
        playbook="echo.yml",
        queue="default",
        timeout=60,
        idle_timeout=60,
        action="jobs.adhoc",
    )
    looking.join(timeout=5)
    assert [job.pk for job in found] == [job_id]


def test_a_message_for_a_job_that_never_comes_is_dropped_after_the_wait(settings, caplog):
    settings.JOB_MESSAGE_ROW_WAIT = 0.2
    started = time.monotonic()
    assert actions.execute(987_654, "signature", worker="w") is None
    assert 0.2 <= time.monotonic() - started < 3
    assert "message for unknown job 987654 dropped" in caplog.text


@pytest.mark.parametrize("filled", [False, True], ids=["bare", "every-field"])
def test_the_launch_insert_sends_what_the_orms_insert_sends(filled, local_node):
    # actions._insert_rows compiles its statement once and prepares each job's values itself.
    from django.db.models import sql

    from tests.factories import CustomerFactory

    job = Job(playbook="echo.yml", queue="default", timeout=60, idle_timeout=60)
    if filled:
        customer = CustomerFactory()
        job = Job(
            playbook="echo.yml",
            queue="site-é",
            timeout=60,
            idle_timeout=7,
            extra_vars={"name": "ünï", "nested": {"list": [1, 2.5, None, True]}},
            secret_vars='{"token": "x"}',
            sensitive_names=["token"],
            check_mode=True,
            customer=customer,
            not_before=timezone.now() + timedelta(minutes=5),
            attempt=2,
            **actions._target_fields(customer),
        )
    job.pk = 4242
    fields = Job._meta.local_concrete_fields
    insert = sql.InsertQuery(Job)
    insert.insert_values(fields, [job])
    [(statement, params)] = insert.get_compiler(connection=connection).as_sql()
    readable = [_readable(field, value) for field, value in zip(fields, params, strict=True)]
    mine = [
        _readable(f, value) for f, value in zip(fields, actions._insert_params(job), strict=True)
    ]
    assert mine == readable
    if connection.vendor == "postgresql":
        assert actions._insert_rows_sql(job).startswith(f"WITH job AS ({statement} RETURNING id)")


def _readable(field, value):
    """A prepared value as text; an encrypted one as what it decrypts to (a new IV each time)."""
    if hasattr(field, "from_db_value") and isinstance(value, str):
        value = field.from_db_value(value, None, connection)
    return str(value)

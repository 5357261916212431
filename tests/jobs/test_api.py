"""The jobs API (/api/jobs/): who sees and launches what, events, cancel and relaunch."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from portal.core.tenancy import OPERATORS_GROUP, MembershipRole
from portal.jobs import actions, signing
from portal.jobs.api import serializers
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from portal.nodes.models import Node, NodeGroup
from tests.factories import CustomerFactory, MembershipFactory, NodeFactory, UserFactory
from tests.helpers import playbook_span, stubbed_broker

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"status", "code", "message", "errors"}


# --- helpers ------------------------------------------------------------------------------


def launch(**kwargs) -> Job:
    """A job as a domain action launches it (to the stubbed broker: nothing is sent)."""
    with stubbed_broker():
        return actions.launch(**{"playbook": "echo.yml", **kwargs})


def end(job: Job, status: str, **fields) -> Job:
    Job.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now(), **fields)
    job.refresh_from_db()
    return job


def make_operator():
    user = UserFactory()
    # get_or_create: transactional tests flush the group the data migration created.
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    return user


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return sorted(item["id"] for item in response.json()["results"])


def assert_error(response, status: int, field: str | None, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS and body["status"] == status
    assert body["errors"] and set(body["errors"][0]) == {"field", "message", "code"}
    assert body["errors"][0]["field"] == field, body
    if field:
        assert body["message"].startswith(f"{field}: ")
    if code:
        assert body["code"] == code
    return body


def run_now(job: Job) -> Job:
    """Run a launched job synchronously, as the worker would."""
    actions.execute(job.pk, job.signature, worker="test-worker")
    job.refresh_from_db()
    return job


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The factories set a password; the default hasher costs ~0.25 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def operator(db):
    return make_operator()


@pytest.fixture
def operator_api(user_api, operator):
    return user_api(operator)


@pytest.fixture
def world(local_node):
    """Two customers with a job each, an operator's ad-hoc job, and the people around them."""
    customer_a, customer_b = CustomerFactory(), CustomerFactory()
    return SimpleNamespace(
        customer_a=customer_a,
        customer_b=customer_b,
        job_a=launch(customer=customer_a),
        job_b=end(launch(playbook="fail.yml", customer=customer_b), JobStatus.FAILED, rc=2),
        adhoc=launch(),
        owner_a=MembershipFactory(customer=customer_a, role=MembershipRole.OWNER).user,
        member_a=MembershipFactory(customer=customer_a, role=MembershipRole.MEMBER).user,
        outsider=UserFactory(),
    )


# --- list and detail ----------------------------------------------------------------------


def test_operators_and_admins_see_every_job(world, operator_api, admin_api):
    every = sorted([world.job_a.pk, world.job_b.pk, world.adhoc.pk])
    assert ids(operator_api.get("/api/jobs/")) == every
    assert ids(admin_api.get("/api/jobs/")) == every
    for job in (world.job_a, world.job_b, world.adhoc):
        assert operator_api.get(f"/api/jobs/{job.pk}/").status_code == 200


def test_customer_member_sees_only_their_customers_jobs(world, user_api):
    for user in (world.owner_a, world.member_a):
        client = user_api(user)
        assert ids(client.get("/api/jobs/")) == [world.job_a.pk]
        detail = client.get(f"/api/jobs/{world.job_a.pk}/")
        assert detail.status_code == 200
        assert detail.json()["customer"] == world.customer_a.pk
        for hidden in (world.job_b, world.adhoc):  # another customer's, an operator's
            assert_error(client.get(f"/api/jobs/{hidden.pk}/"), 404, None, "not_found")
    assert ids(user_api(world.outsider).get("/api/jobs/")) == []


def test_anonymous_gets_nothing(world, api):
    assert api.get("/api/jobs/").status_code in (401, 403)
    assert api.get(f"/api/jobs/{world.job_a.pk}/").status_code in (401, 403)


def test_detail_shows_the_run(world, operator_api):
    body = operator_api.get(f"/api/jobs/{world.job_b.pk}/").json()
    assert body["playbook"] == "fail.yml" and body["status"] == "failed" and body["rc"] == 2
    assert body["nodes"] == ["local-1"] and body["customer"] == world.customer_b.pk
    assert "secret_vars" not in body and "signature" not in body


def test_filters_by_status_and_playbook(world, operator_api, user_api):
    assert ids(operator_api.get("/api/jobs/?status=failed")) == [world.job_b.pk]
    assert ids(operator_api.get("/api/jobs/?status=pending")) == sorted(
        [world.job_a.pk, world.adhoc.pk]
    )
    assert ids(operator_api.get("/api/jobs/?playbook=fail.yml")) == [world.job_b.pk]
    assert ids(operator_api.get("/api/jobs/?playbook=echo.yml&status=pending")) == sorted(
        [world.job_a.pk, world.adhoc.pk]
    )
    assert ids(operator_api.get("/api/jobs/?playbook=nope.yml")) == []
    # Filters narrow what a member may see; they never widen it.
    assert ids(user_api(world.member_a).get("/api/jobs/?status=failed")) == []
    assert_error(operator_api.get("/api/jobs/?status=bogus"), 400, "status")


# --- launch -------------------------------------------------------------------------------


def test_operator_launches_a_job(
    operator, operator_api, local_node, django_capture_on_commit_callbacks
):
    with stubbed_broker() as broker, django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = operator_api.post(
            "/api/jobs/",
            {
                "playbook": "echo.yml",
                "nodes": ["local-1"],
                "extra_vars": {"message": "hi"},
                "check_mode": True,
                "timeout": 120,
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    job = Job.objects.get()
    body = response.json()
    assert body["id"] == job.pk and body["nodes"] == ["local-1"]
    assert body["requested_by"] == operator.username
    assert job.playbook == "echo.yml" and job.action == actions.ADHOC
    assert list(job.nodes.all()) == [local_node]
    assert job.extra_vars == {"message": "hi"}
    assert job.requested_by == operator and job.customer is None
    assert job.check_mode and job.timeout == 120
    # Dispatch happened on commit, with the job's signature, to the nodes' queue.
    assert len(callbacks) == 1
    broker.publish.assert_called_once()
    assert broker.publish.call_args.kwargs["args"] == [job.pk, job.signature]
    assert broker.publish.call_args.kwargs["queue"] == job.queue == "default"
    assert job.status == JobStatus.DISPATCHED


def test_launch_with_a_limit_targets_matching_enabled_nodes(operator_api):
    for name in ("web-1", "web-2", "db-1"):
        NodeFactory(name=name)
    NodeFactory(name="web-3", enabled=False)
    with stubbed_broker():
        response = operator_api.post(
            "/api/jobs/", {"playbook": "ping.yml", "limit": "web-*"}, format="json"
        )
    assert response.status_code == 201, response.json()
    assert sorted(response.json()["nodes"]) == ["web-1", "web-2"]
    assert Job.objects.get().limit == "web-*"


# What one launch costs: each statement is a round trip, and a commit a flush to disk. The
# nodes in one read of the fields the launch uses (a field read and not loaded would add a
# query per node) with, when the launch names them, the id the signature covers (read alone
# after a limit's nodes), then, once the message is out, the job (already dispatched) and its
# nodes in one INSERT: no UPDATE for the mark (jobs.actions._publish_then_insert).
LAUNCH_STATEMENTS = {
    "nodes": [
        'SELECT t."key"',  # core/api/authentication.py
        "WITH reserved AS (SELECT nextval(",  # actions.nodes_named
        'WITH job AS (INSERT INTO "jobs_job"',
    ],
    "limit": [
        'SELECT t."key"',  # core/api/authentication.py
        'SELECT "nodes_node"."id", "nodes_node"."name"',
        "SELECT nextval(",
        'WITH job AS (INSERT INTO "jobs_job"',
    ],
}


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the PostgreSQL launch path")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"nodes": ["c-2", "c-1", "c-3"]}, LAUNCH_STATEMENTS["nodes"]),
        ({"limit": "site-c"}, LAUNCH_STATEMENTS["limit"]),
    ],
    ids=["nodes", "limit"],
)
def test_one_launch_is_three_statements_or_four_with_a_limit_and_one_publish(api, target, expected):
    group = NodeGroup.objects.create(name="site-c", queue="site-c")
    nodes = [NodeFactory(name=name, group=group) for name in ("c-1", "c-2", "c-3")]
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_operator())}")
    published_after = []

    def publish(task, *args, **kwargs):
        published_after.append(len(queries))

    with (
        stubbed_broker(side_effect=publish) as broker,
        CaptureQueriesContext(connection) as queries,
    ):
        response = api.post("/api/jobs/", {"playbook": "echo.yml", **target}, format="json")
    assert response.status_code == 201, response.json()
    statements = [query["sql"] for query in queries]
    assert len(statements) == len(expected), statements
    for statement, start in zip(statements, expected, strict=True):
        assert statement.startswith(start), (start, statement)
    assert published_after == [len(expected) - 1]  # the message, then the row
    broker.publish.assert_called_once()
    body = response.json()
    assert (body["nodes"], body["queue"], body["status"]) == (
        ["c-1", "c-2", "c-3"],
        "site-c",
        "dispatched",
    )
    job = Job.objects.get()
    assert job.status == JobStatus.DISPATCHED and list(job.nodes.order_by("name")) == nodes
    assert signing.verify(job, job.signature)
    assert broker.publish.call_args.kwargs["args"] == [job.pk, job.signature]


def test_only_operators_launch(world, user_api, api):
    body = {"playbook": "echo.yml", "nodes": ["local-1"]}
    before = Job.objects.count()
    with stubbed_broker() as broker:
        for user in (world.owner_a, world.member_a, world.outsider):
            assert_error(
                user_api(user).post("/api/jobs/", body, format="json"),
                403,
                None,
                "permission_denied",
            )
        assert api.post("/api/jobs/", body, format="json").status_code in (401, 403)
    broker.publish.assert_not_called()
    assert Job.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nodes": ["local-1"]}, "playbook"),
        ({"playbook": "nope.yml", "nodes": ["local-1"]}, "playbook"),
        ({"playbook": "../../etc/passwd.yml", "nodes": ["local-1"]}, "playbook"),
        ({"playbook": "echo.yml", "limit": "no-such-node"}, "limit"),
        ({"playbook": "echo.yml", "nodes": ["local-1"], "limit": "other-*"}, "limit"),
        ({"playbook": "echo.yml", "nodes": ["local-1"], "extra_vars": ["a", "list"]}, "extra_vars"),
        ({"playbook": "echo.yml", "nodes": ["local-1"], "extra_vars": "text"}, "extra_vars"),
        (
            {"playbook": "echo.yml", "nodes": ["local-1"], "extra_vars": {"bad name": 1}},
            "extra_vars",
        ),
        ({"playbook": "echo.yml", "nodes": ["keyless"]}, "nodes"),
        ({"playbook": "echo.yml", "nodes": ["no-such-node"]}, "nodes"),
        ({"playbook": "echo.yml", "nodes": []}, "nodes"),
        ({"playbook": "echo.yml", "nodes": ["local-1"], "timeout": 0}, "timeout"),
    ],
    ids=[
        "missing-playbook",
        "unknown-playbook",
        "path-traversal",
        "limit-no-match",
        "limit-outside-nodes",
        "vars-list",
        "vars-string",
        "vars-bad-name",
        "no-credential",
        "unknown-node",
        "empty-nodes",
        "zero-timeout",
    ],
)
def test_bad_launch_is_400_naming_the_field_and_leaves_no_job(
    operator_api, local_node, body, field, django_capture_on_commit_callbacks
):
    NodeFactory(name="keyless", credential=None)
    with stubbed_broker() as broker, django_capture_on_commit_callbacks(execute=True):
        response = operator_api.post("/api/jobs/", body, format="json")
    assert_error(response, 400, field)
    assert not Job.objects.exists()
    broker.publish.assert_not_called()


def test_launches_in_one_thread_share_nothing_of_each_other(operator_api, local_node):
    """The launch's serializer is reused within a thread: no request sees another's data or
    errors (a bad body, then a good one, then a good one with fewer fields, then bad again)."""
    bad = {"playbook": "echo.yml", "nodes": ["local-1"], "timeout": 0, "extra_vars": {"a": 1}}
    full = {"playbook": "echo.yml", "nodes": ["local-1"], "extra_vars": {"a": 1}, "timeout": 9}
    bare = {"playbook": "echo.yml", "nodes": ["local-1"]}
    with stubbed_broker():
        assert_error(operator_api.post("/api/jobs/", bad, format="json"), 400, "timeout")
        first = operator_api.post("/api/jobs/", full, format="json").json()
        second = operator_api.post("/api/jobs/", bare, format="json").json()
        body = operator_api.post("/api/jobs/", {"nodes": ["local-1"]}, format="json")
    assert (first["extra_vars"], first["timeout"]) == ({"a": 1}, 9)
    assert second["extra_vars"] == {} and second["timeout"] != 9
    assert_error(body, 400, "playbook")
    assert body.json()["errors"] == [
        {"field": "playbook", "message": "This field is required.", "code": "required"}
    ]
    kept = vars(serializers._per_thread.launch_serializer)
    assert not {"initial_data", "_validated_data", "_errors"} & set(kept)  # nothing of a body


def test_no_credential_error_is_explicit(operator_api):
    NodeFactory(name="keyless", credential=None)
    response = operator_api.post(
        "/api/jobs/", {"playbook": "echo.yml", "nodes": ["keyless"]}, format="json"
    )
    body = assert_error(response, 400, "nodes", "no_credential")
    assert "keyless" in body["errors"][0]["message"]


# --- events -------------------------------------------------------------------------------


def add_events(job: Job, counters) -> None:
    JobEvent.objects.bulk_create(
        JobEvent(
            job=job,
            counter=n,
            event="runner_on_ok",
            host="local-1",
            task=f"step {n}",
            stdout=f"ok {n}",
            created=timezone.now(),
        )
        for n in counters
    )


def counters(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [event["counter"] for event in response.json()["results"]]


def test_events_are_ordered_by_counter_and_resumable(world, operator_api):
    job = end(world.job_a, JobStatus.SUCCESSFUL)
    add_events(job, [3, 1, 5, 2, 4])  # stored out of order
    url = f"/api/jobs/{job.pk}/events/"
    assert counters(operator_api.get(url)) == [1, 2, 3, 4, 5]
    assert counters(operator_api.get(url + "?after=2")) == [3, 4, 5]
    assert counters(operator_api.get(url + "?after=0")) == [1, 2, 3, 4, 5]
    assert counters(operator_api.get(url + "?after=5")) == []
    assert counters(operator_api.get(url + "?after=99999999999999999999")) == []  # > bigint
    first = operator_api.get(url).json()["results"][0]
    assert first["event"] == "runner_on_ok" and first["host"] == "local-1"
    assert first["stdout"] == "ok 1" and first["task"] == "step 1"


def test_events_are_paginated(world, operator_api):
    add_events(world.job_a, range(1, 8))
    page = operator_api.get(f"/api/jobs/{world.job_a.pk}/events/?page_size=3").json()
    assert page["count"] == 7 and [e["counter"] for e in page["results"]] == [1, 2, 3]
    seen = [e["counter"] for e in page["results"]]
    while page["next"]:
        page = operator_api.get(page["next"]).json()
        seen += [e["counter"] for e in page["results"]]
    assert seen == list(range(1, 8))
    after = operator_api.get(f"/api/jobs/{world.job_a.pk}/events/?after=5&page_size=1").json()
    assert after["count"] == 2 and after["results"][0]["counter"] == 6


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "%C2%B2", ""])
def test_bad_after_is_400_naming_it(world, operator_api, after):
    add_events(world.job_a, [1])
    response = operator_api.get(f"/api/jobs/{world.job_a.pk}/events/?after={after}")
    assert_error(response, 400, "after")


def test_events_follow_job_visibility(world, user_api):
    add_events(world.job_a, [1, 2])
    add_events(world.job_b, [1])
    member = user_api(world.member_a)
    assert counters(member.get(f"/api/jobs/{world.job_a.pk}/events/")) == [1, 2]
    assert_error(member.get(f"/api/jobs/{world.job_b.pk}/events/"), 404, None)
    assert_error(user_api(world.outsider).get(f"/api/jobs/{world.job_a.pk}/events/"), 404, None)


@pytest.mark.django_db(transaction=True)
def test_events_of_a_real_run(local_node, user_api):
    operator_api = user_api(make_operator())
    with stubbed_broker():
        launched = operator_api.post(
            "/api/jobs/",
            {
                "playbook": "many.yml",
                "nodes": ["local-1"],
                "extra_vars": {"steps": 5},
            },
            format="json",
        )
    assert launched.status_code == 201, launched.json()
    job = run_now(Job.objects.get(pk=launched.json()["id"]))
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    url = f"/api/jobs/{job.pk}/events/"

    page = operator_api.get(url + "?page_size=4").json()
    assert page["count"] == job.event_count > 5
    events = page["results"]
    while page["next"]:
        page = operator_api.get(page["next"]).json()
        events += page["results"]
    assert [e["counter"] for e in events] == list(range(1, job.event_count + 1))
    names = playbook_span([e["event"] for e in events])
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats", events
    assert sum(e["event"] == "runner_item_on_ok" for e in events) == 5

    tail = counters(operator_api.get(url + f"?after={job.event_count - 2}"))
    assert tail == [job.event_count - 1, job.event_count]
    detail = operator_api.get(f"/api/jobs/{job.pk}/").json()
    assert detail["status"] == "successful" and detail["event_count"] == job.event_count
    assert detail["host_summary"]["local-1"]["ok"] >= 1


# --- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.DISPATCHED])
def test_cancel_a_job_that_has_not_started(world, operator, operator_api, status):
    Job.objects.filter(pk=world.adhoc.pk).update(status=status)
    response = operator_api.post(f"/api/jobs/{world.adhoc.pk}/cancel/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "canceled" and body["cancel_requested"] is True
    assert operator.username in body["reason"]
    job = Job.objects.get(pk=world.adhoc.pk)
    assert job.status == JobStatus.CANCELED and job.finished_at is not None


def test_cancel_a_running_job_asks_the_worker(world, operator_api):
    Job.objects.filter(pk=world.adhoc.pk).update(status=JobStatus.RUNNING)
    response = operator_api.post(f"/api/jobs/{world.adhoc.pk}/cancel/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "running" and response.json()["cancel_requested"]
    assert Job.objects.get(pk=world.adhoc.pk).cancel_requested


@pytest.mark.parametrize("status", [JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELED])
def test_cancel_a_finished_job_is_409(world, operator_api, status):
    job = end(world.adhoc, status)
    response = operator_api.post(f"/api/jobs/{job.pk}/cancel/")
    body = assert_error(response, 409, "status", "already_finished")
    assert "already ended" in body["errors"][0]["message"] and status in body["message"]
    assert Job.objects.get(pk=job.pk).status == status


def test_only_an_owner_of_the_jobs_customer_may_cancel(world, user_api):
    url = f"/api/jobs/{world.job_a.pk}/cancel/"
    body = assert_error(user_api(world.member_a).post(url), 403, None, "permission_denied")
    assert "owner" in body["message"]
    assert_error(user_api(world.outsider).post(url), 404, None)
    assert_error(user_api(world.owner_a).post(f"/api/jobs/{world.job_b.pk}/cancel/"), 404, None)
    assert_error(user_api(world.owner_a).post(f"/api/jobs/{world.adhoc.pk}/cancel/"), 404, None)
    assert Job.objects.get(pk=world.job_a.pk).status == JobStatus.PENDING

    response = user_api(world.owner_a).post(url)
    assert response.status_code == 200, response.json()
    assert Job.objects.get(pk=world.job_a.pk).status == JobStatus.CANCELED


# --- relaunch -----------------------------------------------------------------------------


@pytest.fixture
def failed_job(local_node):
    """A job over three nodes: one failed, one unreachable, one fine."""
    NodeFactory(name="remote-1")
    NodeFactory(name="remote-2")
    job = launch(
        playbook="ping.yml",
        nodes=list(Node.objects.all()),
        extra_vars={"message": "again"},
        customer=CustomerFactory(),
    )
    return end(
        job,
        JobStatus.FAILED,
        rc=2,
        host_summary={
            "local-1": {"ok": 0, "failures": 1, "unreachable": 0},
            "remote-1": {"ok": 0, "failures": 0, "unreachable": 1},
            "remote-2": {"ok": 1, "failures": 0, "unreachable": 0},
        },
    )


def test_relaunch_failed_only_limits_to_the_failed_hosts(
    failed_job, operator, operator_api, django_capture_on_commit_callbacks
):
    with stubbed_broker() as broker, django_capture_on_commit_callbacks(execute=True):
        response = operator_api.post(
            f"/api/jobs/{failed_job.pk}/relaunch/", {"failed_only": True}, format="json"
        )
    assert response.status_code == 201, response.json()
    new = Job.objects.get(pk=response.json()["id"])
    assert new.pk != failed_job.pk
    assert new.limit == "local-1,remote-1"
    assert sorted(n.name for n in new.nodes.all()) == ["local-1", "remote-1"]
    assert sorted(response.json()["nodes"]) == ["local-1", "remote-1"]
    assert new.playbook == failed_job.playbook and new.extra_vars == {"message": "again"}
    assert new.customer == failed_job.customer and new.requested_by == operator
    assert new.status == JobStatus.DISPATCHED
    broker.publish.assert_called_once()
    assert broker.publish.call_args.kwargs["args"] == [new.pk, new.signature]


def test_relaunch_everything(failed_job, operator_api):
    with stubbed_broker():
        response = operator_api.post(f"/api/jobs/{failed_job.pk}/relaunch/", {}, format="json")
    assert response.status_code == 201, response.json()
    new = Job.objects.get(pk=response.json()["id"])
    assert new.limit == "" and new.nodes.count() == 3


def test_relaunch_failed_only_without_failed_hosts_is_409(world, operator_api):
    job = end(
        world.adhoc,
        JobStatus.SUCCESSFUL,
        host_summary={"local-1": {"ok": 1, "failures": 0, "unreachable": 0}},
    )
    before = Job.objects.count()
    response = operator_api.post(
        f"/api/jobs/{job.pk}/relaunch/", {"failed_only": True}, format="json"
    )
    assert_error(response, 409, "hosts", "conflict")
    assert Job.objects.count() == before


def test_relaunch_is_for_operators_only(world, failed_job, user_api):
    owner = MembershipFactory(customer=failed_job.customer).user
    before = Job.objects.count()
    assert_error(
        user_api(owner).post(
            f"/api/jobs/{failed_job.pk}/relaunch/", {"failed_only": True}, format="json"
        ),
        403,
        None,
    )
    assert_error(user_api(world.owner_a).post(f"/api/jobs/{world.job_a.pk}/relaunch/"), 403, None)
    assert Job.objects.count() == before


def test_relaunch_bad_option_is_400(failed_job, operator_api):
    response = operator_api.post(
        f"/api/jobs/{failed_job.pk}/relaunch/", {"failed_only": "perhaps"}, format="json"
    )
    assert_error(response, 400, "failed_only")


@pytest.mark.django_db(transaction=True)
def test_relaunch_after_a_real_failure(local_node, user_api):
    NodeFactory(name="ghost", address="127.0.0.1", ssh_port=1)  # nothing listens there
    operator_api = user_api(make_operator())
    with stubbed_broker():
        launched = operator_api.post("/api/jobs/", {"playbook": "ping.yml"}, format="json")
    assert launched.status_code == 201, launched.json()
    job = run_now(Job.objects.get(pk=launched.json()["id"]))
    assert job.status == JobStatus.FAILED, job.reason
    assert job.host_summary["ghost"]["unreachable"] == 1
    assert not job.host_summary["local-1"].get("failures")
    with stubbed_broker():
        response = operator_api.post(
            f"/api/jobs/{job.pk}/relaunch/", {"failed_only": True}, format="json"
        )
    assert response.status_code == 201, response.json()
    assert response.json()["limit"] == "ghost" and response.json()["nodes"] == ["ghost"]

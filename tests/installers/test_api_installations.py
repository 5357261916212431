"""/api/installations/: install (rows, one job, generated secrets once), 400s and 404s before
anything is written, reads and acts by role, 409s by status."""

import pytest
from django.db import connection

from portal.installers.choices import InstallationStatus as S
from portal.installers.models import Installation, InstallationEvent
from portal.jobs.models import Job
from tests.factories import AdminFactory, MembershipFactory, NodeFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/installations/"
GOOD = {"server_name": "example.org"}


@pytest.fixture
def operator_api(api):
    api.force_authenticate(AdminFactory())
    return api


def install(client, nodes, installer="web-server", inputs=None, **more):
    body = {
        "installer": installer,
        "nodes": [n.pk for n in nodes],
        "inputs": GOOD if inputs is None else inputs,
    }
    return client.post(URL, {**body, **more}, format="json")


def test_install_makes_a_row_per_node_one_job_and_shows_the_generated_password_once(
    operator_api, broker, django_capture_on_commit_callbacks
):
    nodes = [NodeFactory(name="web-1"), NodeFactory(name="web-2")]
    with django_capture_on_commit_callbacks(execute=True):
        response = install(operator_api, nodes, keep_on_failure=True)
    assert response.status_code == 202, response.json()
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    job = Job.objects.get()
    assert body["job"] == job.pk and set(job.nodes.all()) == set(nodes)
    assert [item["node_name"] for item in body["installations"]] == ["web-1", "web-2"]
    installations = Installation.objects.order_by("node__name")
    assert [i.pk for i in installations] == [item["id"] for item in body["installations"]]
    for installation in installations:
        assert installation.status == S.INSTALLING and installation.current_job == job
        assert installation.keep_on_failure and installation.requested_by.is_staff
        assert installation.inputs["server_name"] == "example.org"
    assert [(name, args[0]) for name, args in broker.published()] == [("jobs.run", job.pk)]
    password = body["generated"]["admin_password"]
    assert len(password) >= 12

    assert password not in str(list(Installation.objects.values_list("inputs", flat=True)))
    assert password not in str(list(InstallationEvent.objects.values_list("reason", flat=True)))
    assert password not in str(job.extra_vars)
    with connection.cursor() as cursor:  # the encrypted column as stored
        cursor.execute("SELECT secret_vars FROM jobs_job WHERE id = %s", [job.pk])
        assert password not in str(cursor.fetchone())
    for path in (f"{URL}{installations[0].pk}/", URL, f"/api/jobs/{job.pk}/"):
        assert password not in operator_api.get(path).content.decode()


def test_a_given_password_is_not_echoed(operator_api, broker):
    response = install(operator_api, [NodeFactory()], inputs={**GOOD, "admin_password": "p" * 14})
    assert response.status_code == 202 and response.json()["generated"] == {}
    assert "p" * 14 not in response.content.decode()


@pytest.mark.parametrize(
    ("inputs", "field", "rule"),
    [
        ({"server_name": "Bad Name!"}, "server_name", "pattern"),
        ({}, "server_name", "required"),
        ({**GOOD, "workers": 65}, "workers", "max_value"),
        ({**GOOD, "http_port": 70000}, "http_port", "type"),
        ({**GOOD, "workers": "many"}, "workers", "type"),
        ({**GOOD, "nope": 1}, "nope", "unknown"),
        ({**GOOD, "tls_enabled": True, "certificate": "x" * 20}, "tls_key", "required"),
    ],
)
def test_a_bad_input_is_a_400_naming_it_and_the_rule_with_no_row_and_no_job(
    operator_api, broker, inputs, field, rule
):
    response = install(operator_api, [NodeFactory()], inputs=inputs)
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert {"field": field, "code": rule} in [
        {"field": e["field"], "code": e["code"]} for e in errors
    ], errors
    assert not Installation.objects.exists() and not Job.objects.exists()
    assert broker.published() == []


@pytest.mark.parametrize("installer", ["nope", "../web-server", "../../etc/passwd", "", 7])
def test_an_installer_not_in_the_catalogue_is_refused_before_anything(
    operator_api, broker, installer
):
    response = install(operator_api, [NodeFactory()], installer=installer)
    assert response.status_code in (400, 404)
    assert response.json()["errors"][0]["field"] == "installer"
    if isinstance(installer, str) and installer:
        assert response.status_code == 404
    assert not Installation.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("nodes", [[], [999_999], ["x"], [0], list(range(1, 300))], ids=str)
def test_bad_nodes_are_a_400_naming_nodes(operator_api, broker, nodes):
    response = operator_api.post(
        URL, {"installer": "web-server", "nodes": nodes, "inputs": GOOD}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("nodes")
    assert not Job.objects.exists()


def test_a_status_in_the_body_is_refused(operator_api, broker):
    response = install(operator_api, [NodeFactory()], status="installed")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "status"


def test_installing_twice_on_a_node_is_a_409(operator_api, broker):
    node = NodeFactory()
    assert install(operator_api, [node]).status_code == 202
    again = install(operator_api, [node])
    assert again.status_code == 409 and again.json()["code"] == "already_installed"
    assert Job.objects.count() == 1


@pytest.fixture
def installed(operator_api, broker):
    """An installation moved to installed (as a finished job with exit 0 would)."""
    install(operator_api, [NodeFactory(name="db-1")])
    installation = Installation.objects.get()
    installation.move(S.INSTALLED, reason="exit 0")
    return installation


def test_list_filters_and_detail_with_history_and_jobs(operator_api, installed):
    other = NodeFactory()
    assert install(operator_api, [other], installer="minimal", inputs={}).status_code == 202
    rows = operator_api.get(URL).json()["results"]
    assert len(rows) == 2
    by_node = operator_api.get(URL, {"node": installed.node_id}).json()["results"]
    assert [row["id"] for row in by_node] == [installed.pk]
    assert operator_api.get(URL, {"installer": "minimal"}).json()["results"][0]["node"] == other.pk
    assert [r["id"] for r in operator_api.get(URL, {"status": "installed"}).json()["results"]] == [
        installed.pk
    ]
    assert operator_api.get(URL, {"status": "nope"}).status_code == 400
    assert operator_api.get(URL, {"node": 999_999}).json()["results"] == []
    detail = operator_api.get(f"{URL}{installed.pk}/").json()
    assert [h["status"] for h in detail["history"]] == ["installed", "installing"]
    assert detail["history"][1]["by"] == installed.requested_by.username
    assert [j["id"] for j in detail["jobs"]] == [installed.current_job_id]
    assert detail["requested_by"] == installed.requested_by.username


def test_reinstall_upgrade_retry_uninstall_by_status(operator_api, installed, broker):
    def act(name, body=None):
        return operator_api.post(f"{URL}{installed.pk}/{name}/", body or {}, format="json")

    for name in ("retry", "upgrade"):
        refused = act(name)
        assert refused.status_code == 409, name
        assert str(installed.pk) in refused.json()["message"]
    reinstall = act("reinstall", {"inputs": {"workers": 4}})
    assert reinstall.status_code == 202
    assert reinstall.json()["generated"] == {}  # the installed password is kept
    installed.refresh_from_db()
    assert installed.status == S.INSTALLING and installed.inputs["workers"] == 4
    busy = act("uninstall")
    assert busy.status_code == 409 and busy.json()["code"] == "invalid_status"
    bad = act("reinstall", {"inputs": {"workers": 0}})
    assert bad.status_code == 409  # the status is checked first
    installed.move(S.INSTALLED, reason="exit 0")
    bad = act("reinstall", {"inputs": {"workers": 0}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "workers"
    assert act("uninstall").status_code == 202
    installed.refresh_from_db()
    assert installed.status == S.UNINSTALLING
    assert Job.objects.count() == 3


def test_later_runs_show_no_generated_password_and_pass_a_given_one(operator_api, broker):
    install(operator_api, [NodeFactory()])
    installation = Installation.objects.get()
    first = installation.current_job
    assert first.secrets()["installer_run_secrets"].keys() == {"ADMIN_PASSWORD"}
    for name, status, inputs in (
        ("reinstall", S.INSTALLED, {}),
        ("retry", S.NEEDS_OPERATOR, {"admin_password": ""}),  # empty: not given
    ):
        installation.refresh_from_db()
        installation.move(status, reason="as a finished job would")
        response = operator_api.post(
            f"{URL}{installation.pk}/{name}/", {"inputs": inputs}, format="json"
        )
        assert response.status_code == 202, name
        assert response.json()["generated"] == {}
        assert Job.objects.get(pk=response.json()["job"]).secrets() == {}
    installation.refresh_from_db()
    installation.move(S.INSTALLED, reason="as a finished job would")
    rotated = operator_api.post(
        f"{URL}{installation.pk}/reinstall/",
        {"inputs": {"admin_password": "rotated on purpose"}},
        format="json",
    )
    assert rotated.status_code == 202 and rotated.json()["generated"] == {}
    assert Job.objects.get(pk=rotated.json()["job"]).secrets() == {
        "installer_run_secrets": {"ADMIN_PASSWORD": "rotated on purpose"}
    }
    short = operator_api.post(
        f"{URL}{installation.pk}/retry/", {"inputs": {"admin_password": "short"}}, format="json"
    )
    assert short.status_code == 409  # installing: the status is checked first
    installation.refresh_from_db()
    installation.move(S.FAILED, reason="as a finished job would")
    short = operator_api.post(
        f"{URL}{installation.pk}/retry/", {"inputs": {"admin_password": "short"}}, format="json"
    )
    assert short.status_code == 400 and short.json()["errors"][0]["field"] == "admin_password"
    assert "admin_password" not in Installation.objects.get().inputs


def test_another_customer_sees_nothing_and_cannot_act(installed, user_api, broker):
    member = MembershipFactory().user
    client = user_api(member)
    assert client.get(URL).json()["results"] == []
    assert client.get(URL, {"node": installed.node_id}).json()["results"] == []
    assert client.get(f"{URL}{installed.pk}/").status_code == 404
    for name in ("reinstall", "upgrade", "retry", "uninstall"):
        assert client.post(f"{URL}{installed.pk}/{name}/", {}, format="json").status_code == 404
    refused = install(client, [installed.node], installer="minimal", inputs={})
    assert refused.status_code == 403
    assert Job.objects.count() == 1


def test_a_customer_reads_its_own_installations_but_cannot_act(installed, user_api, broker):
    membership = MembershipFactory()
    Installation.objects.filter(pk=installed.pk).update(customer=membership.customer)
    client = user_api(membership.user)
    assert [row["id"] for row in client.get(URL).json()["results"]] == [installed.pk]
    assert client.get(f"{URL}{installed.pk}/").status_code == 200
    assert client.post(f"{URL}{installed.pk}/reinstall/", {}, format="json").status_code == 403


def test_anonymous_is_401(api):
    assert api.get(URL).status_code == 401
    assert api.post(URL, {}, format="json").status_code == 401


def test_an_operator_who_is_not_staff_may_install(api, broker):
    from django.contrib.auth.models import Group

    user = UserFactory()
    user.groups.add(Group.objects.get_or_create(name="operators")[0])
    api.force_authenticate(user)
    assert install(api, [NodeFactory()], installer="minimal", inputs={}).status_code == 202
    assert len(api.get(URL).json()["results"]) == 1

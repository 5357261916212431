"""The installations' admin: list, detail with history and jobs, the operators' actions and
the install page (the generated form; a generated password shown once, stored nowhere)."""

import pytest
from django.urls import reverse

from portal.installers.choices import InstallationStatus as S
from portal.installers.models import Installation, InstallationEvent
from portal.jobs.models import Job
from tests.factories import NodeFactory, UserFactory

pytestmark = pytest.mark.django_db
LIST = reverse("admin:installers_installation_changelist")
INSTALL = reverse("admin:installers_installation_install")


def install_page(client, data, installer="web-server"):
    return client.post(f"{INSTALL}?installer={installer}", data)


@pytest.fixture
def installed(admin_client, broker):
    node = NodeFactory(name="app-1")
    response = install_page(admin_client, {"nodes": [node.pk], "server_name": "example.org"})
    assert response.status_code == 200, response.content.decode()[:2000]
    installation = Installation.objects.get()
    installation.move(S.INSTALLED, reason="exit 0")
    return installation


def test_the_install_page_renders_the_generated_form(admin_client):
    chooser = admin_client.get(INSTALL)
    assert chooser.status_code == 200 and 'value="web-server"' in chooser.content.decode()
    page = admin_client.get(INSTALL, {"installer": "web-server"}).content.decode()
    for name in ("nodes", "server_name", "tls_key", "admin_password", "keep_on_failure"):
        assert f'name="{name}"' in page
    assert 'data-visible-if="tls_enabled"' in page
    assert admin_client.get(INSTALL, {"installer": "../etc"}).status_code == 200  # chooser again
    assert 'id="install-link"' in admin_client.get(LIST).content.decode()


def test_installing_shows_the_generated_password_once_and_stores_it_nowhere(admin_client, broker):
    nodes = [NodeFactory(name="a-1"), NodeFactory(name="a-2")]
    response = install_page(
        admin_client,
        {"nodes": [n.pk for n in nodes], "server_name": "example.org", "keep_on_failure": "on"},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    job = Job.objects.get()
    installations = list(Installation.objects.all())
    assert len(installations) == 2 and all(i.keep_on_failure for i in installations)
    assert reverse("admin:jobs_job_change", args=[job.pk]) in page
    password = response.context["launched"][0].generated["admin_password"]
    assert f"<code>{password}</code>" in page
    assert password not in str([i.inputs for i in installations]) + str(job.extra_vars)
    assert password not in str(list(InstallationEvent.objects.values_list("reason", flat=True)))
    for url in (LIST, reverse("admin:installers_installation_change", args=[installations[0].pk])):
        assert password not in admin_client.get(url).content.decode()


def test_a_bad_input_is_shown_on_the_form_with_no_row_and_no_job(admin_client, broker):
    node = NodeFactory()
    response = install_page(admin_client, {"nodes": [node.pk], "server_name": "Bad Name!"})
    assert response.status_code == 400
    assert "pattern:" in response.content.decode()
    response = install_page(admin_client, {"server_name": "example.org"})
    assert response.status_code == 400 and "nodes" in response.context["targets"].errors
    assert not Installation.objects.exists() and not Job.objects.exists()


def test_installing_on_a_node_that_has_it_is_a_form_error(admin_client, installed, broker):
    response = install_page(admin_client, {"nodes": [installed.node_id], "server_name": "a.b"})
    assert response.status_code == 400
    assert "already installed" in response.content.decode()
    assert Job.objects.count() == 1


def test_list_and_detail_with_history_jobs_and_who_asked(admin_client, installed):
    listing = admin_client.get(LIST).content.decode()
    assert "status-badge status-installed" in listing and "app-1" in listing
    for query in ({"status__exact": "installed"}, {"q": "app-1"}, {"installer_id": "web-server"}):
        assert admin_client.get(LIST, query).status_code == 200
    page = admin_client.get(
        reverse("admin:installers_installation_change", args=[installed.pk])
    ).content.decode()
    job_url = reverse("admin:jobs_job_change", args=[installed.current_job_id])
    assert job_url in page
    assert installed.requested_by.username in page
    assert "History (status changes, who asked, which job)" in page
    for label in ("Reinstall", "Uninstall"):
        assert f">{label}</button>" in page
    assert ">Retry</button>" not in page  # not from installed


def test_the_actions_run_from_their_statuses_and_say_why_not(admin_client, installed, broker):
    def act(name):
        return admin_client.post(
            LIST, {"action": name, "_selected_action": [installed.pk]}, follow=True
        )

    refused = act("retry_selected").content.decode()
    assert "Cannot retry installation" in refused and Job.objects.count() == 1
    again = act("reinstall_selected").content.decode()
    assert "Reinstall web-server:" in again
    assert "generated-secrets" not in again  # the installed password is kept, none generated
    installed.refresh_from_db()
    assert installed.status == S.INSTALLING and Job.objects.count() == 2
    installed.move(S.INSTALLED, reason="exit 0")
    url = reverse(
        "admin:installers_installation_detail_action", args=[installed.pk, "uninstall_selected"]
    )
    assert admin_client.post(url).status_code == 302
    installed.refresh_from_db()
    assert installed.status == S.UNINSTALLING


def test_a_user_without_the_operate_permission_gets_no_install_page(client, installed):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    assert client.get(INSTALL).status_code == 403


def test_operators_get_the_list_the_actions_and_the_install_page(client, installed):
    from django.contrib.auth.models import Group

    from portal.accounts.groups import ensure_operators_group

    ensure_operators_group()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="operators"))
    client.force_login(user)
    assert 'id="install-link"' in client.get(LIST).content.decode()
    assert client.get(INSTALL, {"installer": "web-server"}).status_code == 200
    page = client.get(reverse("admin:installers_installation_change", args=[installed.pk]))
    assert ">Reinstall</button>" in page.content.decode()

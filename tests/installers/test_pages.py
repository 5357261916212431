"""The operators' web pages: install from the catalogue page (generated password shown once,
no-store), the installations list and page; customers read only their own."""

import pytest
from django.urls import reverse

from portal.installers.choices import InstallationStatus as S
from portal.installers.models import Installation
from portal.jobs.models import Job
from tests.factories import MembershipFactory, NodeFactory

pytestmark = pytest.mark.django_db
DETAIL = reverse("installers:detail", args=["web-server"])
LIST = reverse("installers:installations")


def test_operators_see_the_install_form_and_customers_do_not(admin_client, client):
    NodeFactory(name="pick-me")
    page = admin_client.get(DETAIL).content.decode()
    assert 'data-testid="install-targets"' in page and "pick-me" in page
    assert 'name="install"' in page
    client.force_login(MembershipFactory().user)
    page = client.get(DETAIL).content.decode()
    assert 'name="install"' not in page and "pick-me" not in page
    refused = client.post(DETAIL, {"install": "", "nodes": [], "server_name": "a.b"})
    assert refused.status_code == 403 and not Job.objects.exists()


def test_install_shows_the_generated_password_once(admin_client, broker):
    nodes = [NodeFactory(), NodeFactory()]
    response = admin_client.post(
        DETAIL, {"install": "", "nodes": [n.pk for n in nodes], "server_name": "example.org"}
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    password = response.context["launched"].generated["admin_password"]
    assert f'<code data-secret="admin_password">{password}</code>' in response.content.decode()
    assert Installation.objects.count() == 2 and Job.objects.count() == 1
    for url in (LIST, reverse("installers:installation", args=[Installation.objects.first().pk])):
        assert password not in admin_client.get(url).content.decode()


def test_install_without_generated_secrets_redirects_to_the_installation(admin_client, broker):
    node = NodeFactory()
    minimal = reverse("installers:detail", args=["minimal"])
    response = admin_client.post(minimal, {"install": "", "nodes": [node.pk]})
    installation = Installation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("installers:installation", args=[installation.pk])
    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-testid="installation-history"' in page and "installing" in page
    assert reverse("admin:jobs_job_change", args=[installation.current_job_id]) in page


def test_bad_inputs_and_no_nodes_stay_on_the_form(admin_client, broker):
    node = NodeFactory()
    bad = admin_client.post(DETAIL, {"install": "", "nodes": [node.pk], "server_name": "B A D"})
    assert bad.status_code == 400 and 'data-error-for="server_name"' in bad.content.decode()
    none = admin_client.post(DETAIL, {"install": "", "server_name": "example.org"})
    assert none.status_code == 400 and 'data-error-for="nodes"' in none.content.decode()
    assert not Installation.objects.exists() and not Job.objects.exists()


def test_checking_inputs_installs_nothing(admin_client, broker):
    node = NodeFactory()
    checked = admin_client.post(
        DETAIL, {"check": "", "nodes": [node.pk], "server_name": "example.org"}
    )
    assert (
        checked.status_code == 200 and 'data-testid="installer-checked"' in checked.content.decode()
    )
    assert not Job.objects.exists()


def test_the_list_shows_status_and_customers_see_only_their_own(admin_client, client, broker):
    nodes = [NodeFactory(name="n-a"), NodeFactory(name="n-b")]
    admin_client.post(DETAIL, {"install": "", "nodes": [n.pk for n in nodes], "server_name": "a.b"})
    first, second = Installation.objects.order_by("node__name")
    first.move(S.NEEDS_OPERATOR, reason="exit 3 (configuration error)")
    page = admin_client.get(LIST).content.decode()
    assert f'data-installation="{first.pk}" data-status="needs_operator"' in page
    assert f'data-installation="{second.pk}" data-status="installing"' in page
    only_job = admin_client.get(LIST, {"job": first.current_job_id}).content.decode()
    assert only_job.count("data-installation=") == 2
    membership = MembershipFactory()
    Installation.objects.filter(pk=second.pk).update(customer=membership.customer)
    client.force_login(membership.user)
    page = client.get(LIST).content.decode()
    assert (
        f'data-installation="{second.pk}"' in page and f'data-installation="{first.pk}"' not in page
    )
    assert client.get(reverse("installers:installation", args=[first.pk])).status_code == 404
    assert client.get(reverse("installers:installation", args=[second.pk])).status_code == 200


def action_url(installation, action):
    return reverse("installers:installation-action", args=[installation.pk, action])


def test_operators_reinstall_retry_and_uninstall_from_the_installation_page(admin_client, broker):
    node = NodeFactory()
    admin_client.post(
        reverse("installers:detail", args=["minimal"]), {"install": "", "nodes": [node.pk]}
    )
    installation = Installation.objects.get()
    page_url = reverse("installers:installation", args=[installation.pk])
    assert 'data-testid="installation-actions"' not in admin_client.get(page_url).content.decode()
    installation.move(S.INSTALLED, reason="exit 0")
    page = admin_client.get(page_url).content.decode()
    assert 'data-testid="installation-reinstall"' in page
    assert 'data-testid="installation-retry"' not in page
    assert 'data-testid="installation-upgrade"' not in page  # the catalogue's is installed
    response = admin_client.post(action_url(installation, "reinstall"))
    assert response.status_code == 302 and response["Location"] == page_url
    installation.refresh_from_db()
    assert installation.status == S.INSTALLING and Job.objects.count() == 2
    assert "Reinstall launched: job" in admin_client.get(page_url).content.decode()

    refused = admin_client.post(action_url(installation, "retry"))  # not from installing
    assert refused.status_code == 302 and Job.objects.count() == 2
    assert "Cannot retry installation" in admin_client.get(page_url).content.decode()
    installation.move(S.NEEDS_OPERATOR, reason="exit 3")
    admin_client.post(action_url(installation, "retry"))
    assert Job.objects.count() == 3
    assert admin_client.post(action_url(installation, "explode")).status_code == 404
    assert admin_client.get(action_url(installation, "retry")).status_code == 405


def test_customers_cannot_act_on_installations(client, broker):
    membership = MembershipFactory()
    installation = Installation.objects.create(
        node=NodeFactory(),
        installer_id="minimal",
        version="1",
        manifest_sha256="x",
        customer=membership.customer,
        status=S.INSTALLED,
    )
    client.force_login(membership.user)
    page = client.get(reverse("installers:installation", args=[installation.pk])).content.decode()
    assert 'data-testid="installation-actions"' not in page
    assert client.post(action_url(installation, "uninstall")).status_code == 403
    installation.refresh_from_db()
    assert installation.status == S.INSTALLED and not Job.objects.exists()

"""Admins create through the same action as customers and act on many workspaces at once."""

import pytest
from django.urls import reverse

from portal.jobs.models import Job
from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("no_dispatch")


def test_admin_add_goes_through_the_create_action(admin_client, member, ws_node,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:workspaces_workspace_add"), {
            "customer": member[1].pk, "owner": member[0].pk, "name": "From admin", "slug": "",
            "node": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace = Workspace.objects.get()
    assert (workspace.slug, workspace.port, workspace.status) == ("from-admin", 8001,
                                                                  S.PROVISIONING)


def test_admin_add_shows_the_actions_refusal_as_a_form_error(admin_client, member, ws_node):
    response = admin_client.post(reverse("admin:workspaces_workspace_add"), {
        "customer": member[1].pk, "owner": member[0].pk, "name": "evil\u202e", "node": ""})
    assert response.status_code == 200
    assert "invisible character" in response.content.decode()
    assert not Workspace.objects.exists()


def test_bulk_stop_makes_one_job_per_node_and_customer(admin_client, member, ws_node,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [actions.do_create(member[1], member[0], f"ide {i}") for i in range(3)]
    finish_job(Workspace.objects.get(pk=made[0].pk).current_job,
               {w.slug: {"ok": True} for w in made})
    assert set(Workspace.objects.values_list("status", flat=True)) == {S.RUNNING}
    response = admin_client.post(reverse("admin:workspaces_workspace_changelist"), {
        "action": "stop_selected", "_selected_action": [w.pk for w in made]})
    assert response.status_code == 302
    stops = Job.objects.filter(action=actions.CONTROL)
    assert stops.count() == 1
    assert len(stops.get().extra_vars["workspace_items"]) == 3


def test_bulk_delete_is_one_run_and_lists_the_refused(admin_client, member, ws_node,
                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = [actions.do_create(member[1], member[0], f"ide {i}") for i in range(2)]
    finish_job(Workspace.objects.get(pk=made[0].pk).current_job,
               {w.slug: {"ok": True} for w in made})
    with django_capture_on_commit_callbacks(execute=True):
        busy = actions.do_create(member[1], member[0], "busy one")
    response = admin_client.post(reverse("admin:workspaces_workspace_changelist"), {
        "action": "delete_selected_workspaces",
        "_selected_action": [w.pk for w in made] + [busy.pk]}, follow=True)
    page = response.content.decode().lower()
    assert "delete: 2 workspace(s) under way" in page and "busy-one: a job is acting" in page
    deletes = Job.objects.filter(action=actions.DELETE)
    assert deletes.count() == 1 and len(deletes.get().extra_vars["workspace_items"]) == 2
    assert Workspace.objects.get(pk=busy.pk).status == S.PROVISIONING

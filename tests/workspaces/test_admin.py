"""Admins create through the same action as customers and act on many workspaces at once."""

import pytest
from django.urls import reverse

from portal.jobs.models import Job
from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace, WorkspaceEvent
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")


def test_admin_add_goes_through_the_create_action(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:workspaces_workspace_add"),
            {
                "customer": member[1].pk,
                "owner": member[0].pk,
                "name": "From admin",
                "slug": "",
                "node": "",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace = Workspace.objects.get()
    assert (workspace.slug, workspace.port, workspace.status) == (
        "from-admin",
        8001,
        S.PROVISIONING,
    )


def test_admin_add_shows_the_actions_refusal_as_a_form_error(admin_client, member, ws_node):
    response = admin_client.post(
        reverse("admin:workspaces_workspace_add"),
        {"customer": member[1].pk, "owner": member[0].pk, "name": "evil\u202e", "node": ""},
    )
    assert response.status_code == 200
    assert "invisible character" in response.content.decode()
    assert not Workspace.objects.exists()


def test_bulk_stop_makes_one_job_per_node_and_customer(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        made = [actions.do_create(member[1], member[0], f"ide {i}") for i in range(3)]
    finish_job(
        Workspace.objects.get(pk=made[0].pk).current_job, {w.slug: {"ok": True} for w in made}
    )
    assert set(Workspace.objects.values_list("status", flat=True)) == {S.RUNNING}
    response = admin_client.post(
        reverse("admin:workspaces_workspace_changelist"),
        {"action": "stop_selected", "_selected_action": [w.pk for w in made]},
    )
    assert response.status_code == 302
    stops = Job.objects.filter(action=actions.CONTROL)
    assert stops.count() == 1
    assert len(stops.get().extra_vars["workspace_items"]) == 3


def test_bulk_delete_is_one_run_and_lists_the_refused(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        made = [actions.do_create(member[1], member[0], f"ide {i}") for i in range(2)]
    finish_job(
        Workspace.objects.get(pk=made[0].pk).current_job, {w.slug: {"ok": True} for w in made}
    )
    with django_capture_on_commit_callbacks(execute=True):
        busy = actions.do_create(member[1], member[0], "busy one")
    response = admin_client.post(
        reverse("admin:workspaces_workspace_changelist"),
        {
            "action": "delete_selected_workspaces",
            "_selected_action": [w.pk for w in made] + [busy.pk],
        },
        follow=True,
    )
    page = response.content.decode().lower()
    assert "delete: 2 workspace(s) under way" in page and "busy-one: a job is acting" in page
    deletes = Job.objects.filter(action=actions.DELETE)
    assert deletes.count() == 1 and len(deletes.get().extra_vars["workspace_items"]) == 2
    assert Workspace.objects.get(pk=busy.pk).status == S.PROVISIONING


# --- the workspace's page: actions as buttons, no Save, a history without captions ---------


def _button(workspace, name):
    return reverse("admin:workspaces_workspace_detail_action", args=[workspace.pk, name])


def _running(member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = actions.do_create(member[1], member[0], "My IDE")
    finish_job(Workspace.objects.get(pk=made.pk).current_job, {made.slug: {"ok": True}})
    return Workspace.objects.get(pk=made.pk)


def _page(client, workspace) -> str:
    response = client.get(reverse("admin:workspaces_workspace_change", args=[workspace.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_workspace_page_offers_the_buttons_its_status_allows(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    workspace = _running(member, django_capture_on_commit_callbacks)
    html = _page(admin_client, workspace)
    for name in (
        "stop_selected",
        "restart_selected",
        "check_selected",
        "delete_selected_workspaces",
    ):
        assert _button(workspace, name) in html, name
    assert _button(workspace, "start_selected") not in html
    assert _button(workspace, "force_delete_selected") not in html
    assert 'class="submit-row"' not in html and 'name="_save"' not in html
    assert (
        'class="status-badge status-running"'
        in admin_client.get(reverse("admin:workspaces_workspace_changelist")).content.decode()
    )
    # the add page keeps its Save button
    assert (
        'name="_save"'
        in admin_client.get(reverse("admin:workspaces_workspace_add")).content.decode()
    )


def test_stop_then_start_buttons_launch_control_jobs(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    workspace = _running(member, django_capture_on_commit_callbacks)
    response = admin_client.post(_button(workspace, "stop_selected"), follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "admin:workspaces_workspace_change", args=[workspace.pk]
    )
    stop = Job.objects.filter(action=actions.CONTROL).get()
    assert stop.extra_vars["workspace_control_action"] == "stop"
    assert [w["slug"] for w in stop.extra_vars["workspace_items"]] == [workspace.slug]
    finish_job(stop, {workspace.slug: {"ok": True}})
    workspace.refresh_from_db()
    assert workspace.status == S.STOPPED
    assert _button(workspace, "start_selected") in _page(admin_client, workspace)
    admin_client.post(_button(workspace, "start_selected"))
    start = Job.objects.filter(action=actions.CONTROL).latest("id")
    assert start.extra_vars["workspace_control_action"] == "start"


def test_delete_button_deletes_like_the_list_action(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    workspace = _running(member, django_capture_on_commit_callbacks)
    response = admin_client.post(_button(workspace, "delete_selected_workspaces"), follow=True)
    assert "delete: 1 workspace(s) under way." in [str(m) for m in response.context["messages"]]
    workspace.refresh_from_db()
    assert workspace.status == S.DELETING
    assert workspace.current_job.playbook == "workspace_delete.yml"


def test_a_refused_button_says_why(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    workspace = _running(member, django_capture_on_commit_callbacks)
    response = admin_client.post(_button(workspace, "start_selected"), follow=True)
    assert any("Cannot start a running workspace" in str(m) for m in response.context["messages"])
    assert not Job.objects.filter(action=actions.CONTROL).exists()


def test_workspace_history_is_read_only_without_repeated_captions(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    workspace = _running(member, django_capture_on_commit_callbacks)
    html = _page(admin_client, workspace)
    assert "History (status changes and jobs)" in html
    assert "history-inline" in html
    from pathlib import Path

    from django.contrib.staticfiles import finders

    css = Path(finders.find("portal/admin.css")).read_text()
    assert ".history-inline td.original p { display: none; }" in css
    event = WorkspaceEvent.objects.filter(workspace=workspace).first()
    response = admin_client.get(reverse("admin:workspaces_workspaceevent_change", args=[event.pk]))
    assert response.status_code == 200
    assert 'class="submit-row"' not in response.content.decode()


def test_admin_home_counts_workspaces_by_status(
    admin_client, member, ws_node, django_capture_on_commit_callbacks
):
    _running(member, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_create(member[1], member[0], "Second")
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="number-workspaces"><b>2</b>' in html
    assert 'status-running">1 running</a>' in html
    assert 'status-provisioning">1 provisioning</a>' in html

"""Admin: a job's page is read-only (no Save/Delete), offers cancel and relaunch as buttons,
shows its duration, times to the second, its target and its output (live while it runs);
job events appear only there; the admin home shows the numbers that matter."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from portal.jobs import actions, dashboard
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from tests.factories import NodeFactory, UserFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def a_node(db):
    return NodeFactory(name="node-0")


def launch(**kwargs) -> Job:
    with stubbed_broker():
        return actions.launch(**{"playbook": "echo.yml", **kwargs})


def end(job: Job, status: str, **fields) -> Job:
    Job.objects.filter(pk=job.pk).update(status=status, **fields)
    job.refresh_from_db()
    return job


def page(client, job):
    response = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert response.status_code == 200
    return response.content.decode()


def button_url(job, name):
    return reverse("admin:jobs_job_detail_action", args=[job.pk, name])


# --- read-only ----------------------------------------------------------------------------


def test_job_page_has_no_submit_row_and_no_delete(admin_client):
    job = launch()
    html = page(admin_client, job)
    assert 'class="submit-row"' not in html
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert "deletelink" not in html
    # A POST to the change page changes nothing: the page is view-only.
    response = admin_client.post(
        reverse("admin:jobs_job_change", args=[job.pk]), {"playbook": "other.yml"}
    )
    assert response.status_code == 403
    assert Job.objects.get(pk=job.pk).playbook == "echo.yml"


def test_job_events_have_no_admin_page_of_their_own():
    """Events are shown read-only on their job's page (stdout and the events table)."""
    from django.contrib import admin

    assert JobEvent not in admin.site._registry


# --- buttons ------------------------------------------------------------------------------


def test_pending_job_offers_cancel_and_the_button_cancels_it(admin_client):
    job = launch()
    html = page(admin_client, job)
    assert button_url(job, "cancel_jobs") in html
    assert button_url(job, "relaunch_jobs") not in html  # only an ended job is relaunched
    assert 'name="csrfmiddlewaretoken"' in html
    response = admin_client.post(button_url(job, "cancel_jobs"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:jobs_job_change", args=[job.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert [str(m) for m in response.context["messages"]] == [f"Job {job.pk}: done."]


def test_relaunch_button_creates_a_new_job_like_the_list_action(admin_client, admin_user):
    node = NodeFactory(name="web-1")
    job = end(
        launch(nodes=[node]),
        JobStatus.FAILED,
        finished_at=timezone.now(),
        host_summary={"web-1": {"failures": 1}},
    )
    html = page(admin_client, job)
    assert button_url(job, "cancel_jobs") not in html
    assert button_url(job, "relaunch_failed_hosts") in html
    ok = end(launch(), JobStatus.SUCCESSFUL, finished_at=timezone.now())
    assert button_url(ok, "relaunch_failed_hosts") not in page(admin_client, ok)
    with stubbed_broker():
        response = admin_client.post(button_url(job, "relaunch_jobs"))
    assert response.status_code == 302
    again = Job.objects.exclude(pk__in=[job.pk, ok.pk]).get()
    assert (again.playbook, again.status, again.requested_by) == ("echo.yml", "pending", admin_user)
    with stubbed_broker():
        admin_client.post(button_url(job, "relaunch_failed_hosts"))
    assert Job.objects.filter(limit="web-1").count() == 1


def test_a_refused_button_says_why(admin_client):
    job = end(launch(), JobStatus.SUCCESSFUL, finished_at=timezone.now())
    response = admin_client.post(button_url(job, "cancel_jobs"), follow=True)
    assert "nothing to cancel" in " ".join(str(m) for m in response.context["messages"])
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCESSFUL


def test_buttons_need_post_a_known_action_and_the_change_permission(client, admin_client):
    job = launch()
    assert admin_client.get(button_url(job, "cancel_jobs")).status_code == 405
    assert admin_client.post(button_url(job, "delete_selected")).status_code == 404
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(viewer)
    html = page(client, job)
    assert button_url(job, "cancel_jobs") not in html
    assert client.post(button_url(job, "cancel_jobs")).status_code == 403
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING


# --- what the page shows ------------------------------------------------------------------


def test_job_page_shows_duration_seconds_and_target_link(admin_client):
    node = NodeFactory(name="web-1")
    started = timezone.now().replace(microsecond=0) - timedelta(minutes=2, seconds=5)
    job = end(
        launch(nodes=[node], target=node),
        JobStatus.SUCCESSFUL,
        started_at=started,
        finished_at=started + timedelta(minutes=2, seconds=5),
    )
    html = page(admin_client, job)
    assert "2m 05s" in html
    assert timezone.localtime(started).strftime("%Y-%m-%d %H:%M:%S") in html
    assert f'href="{reverse("admin:nodes_node_change", args=[node.pk])}"' in html
    assert 'class="status-badge status-successful"' in html
    assert " style=" not in html.split('id="content"')[1]  # CSP: no inline style


def test_finished_job_shows_its_output_without_following_it(admin_client):
    job = launch()
    JobEvent.objects.create(
        job=job,
        counter=1,
        event="runner_on_ok",
        host="h",
        stdout="ok: [h] <b>",
        created=timezone.now(),
    )
    end(job, JobStatus.SUCCESSFUL, finished_at=timezone.now())
    html = page(admin_client, job)
    assert "ok: [h] &lt;b&gt;" in html
    assert 'data-live=""' in html


def test_running_job_page_follows_the_api_stream_with_a_static_script(admin_client):
    job = end(launch(), JobStatus.RUNNING, started_at=timezone.now())
    JobEvent.objects.create(
        job=job, counter=3, event="runner_on_ok", host="h", stdout="ok: [h]", created=timezone.now()
    )
    html = page(admin_client, job)
    assert f'data-stream="/api/jobs/{job.pk}/stream/"' in html
    assert 'data-after="3"' in html and 'data-live="1"' in html
    assert "jobs/job_output.js" in html
    stream = admin_client.get(f"/api/jobs/{job.pk}/stream/")  # the admin's session is enough
    assert stream.status_code == 200 and stream["Content-Type"] == "text/event-stream"


def test_job_changelist_colours_statuses_without_inline_style(admin_client):
    end(launch(), JobStatus.FAILED, finished_at=timezone.now())
    html = admin_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert 'class="status-badge status-failed"' in html
    assert "portal/admin.css" in html


# --- admin home ---------------------------------------------------------------------------


def test_admin_home_shows_the_numbers(admin_client):
    launch()  # pending
    end(launch(), JobStatus.DISPATCHED)
    end(launch(), JobStatus.RUNNING, started_at=timezone.now())
    end(launch(), JobStatus.FAILED, finished_at=timezone.now())
    end(launch(), JobStatus.SUCCESSFUL, finished_at=timezone.now())
    end(launch(), JobStatus.FAILED, finished_at=timezone.now() - timedelta(days=3))
    numbers = dashboard.job_numbers()
    assert numbers == {"running": 1, "failed_today": 1, "queue_depth": 2}
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="number-running"><b>1</b>' in html
    assert 'id="number-failed-today"><b>1</b>' in html
    assert re.search(r'id="number-queue"[^>]*><b>2</b>', html)
    assert 'id="number-labs"><b>0</b>' in html
    assert 'id="outcomes-chart"' in html
    assert " style=" not in html.split('id="content"')[1]


def test_outcomes_by_day_counts_and_scales_the_bars():
    end(launch(), JobStatus.SUCCESSFUL, finished_at=timezone.now())
    end(launch(), JobStatus.SUCCESSFUL, finished_at=timezone.now())
    end(launch(), JobStatus.TIMEOUT, finished_at=timezone.now())
    end(launch(), JobStatus.CANCELED, finished_at=timezone.now() - timedelta(days=1))
    end(launch(), JobStatus.FAILED, finished_at=timezone.now() - timedelta(days=30))
    days = dashboard.outcomes_by_day()
    assert len(days) == dashboard.CHART_DAYS
    today, yesterday = days[-1], days[-2]
    assert (today["ok"], today["bad"], today["other"]) == (2, 1, 0)
    assert (today["ok_height"], today["bad_height"]) == (65, 35)
    assert (yesterday["other"], yesterday["other_height"]) == (1, 35)
    assert sum(day["total"] for day in days) == 4

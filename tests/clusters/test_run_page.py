"""The run's page (staff): every node's timeline, and its SSE stream of transitions,
resumable with Last-Event-ID, ending once the run settled; live in the real browser."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from portal.clusters import stream
from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import ReprovisionEvent
from tests.browser import PASSWORD, needs_chromium
from tests.clusters.conftest import make_cluster, node_runs, start
from tests.factories import AdminFactory, UserFactory


def frames(text: str) -> list[tuple[str, str]]:
    """(event kind, data) of each frame with a kind."""
    found = []
    for block in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in lines:
            found.append((lines["event"], lines["data"]))
    return found


@pytest.mark.django_db
def test_staff_see_each_nodes_timeline_and_others_are_sent_to_log_in(client, broker):
    run = start(make_cluster(count=2))
    url = reverse("clusters:run", args=[run.pk])
    client.force_login(UserFactory())
    assert client.get(url).status_code == 302
    client.force_login(AdminFactory())
    page = client.get(url).content.decode()
    assert page.count('data-testid="node-timeline"') == 2
    assert "rebooting" in page and 'data-active="1"' in page
    assert client.get(reverse("clusters:run", args=[run.pk + 99])).status_code == 404


@pytest.mark.django_db
def test_the_stream_sends_the_transitions_then_ends_once_the_run_settled(settings, broker):
    settings.JOB_STREAM_POLL_SECONDS = 0.01
    run = start(make_cluster(count=2))
    rows = stream.transitions_after(run.pk, 0)
    assert {row["node"] for row in rows} >= {"pve-1", "pve-2"}
    assert all(row["status"] for row in rows)
    last = rows[-1]["id"]
    node_run = node_runs(run)["pve-1"]
    node_run.move(N.ERROR, reason="test: power failed")
    run.refresh_from_db()
    type(run).objects.filter(pk=run.pk).update(status="error")
    sent = frames("".join(stream.run_stream(run.pk, last)))
    kinds = [kind for kind, _ in sent]
    assert kinds[-1] == "end" and '"error"' in sent[-1][1]
    assert any('"test: power failed"' in data for kind, data in sent if kind == "transition")
    assert all(
        int(e) > last
        for e in ReprovisionEvent.objects.filter(run=run, pk__gt=last).values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_the_events_view_resumes_after_last_event_id(client, broker, settings):
    settings.JOB_STREAM_POLL_SECONDS = 0.01
    run = start(make_cluster(count=1))
    type(run).objects.filter(pk=run.pk).update(status="canceled")
    client.force_login(AdminFactory())
    url = reverse("clusters:run-events", args=[run.pk])
    everything = b"".join(client.get(url).streaming_content).decode()
    ids = [int(line[4:]) for line in everything.splitlines() if line.startswith("id: ")]
    assert ids and ids == sorted(ids)
    resumed = b"".join(client.get(url, HTTP_LAST_EVENT_ID=str(ids[-1])).streaming_content).decode()
    assert [kind for kind, _ in frames(resumed)] == ["end"]
    hostile = b"".join(client.get(url, {"after": "1e9; DROP"}).streaming_content).decode()
    assert "transition" in hostile  # a bad cursor counts as the start


@pytest.mark.django_db(transaction=True)
@needs_chromium
def test_the_page_follows_the_run_live_in_the_browser(browser_page, broker):
    page, problems = browser_page
    run = start(make_cluster(count=2))
    admin = AdminFactory()
    admin.set_password(PASSWORD)
    admin.save()
    page.goto(f"/accounts/login/?next=/clusters/runs/{run.pk}/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#run-live")).to_contain_text("following the run live")
    node_run = node_runs(run)["pve-2"]
    node_run.move(N.ERROR, reason="browser test: the BMC refused")
    card = page.locator(f'[data-node-run="{node_run.pk}"]')
    expect(card.locator('[data-role="node-status"]')).to_have_text("error")
    expect(card).to_contain_text("browser test: the BMC refused")
    type(run).objects.filter(pk=run.pk).update(status="error")
    expect(page.locator("#run-status")).to_have_text("error")
    assert problems == []

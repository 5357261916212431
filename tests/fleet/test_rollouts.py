"""Update rollouts: wave planning, health gating, the failure limit, max_unavailable,
pause/resume/abort, maintenance and busy VMs, the VM's last action, the API (tenancy, 4xx).

Jobs are launched for real (the broker stubbed) and ended as the worker ends them (claim,
finish, finalize: the registered handler runs); heartbeats are the liveness row's values.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.core.errors import PortalError
from portal.core.status import TransitionNotAllowed
from portal.fleet.actions import rollout_engine as engine
from portal.fleet.actions import rollouts as actions
from portal.fleet.actions.waves import check_waves, plan_waves
from portal.fleet.choices import RolloutStatus as R
from portal.fleet.choices import TargetStatus as T
from portal.fleet.models import VM, Rollout, Update
from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from portal.monitoring.choices import Liveness, Severity
from portal.monitoring.models import Alert, NodeLiveness
from portal.nodes.choices import NodePurpose
from tests.factories import CustomerFactory, MembershipFactory, NodeFactory, UserFactory

pytestmark = pytest.mark.django_db
OLD, NEW = "1.0.0", "2.0.0"


# --- rows -----------------------------------------------------------------------------------


def make_vm(customer=None, *, tier="starter", version=OLD, **fields):
    node = NodeFactory(purpose=NodePurpose.FLEET_HOST)
    vm = VM.objects.create(node=node, customer=customer or CustomerFactory(), tier=tier, **fields)
    beat(vm, version, at=timezone.now() - timedelta(minutes=5))
    return vm


def beat(vm, version, *, at=None, status=Liveness.UP):
    """The VM's heartbeat as the liveness row keeps it."""
    NodeLiveness.objects.update_or_create(
        node_id=vm.pk,
        defaults={
            "status": status,
            "product_version": version,
            "last_seen_at": at or timezone.now(),
        },
    )


def fleet(count, customer=None, **fields):
    return [make_vm(customer, **fields) for _ in range(count)]


@pytest.fixture
def update(db):
    return Update.objects.create(version=NEW, description="the new one")


def start(update, **options):
    options.setdefault("soak_seconds", 0)
    return actions.plan_rollout(None, update, options)


def targets(rollout):
    return {t.vm_id: t for t in rollout.targets.all()}


def statuses(rollout):
    return sorted(rollout.targets.values_list("status", flat=True))


def running_jobs():
    return list(Job.objects.filter(status__in=["pending", "dispatched"]).order_by("pk"))


def end_job(job, ok=True, message="the check failed"):
    """End ``job`` as the worker does; a failure carries a failed task's message."""
    assert job.claim("test")
    if not ok:
        JobEvent.objects.create(
            job=job,
            counter=1,
            event="runner_on_failed",
            failed=True,
            created=timezone.now(),
            event_data={"res": {"msg": message}},
        )
    job.finish(
        JobStatus.SUCCESSFUL if ok else JobStatus.FAILED,
        rc=0 if ok else 2,
        event_count=0 if ok else 1,
    )
    job.refresh_from_db()
    jobs.finalize(job)


def land(job, version=NEW):
    """The job succeeded and its VM's heartbeat came back with ``version``."""
    end_job(job)
    vm = VM.objects.get(pk=job.nodes.get().pk)
    beat(vm, version)
    return vm


def tick(rollout):
    engine.advance(rollout.pk)
    rollout.refresh_from_db()
    return rollout


# --- wave planning ----------------------------------------------------------------------


def test_default_waves_cut_the_targets_cumulatively():
    waves = check_waves(["1", "10%", "50%", "100%"])
    assert [len(w) for w in plan_waves(list(range(40)), waves)] == [1, 3, 16, 20]
    # 10% of 3 is 1, covered by the canary already: that wave is dropped.
    assert plan_waves([1, 2, 3], waves) == [[1], [2], [3]]
    assert plan_waves([7], waves) == [[7]]
    assert plan_waves(list(range(10)), check_waves([2, " 5 ", "100 %"])) == [
        [0, 1],
        [2, 3, 4],
        [5, 6, 7, 8, 9],
    ]
    assert plan_waves([1, 2], check_waves(["5"])) == [[1, 2]]  # a count past the end: all


@pytest.mark.parametrize(
    ("waves", "field"),
    [
        ([], "waves"),
        ("1,100%", "waves"),
        (["1", "x"], "waves[1]"),
        (["0", "100%"], "waves[0]"),
        (["1", "0%"], "waves[1]"),
        (["1", "101%"], "waves[1]"),
        (["1", "-5"], "waves[1]"),
        ([True], "waves[0]"),
        (["1"] * 21, "waves"),
    ],
)
def test_bad_waves_are_named(waves, field):
    with pytest.raises(PortalError) as refused:
        check_waves(waves)
    assert refused.value.field == field


def test_the_last_wave_must_cover_all_and_waves_never_shrink():
    with pytest.raises(PortalError, match="must cover all") as refused:
        plan_waves(list(range(10)), check_waves(["1", "50%"]))
    assert refused.value.field == "waves"
    with pytest.raises(PortalError, match="cumulative") as refused:
        plan_waves(list(range(10)), check_waves(["5", "10%", "100%"]))
    assert refused.value.field == "waves[1]"


# --- starting -----------------------------------------------------------------------------


def test_a_rollout_targets_every_vm_not_on_the_version_canary_first(update, broker):
    enterprise = make_vm(tier="enterprise")
    starters = fleet(2)
    already = make_vm(version=NEW)
    rollout = start(update)
    assert rollout.status == R.IN_PROGRESS and rollout.started_at
    planned = targets(rollout)
    assert already.pk not in planned
    # starter VMs first (by id), enterprise last
    assert [planned[vm.pk].wave for vm in (*starters, enterprise)] == [1, 2, 3]
    assert planned[starters[0].pk].status == T.UPDATING
    assert planned[starters[0].pk].previous_version == OLD
    (job,) = running_jobs()
    assert job.action == "fleet.update" and job.playbook == "fleet_update.yml"
    assert job.extra_vars == {"fleet_update_version": NEW}
    assert list(job.nodes.values_list("pk", flat=True)) == [starters[0].pk]


def test_filters_tier_customer_and_explicit_vms(update, broker):
    mine = CustomerFactory()
    a, b = fleet(2, mine)
    pro = make_vm(mine, tier="pro")
    make_vm()  # another customer's
    assert set(targets(start(update, customer_id=mine.pk, start=False))) == {a.pk, b.pk, pro.pk}
    Rollout.objects.all().delete()
    assert set(targets(start(update, tier="pro", start=False))) == {pro.pk}
    Rollout.objects.all().delete()
    assert set(targets(start(update, vm_ids=[b.pk], start=False))) == {b.pk}


def test_a_planned_rollout_is_pending_until_started(update, broker):
    fleet(2)
    rollout = start(update, start=False)
    assert rollout.status == R.PENDING and not running_jobs()
    actions.start_rollout(rollout)
    rollout.refresh_from_db()
    assert rollout.status == R.IN_PROGRESS and len(running_jobs()) == 1


def test_vms_in_maintenance_are_skipped_with_the_reason(update, broker):
    held = make_vm(maintenance=True, maintenance_reason="disk swap")
    others = fleet(2)
    rollout = start(update)
    target = targets(rollout)[held.pk]
    assert (target.status, target.wave, target.reason) == (
        T.SKIPPED,
        0,
        "in maintenance: disk swap",
    )
    # one put into maintenance after the plan is skipped when its wave reaches it
    VM.objects.filter(pk=others[1].pk).update(maintenance=True)
    land(running_jobs()[0])
    rollout = tick(rollout)
    assert targets(rollout)[others[1].pk].status == T.SKIPPED
    assert rollout.status == R.COMPLETED
    assert rollout.reason == "1 succeeded, 0 failed, 2 skipped"


def test_nothing_to_update_is_a_400(update, broker):
    make_vm(version=NEW)
    with pytest.raises(PortalError, match="No VM to update") as refused:
        start(update)
    assert refused.value.status_code == 400


def test_a_vm_in_another_active_rollout_is_a_409(update, broker):
    vms = fleet(2)
    start(update)
    other = Update.objects.create(version="3.0.0")
    with pytest.raises(PortalError) as refused:
        start(other, vm_ids=[vms[1].pk])
    assert refused.value.status_code == 409 and refused.value.field == "vm_ids"


# --- gating -------------------------------------------------------------------------------


def test_a_wave_waits_for_the_new_version_in_a_heartbeat_then_the_soak(update, broker):
    vms = fleet(3)
    rollout = start(update, soak_seconds=60)
    (canary,) = running_jobs()
    end_job(canary)  # job ok, but no heartbeat with the new version yet
    rollout = tick(rollout)
    first = targets(rollout)[vms[0].pk]
    assert first.status == T.SOAKING and first.soak_until is None
    assert not running_jobs()  # the next wave waits
    beat(vms[0], OLD)  # back, but still the old version
    rollout = tick(rollout)
    assert targets(rollout)[vms[0].pk].soak_until is None and not running_jobs()
    beat(vms[0], NEW)
    rollout = tick(rollout)
    first = targets(rollout)[vms[0].pk]
    assert first.status == T.SOAKING and first.soak_until > timezone.now()
    assert not running_jobs()  # soaking: still waiting
    first.soak_until = timezone.now() - timedelta(seconds=1)
    first.save(update_fields=["soak_until"])
    rollout = tick(rollout)
    assert targets(rollout)[vms[0].pk].status == T.SUCCEEDED
    assert rollout.current_wave == 2
    assert [job.nodes.get().pk for job in running_jobs()] == [vms[1].pk]


def test_no_heartbeat_with_the_version_in_time_fails_the_vm_and_halts(update, broker, settings):
    settings.FLEET_ROLLOUT_HEALTH_TIMEOUT = 30
    vms = fleet(3)
    rollout = start(update)
    (canary,) = running_jobs()
    end_job(canary)
    Job.objects.filter(pk=canary.pk).update(finished_at=timezone.now() - timedelta(seconds=31))
    rollout = tick(rollout)
    first = targets(rollout)[vms[0].pk]
    assert first.status == T.FAILED
    assert "no heartbeat reporting 2.0.0 within 30 s" in first.reason
    assert rollout.status == R.HALTED and rollout.finished_at
    assert f"{vms[0]}: no heartbeat reporting" in rollout.reason
    for vm in vms[1:]:
        left = targets(rollout)[vm.pk]
        assert (left.status, left.reason, left.job) == (
            T.PENDING,
            "not started: the rollout halted",
            None,
        )
    assert not running_jobs()


def test_old_high_alerts_and_new_warnings_do_not_fail_a_vm(update, broker):
    (vm,) = fleet(1)
    Alert.objects.create(
        node=vm.node,
        type="disk_space",
        severity=Severity.HIGH,
        message="before the update",
        created_at=timezone.now() - timedelta(hours=1),
    )
    rollout = start(update)
    land(running_jobs()[0])
    Alert.objects.create(node=vm.node, type="disk_space", severity=Severity.WARNING, message="w")
    rollout = tick(rollout)
    assert targets(rollout)[vm.pk].status == T.SUCCEEDED and rollout.status == R.COMPLETED


def test_a_new_high_alert_on_the_vm_fails_it(update, broker):
    vms = fleet(2)
    rollout = start(update, soak_seconds=60)
    land(running_jobs()[0])
    rollout = tick(rollout)
    assert targets(rollout)[vms[0].pk].status == T.SOAKING
    Alert.objects.create(
        node=vms[0].node, type="disk_space", severity=Severity.HIGH, message="98% full"
    )
    rollout = tick(rollout)
    failed = targets(rollout)[vms[0].pk]
    assert failed.status == T.FAILED and "high alert disk_space" in failed.reason
    assert "98% full" in failed.reason and rollout.status == R.HALTED
    assert targets(rollout)[vms[1].pk].status == T.PENDING


def test_an_update_job_that_fails_halts_after_the_canary_and_marks_the_vm(update, broker):
    vms = fleet(3)
    rollout = start(update)
    (canary,) = running_jobs()
    end_job(canary, ok=False, message="canary drill")
    rollout.refresh_from_db()
    assert rollout.status == R.HALTED
    first = targets(rollout)[vms[0].pk]
    assert (
        first.status == T.FAILED and first.reason == f"update job {canary.pk} failed: canary drill"
    )
    assert [targets(rollout)[vm.pk].status for vm in vms[1:]] == [T.PENDING, T.PENDING]
    assert Job.objects.count() == 1
    vm = VM.objects.get(pk=vms[0].pk)
    assert (vm.last_action_id, vm.last_action_kind, vm.last_action_failed) == (
        canary.pk,
        "update",
        True,
    )


def test_the_failure_limit_halts_only_when_failures_exceed_it(update, broker):
    fleet(4)
    rollout = start(update, waves=["1", "100%"], failure_limit=1, max_unavailable=3)
    end_job(running_jobs()[0], ok=False)  # 1 failure: not more than the limit
    rollout.refresh_from_db()
    assert rollout.status == R.IN_PROGRESS
    wave2 = running_jobs()
    assert len(wave2) == 3  # the next wave started
    land(wave2[0])
    end_job(wave2[1], ok=False)  # 2 failures > 1: halted
    rollout.refresh_from_db()
    assert (
        rollout.status == R.HALTED
        and "2 VM(s) failed, more than the failure limit of 1" in rollout.reason
    )
    end_job(wave2[2])  # a job running when it halted finishes; its result is recorded
    beat(VM.objects.get(pk=wave2[2].nodes.get().pk), NEW)
    tick(rollout)
    assert statuses(rollout) == [T.FAILED, T.FAILED, T.SUCCEEDED, T.SUCCEEDED]
    assert rollout.status == R.HALTED


def test_at_most_max_unavailable_vms_update_at_once(update, broker):
    fleet(5)
    rollout = start(update, waves=["100%"], max_unavailable=2)
    first = running_jobs()
    assert len(first) == 2
    tick(rollout)
    assert len(running_jobs()) == 2  # a tick starts none while two update
    land(first[0])
    assert len(running_jobs()) == 2  # one ended, one more started
    land(first[1])
    rest = running_jobs()
    assert len(rest) == 2
    for job in rest:
        land(job)
    land(running_jobs()[0])
    rollout = tick(rollout)
    assert rollout.status == R.COMPLETED and statuses(rollout) == [T.SUCCEEDED] * 5


def test_a_completed_rollout_sets_the_update_completed_with_every_vm_on_it(update, broker):
    fleet(3)
    rollout = start(update)
    for _ in range(3):
        land(running_jobs()[0])
        rollout = tick(rollout)  # the beat after the heartbeat: the next wave starts
    assert rollout.status == R.COMPLETED and rollout.finished_at
    assert VM.objects.filter(last_action_kind="update", last_action_failed=False).count() == 3


# --- pause, resume, abort -----------------------------------------------------------------


def test_pause_stops_new_starts_and_resume_goes_on(update, broker):
    fleet(3)
    rollout = start(update)
    actions.pause_rollout(rollout, by="ops")
    assert rollout.status == R.PAUSED and rollout.reason == "paused by ops"
    land(running_jobs()[0])  # the running job finishes; its VM passes
    rollout = tick(rollout)
    assert rollout.status == R.PAUSED and not running_jobs()
    assert statuses(rollout) == [T.PENDING, T.PENDING, T.SUCCEEDED]
    with pytest.raises(TransitionNotAllowed):
        actions.pause_rollout(rollout)
    actions.resume_rollout(rollout)
    assert rollout.status == R.IN_PROGRESS and len(running_jobs()) == 1
    with pytest.raises(TransitionNotAllowed):
        actions.resume_rollout(rollout)


def test_a_failure_while_paused_still_halts(update, broker):
    fleet(2)
    rollout = start(update)
    actions.pause_rollout(rollout)
    end_job(running_jobs()[0], ok=False)
    rollout.refresh_from_db()
    assert rollout.status == R.HALTED


def test_abort_starts_nothing_more_and_running_jobs_finish(update, broker):
    vms = fleet(3)
    rollout = start(update)
    (canary,) = running_jobs()
    actions.abort_rollout(rollout, by="ops")
    assert rollout.status == R.ABORTED and rollout.finished_at
    left = targets(rollout)
    assert [left[vm.pk].status for vm in vms[1:]] == [T.SKIPPED, T.SKIPPED]
    assert left[vms[1].pk].reason == "not started: the rollout was aborted"
    land(canary)
    rollout = tick(rollout)
    assert targets(rollout)[vms[0].pk].status == T.SUCCEEDED
    assert rollout.status == R.ABORTED and Job.objects.count() == 1
    with pytest.raises(TransitionNotAllowed):
        actions.abort_rollout(rollout)
    with pytest.raises(TransitionNotAllowed):
        actions.resume_rollout(rollout)


# --- one action per VM ----------------------------------------------------------------------


def test_a_busy_vm_is_waited_for_then_skipped(update, broker, settings):
    settings.FLEET_ROLLOUT_BUSY_WAIT = 60
    vm = make_vm()
    restart = jobs.launch(playbook="ping.yml", action=jobs.ADHOC, nodes=[vm.node])
    Job.objects.filter(pk=restart.pk).update(action="fleet.restart")
    rollout = start(update)
    target = targets(rollout)[vm.pk]
    assert target.status == T.PENDING and target.waiting_since
    assert target.reason == f"waiting: the VM is busy (job {restart.pk} (fleet.restart) is pending)"
    assert Job.objects.filter(action="fleet.update").count() == 0
    target.waiting_since = timezone.now() - timedelta(seconds=61)
    target.save(update_fields=["waiting_since"])
    rollout = tick(rollout)
    target = targets(rollout)[vm.pk]
    assert target.status == T.SKIPPED
    assert target.reason.startswith("skipped: busy for 1 minute (job ")
    assert rollout.status == R.COMPLETED


def test_a_busy_vm_that_frees_up_is_updated(update, broker):
    vm = make_vm()
    restart = jobs.launch(playbook="ping.yml", action=jobs.ADHOC, nodes=[vm.node])
    Job.objects.filter(pk=restart.pk).update(action="fleet.restart")
    rollout = start(update)
    Job.objects.filter(pk=restart.pk).update(status=JobStatus.SUCCESSFUL)
    rollout = tick(rollout)
    assert targets(rollout)[vm.pk].status == T.UPDATING


def test_the_beat_pass_moves_every_open_rollout(update, broker):
    vms = fleet(2)
    rollout = start(update, soak_seconds=60)
    land(running_jobs()[0])
    target = targets(rollout)[vms[0].pk]
    RolloutTarget = type(target)
    RolloutTarget.objects.filter(pk=target.pk).update(soak_until=timezone.now())
    assert engine.advance_all() == 1
    assert targets(rollout)[vms[0].pk].status == T.SUCCEEDED
    assert len(running_jobs()) == 1  # the beat started the second wave


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def tenants(update, broker):
    """Customer A (2 VMs), customer B (1 VM), a rollout over all three; A's user."""
    a, b = CustomerFactory(), CustomerFactory()
    a_vms = fleet(2, a)
    b_vm = make_vm(b)
    rollout = start(update, start=False)
    user = MembershipFactory(customer=a, user=UserFactory()).user
    return {"a": a, "b": b, "a_vms": a_vms, "b_vm": b_vm, "rollout": rollout, "user": user}


def test_get_updates_in_the_source_shape(admin_api, update):
    Update.objects.create(version="0.9")
    answer = admin_api.get("/api/updates")
    assert answer.status_code == 200
    first = answer.json()[0]  # a plain array, as the source's
    assert set(first) >= {
        "id",
        "version",
        "description",
        "rollout_status",
        "created_at",
        "completed_at",
    }
    assert first["rollout_status"] == "pending" and first["completed_at"] is None


def test_updates_and_rollouts_through_the_api(admin_api, broker):
    fleet(2)
    created = admin_api.post("/api/updates", {"version": NEW, "description": "d"}, format="json")
    assert created.status_code == 201, created.json()
    update_id = created.json()["id"]
    started = admin_api.post(
        f"/api/updates/{update_id}/rollouts",
        {"soak_seconds": 0, "waves": ["1", "100%"]},
        format="json",
    )
    assert started.status_code == 201, started.json()
    body = started.json()
    assert body["status"] == "in_progress" and body["counts"]["updating"] == 1
    assert [w["size"] for w in body["wave_progress"]] == [1, 1]
    rollout_id = body["id"]
    assert admin_api.get(f"/api/updates/{update_id}").json()["rollout_status"] == "in_progress"
    paused = admin_api.post(f"/api/rollouts/{rollout_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = admin_api.post(f"/api/rollouts/{rollout_id}/pause/")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert admin_api.post(f"/api/rollouts/{rollout_id}/resume").json()["status"] == "in_progress"
    aborted = admin_api.post(f"/api/rollouts/{rollout_id}/abort")
    assert aborted.json()["status"] == "aborted"
    assert admin_api.post(f"/api/rollouts/{rollout_id}/start").status_code == 409
    listed = admin_api.get(f"/api/updates/{update_id}/rollouts").json()
    assert [r["id"] for r in listed] == [rollout_id]
    assert admin_api.get("/api/rollouts?status=aborted").json()["count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"waves": ["1", "50%"]}, "waves"),
        ({"waves": ["1", "abc"]}, "waves[1]"),
        ({"waves": "100%"}, "waves"),
        ({"soak_seconds": -1}, "soak_seconds"),
        ({"soak_seconds": "5"}, "soak_seconds"),
        ({"failure_limit": 1.5}, "failure_limit"),
        ({"max_unavailable": 0}, "max_unavailable"),
        ({"tier": "gold"}, "tier"),
        ({"customer_id": 999999}, "customer_id"),
        ({"customer_id": "x"}, "customer_id"),
        ({"vm_ids": [999999]}, "vm_ids"),
        ({"vm_ids": []}, "vm_ids"),
        ({"vm_ids": ["a"]}, "vm_ids"),
        ({"start": "yes"}, "start"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_rollout_options_are_400_naming_the_field(admin_api, update, broker, body, field):
    fleet(3)
    answer = admin_api.post(f"/api/updates/{update.pk}/rollouts", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == field
    assert not Rollout.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "version"),
        ({"version": "bad version"}, "version"),
        ({"version": NEW}, "version"),  # exists
        ({"version": "3.0", "playbook": "../etc/passwd"}, "playbook"),
        ({"version": "3.0", "playbook": "nope.yml"}, "playbook"),
        ({"version": "3.0", "extra_vars": {"not a name": 1}}, "extra_vars"),
        ({"version": "3.0", "extra_vars": [1]}, "extra_vars"),
        ({"version": "3.0", "description": 5}, "description"),
    ],
)
def test_bad_updates_are_400_naming_the_field(admin_api, update, body, field):
    answer = admin_api.post("/api/updates", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == field


def test_writes_are_for_admins_only(tenants, user_api):
    client = user_api(tenants["user"])
    rollout = tenants["rollout"]
    assert client.post("/api/updates", {"version": "9"}, format="json").status_code == 403
    assert (
        client.post(f"/api/updates/{rollout.update_id}/rollouts", {}, format="json").status_code
        == 403
    )
    assert client.post(f"/api/rollouts/{rollout.pk}/start").status_code == 403
    rollout.refresh_from_db()
    assert rollout.status == R.PENDING


def test_customers_see_only_rollouts_and_results_of_their_vms(tenants, user_api, update):
    client = user_api(tenants["user"])
    rollout = tenants["rollout"]
    Update.objects.create(version="untouched")  # touches no VM of theirs
    listed = client.get("/api/updates").json()  # a plain array, as the source's
    assert [u["version"] for u in listed] == [NEW]
    detail = client.get(f"/api/rollouts/{rollout.pk}").json()
    assert {t["vm_id"] for t in detail["targets"]} == {vm.pk for vm in tenants["a_vms"]}
    assert sum(detail["counts"].values()) == 2 and detail["selection"] == {}
    # the rollout's reason may name another customer's VM: not shown to customers
    Rollout.objects.filter(pk=rollout.pk).update(reason=f"{tenants['b_vm']}: failed")
    assert client.get(f"/api/rollouts/{rollout.pk}").json()["reason"] == ""
    assert client.get("/api/rollouts").json()["results"][0]["reason"] == ""
    assert client.get(f"/api/updates/{update.pk}/rollouts").json()[0]["reason"] == ""
    # B's user: B's VM only; a user of no customer: nothing, and 404 for the ids
    b_user = MembershipFactory(customer=tenants["b"], user=UserFactory()).user
    b_detail = user_api(b_user).get(f"/api/rollouts/{rollout.pk}").json()
    assert [t["vm_id"] for t in b_detail["targets"]] == [tenants["b_vm"].pk]
    stranger = user_api()
    assert stranger.get("/api/updates").json() == []
    assert stranger.get(f"/api/updates/{update.pk}").status_code == 404
    assert stranger.get(f"/api/rollouts/{rollout.pk}").status_code == 404
    assert stranger.get("/api/rollouts").json()["results"] == []
    assert stranger.get(f"/api/updates/{update.pk}/rollouts").status_code == 404


def test_a_vm_that_cannot_be_reached_any_more_fails_at_launch(update, broker):
    vms = fleet(2)
    vms[0].node.enabled = False
    vms[0].node.save()
    rollout = start(update, failure_limit=1)
    failed = targets(rollout)[vms[0].pk]
    assert failed.status == T.FAILED and failed.reason.startswith("cannot launch its update: ")
    assert rollout.status == R.IN_PROGRESS and len(running_jobs()) == 1  # on to the next


def test_a_later_action_of_the_vm_is_not_overwritten(update, broker):
    (vm,) = fleet(1)
    start(update)
    (job,) = running_jobs()
    later = jobs.launch(playbook="ping.yml", action=jobs.ADHOC, nodes=[vm.node])
    VM.objects.filter(pk=vm.pk).update(last_action=later, last_action_kind="restart")
    end_job(job, ok=False)
    vm.refresh_from_db()
    assert (vm.last_action_id, vm.last_action_kind, vm.last_action_failed) == (
        later.pk,
        "restart",
        False,
    )


def test_unknown_ids_are_404(admin_api):
    assert admin_api.get("/api/updates/999").status_code == 404
    assert admin_api.get("/api/rollouts/999").status_code == 404
    assert admin_api.post("/api/rollouts/999/abort").status_code == 404


# --- the admin ------------------------------------------------------------------------------


def test_the_admin_starts_pauses_resumes_and_aborts(client, admin_user, update, broker):
    fleet(2)
    client.force_login(admin_user)

    def act(model, action, pk):
        return client.post(
            f"/admin/fleet/{model}/",
            {"action": action, "_selected_action": [pk]},
            follow=True,
        )

    answer = act("update", "start_rollout", update.pk)
    assert answer.status_code == 200
    rollout = Rollout.objects.get(update=update)
    assert rollout.status == R.IN_PROGRESS and len(running_jobs()) == 1
    act("rollout", "pause", rollout.pk)
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED
    refused = act("rollout", "pause", rollout.pk)  # not in progress: said, nothing changes
    assert "is not a transition" in refused.content.decode()
    act("rollout", "resume", rollout.pk)
    rollout.refresh_from_db()
    assert rollout.status == R.IN_PROGRESS
    act("rollout", "abort", rollout.pk)
    rollout.refresh_from_db()
    assert rollout.status == R.ABORTED
    page = client.get(f"/admin/fleet/rollout/{rollout.pk}/change/")
    assert (
        page.status_code == 200 and "not started: the rollout was aborted" in page.content.decode()
    )
    assert client.get(f"/admin/fleet/update/{update.pk}/change/").status_code == 200


def test_the_rollout_page_has_the_buttons_its_status_allows(client, admin_user, update, broker):
    fleet(2)
    client.force_login(admin_user)
    rollout = start(update, start=False)
    page = client.get(f"/admin/fleet/rollout/{rollout.pk}/change/").content.decode()
    assert f"/admin/fleet/rollout/{rollout.pk}/move/start/" in page
    assert "/move/pause/" not in page

    def press(move):
        return client.post(f"/admin/fleet/rollout/{rollout.pk}/move/{move}/", follow=True)

    assert "in_progress" in press("start").content.decode()
    rollout.refresh_from_db()
    assert rollout.status == R.IN_PROGRESS and len(running_jobs()) == 1
    page = press("pause").content.decode()
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED and "/move/resume/" in page and "/move/pause/" not in page
    assert "is not a transition" in press("pause").content.decode()  # said, nothing changes
    assert client.get(f"/admin/fleet/rollout/{rollout.pk}/move/abort/").status_code == 405
    assert client.post(f"/admin/fleet/rollout/{rollout.pk}/move/explode/").status_code == 403
    press("abort")
    rollout.refresh_from_db()
    assert rollout.status == R.ABORTED

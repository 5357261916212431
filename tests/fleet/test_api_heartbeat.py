"""PUT /api/vms/{vm_id}/heartbeat: the monitoring heartbeat under the source API's path, on
Django's view and on the WSGI fast path; ``seq`` optional, ``version`` stored."""

import json
import threading

import pytest
from django.db import connection

from portal.fleet import selectors
from portal.fleet.models import VM
from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath
from portal.monitoring.models import NodeLiveness, Sample
from tests.fleet.api_helpers import SOURCE_BEAT, customer, vm_with_token
from tests.monitoring.test_heartbeat_wsgi import Spy, beat_env, call

pytestmark = pytest.mark.django_db


@pytest.fixture
def beat(api):
    def send(vm_id, token, body=None, path=None):
        return api.put(
            path or f"/api/vms/{vm_id}/heartbeat",
            SOURCE_BEAT if body is None else body,
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    return send


@pytest.fixture
def fast():
    spy = Spy()
    return HeartbeatFastPath(spy), spy


def liveness(vm):
    return NodeLiveness.objects.get(node_id=vm.pk)


def test_the_source_body_without_seq_is_stored_with_the_next_seq(beat):
    vm, token = vm_with_token(customer())
    first = beat(vm.pk, token)
    assert first.status_code == 200, first.json()
    assert first.json()["seq"] == 1 and first.json()["status"] == "up"
    assert beat(vm.pk, token).json()["seq"] == 2
    assert liveness(vm).last_seq == 2
    assert Sample.objects.filter(node_id=vm.pk).count() == 2
    assert selectors.vm_status(VM.objects.get(pk=vm.pk)) == "online"


def test_a_given_seq_is_still_checked_and_a_seqless_beat_follows_it(beat):
    vm, token = vm_with_token(customer())
    assert beat(vm.pk, token, {**SOURCE_BEAT, "seq": 100}).status_code == 200
    stale = beat(vm.pk, token, {**SOURCE_BEAT, "seq": 100})
    assert stale.status_code == 409
    assert (stale.json()["code"], stale.json()["last_seq"]) == ("stale_seq", 100)
    assert beat(vm.pk, token).json()["seq"] == 101  # no seq: after the last one
    assert beat(vm.pk, token, {**SOURCE_BEAT, "seq": 101}).status_code == 409


def test_version_is_stored_kept_when_absent_and_cleared_when_empty(beat):
    vm, token = vm_with_token(customer())
    beat(vm.pk, token, {**SOURCE_BEAT, "version": "3.2.1+build.7"})
    assert liveness(vm).product_version == "3.2.1+build.7"
    beat(vm.pk, token)  # the source's body: no version, the stored one stays
    assert liveness(vm).product_version == "3.2.1+build.7"
    beat(vm.pk, token, {**SOURCE_BEAT, "version": None})
    assert liveness(vm).product_version == "3.2.1+build.7"
    beat(vm.pk, token, {**SOURCE_BEAT, "version": ""})
    assert liveness(vm).product_version == ""


@pytest.mark.parametrize(
    "version", ["x" * 65, "1.0 beta", "1.0;rm -rf /", "{{ lookup('pipe','id') }}", 1.5, True]
)
def test_a_bad_version_is_a_400_naming_it_and_changes_nothing(beat, version):
    vm, token = vm_with_token(customer())
    answer = beat(vm.pk, token, {**SOURCE_BEAT, "version": version})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["version"]
    assert liveness(vm).last_seq == 0 and not Sample.objects.exists()


def test_a_64_character_version_is_taken(beat):
    vm, token = vm_with_token(customer())
    assert beat(vm.pk, token, {**SOURCE_BEAT, "version": "v" * 64}).status_code == 200


def test_the_alias_refuses_what_the_node_path_refuses(beat):
    vm, token = vm_with_token(customer())
    other, other_token = vm_with_token(customer())
    assert beat(vm.pk, other_token).status_code == 404  # another VM's token
    assert beat(vm.pk, "wrong").status_code == 404
    assert beat(10**18 - 1, token).status_code == 404
    assert beat(vm.pk, token, path=f"/api/vms/{10**19}/heartbeat").status_code == 404
    bad = beat(vm.pk, token, {**SOURCE_BEAT, "cpu_percent": "high"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cpu_percent"
    missing = beat(vm.pk, token, {"cpu_percent": 1})
    assert {e["field"] for e in missing.json()["errors"]} == {
        "memory_percent",
        "disk_percent",
        "disk_used_gb",
    }
    assert beat(vm.pk, token, [1, 2]).status_code == 400
    assert liveness(vm).last_seq == 0 and liveness(other).last_seq == 0


@pytest.mark.parametrize("body", [SOURCE_BEAT, {**SOURCE_BEAT, "seq": 5, "version": "1.2.3"}])
def test_the_fast_path_answers_the_alias_without_django(fast, body):
    app, spy = fast
    vm, token = vm_with_token(customer())
    path = f"/api/vms/{vm.pk}/heartbeat"
    answer = call(app, beat_env(vm.pk, token, body, path=path))
    assert answer.status_code == 200, answer.content
    assert spy.paths == []
    row = liveness(vm)
    assert row.last_seq == body.get("seq", 1)
    assert row.product_version == body.get("version", "")
    assert answer.json()["seq"] == row.last_seq


def test_the_fast_path_and_django_answer_the_alias_alike(fast, beat):
    app, spy = fast
    vm, token = vm_with_token(customer())
    bad = {**SOURCE_BEAT, "version": "no spaces"}
    path = f"/api/vms/{vm.pk}/heartbeat"
    fast_answer = call(app, beat_env(vm.pk, token, bad, path=path))
    django_answer = beat(vm.pk, token, bad)
    assert fast_answer.status_code == django_answer.status_code == 400
    assert fast_answer.json() == django_answer.json()
    assert spy.paths == []


def test_the_fast_path_leaves_other_vm_paths_to_django(fast):
    app, spy = fast
    call(app, beat_env(1, "t", SOURCE_BEAT, path="/api/vms/1/status"))
    assert spy.paths == ["/api/vms/1/status"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_seqless_beats_get_distinct_seqs():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (SQLite writes one at a time)")
    from rest_framework.test import APIClient

    vm, token = vm_with_token(customer())
    seqs: list[int] = []

    def send():
        client = APIClient()
        for _ in range(5):
            answer = client.put(
                f"/api/vms/{vm.pk}/heartbeat",
                json.dumps(SOURCE_BEAT),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
            seqs.append(answer.json()["seq"])
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 21))
    assert liveness(vm).last_seq == 20


def test_a_seqless_beat_after_the_largest_seq_is_stored_without_overflowing(beat):
    vm, token = vm_with_token(customer())
    assert beat(vm.pk, token, {**SOURCE_BEAT, "seq": 2**63 - 1}).status_code == 200
    answer = beat(vm.pk, token, {**SOURCE_BEAT, "cpu_percent": 77.0})
    assert (answer.status_code, answer.json()["seq"]) == (200, 2**63 - 1)
    assert liveness(vm).cpu_percent == 77.0

"""Labs are admins' (users only read their sessions): computed fields are refused, and the
id filters do not reveal which ids exist."""

import pytest

from portal.labs.models import Lab
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("broker")]


def test_admin_cannot_set_the_computed_live_sessions(admin_api, lab):
    response = admin_api.patch(
        f"/api/labs/{lab.pk}/", {"live_sessions": 5, "enabled": False}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "live_sessions"
    assert Lab.objects.get(pk=lab.pk).enabled


def test_users_cannot_write_labs_or_sessions(user_api, lab):
    client = user_api(UserFactory())
    assert (
        client.patch(f"/api/labs/{lab.pk}/", {"enabled": False}, format="json").status_code == 403
    )
    assert client.post("/api/lab-sessions/", {"lab": lab.pk}, format="json").status_code == 405


@pytest.mark.parametrize("path, name", [("/api/lab-sessions/", "lab"), ("/api/labs/", "server")])
def test_id_filters(admin_api, user_api, lab, path, name):
    client = user_api(UserFactory()) if name == "lab" else admin_api
    existing = lab.pk if name == "lab" else lab.server_id
    unknown = client.get(path, {name: existing + 1000})
    assert unknown.status_code == 200 and unknown.json()["count"] == 0
    for value in ("abc", "0", str(10**30)):
        response = client.get(path, {name: value})
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["field"] == name

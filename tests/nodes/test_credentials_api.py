import pytest

from portal.nodes.models import Credential
from tests.factories import CredentialFactory, NodeFactory, make_private_key

pytestmark = pytest.mark.django_db


def test_secret_is_write_only_and_fingerprinted(admin_api):
    key = make_private_key()
    response = admin_api.post(
        "/api/credentials/", {"name": "k1", "kind": "ssh_key", "secret": key}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "secret" not in body and body["hint"].startswith("SHA256:")
    listed = admin_api.get("/api/credentials/").content.decode()
    assert "PRIVATE KEY" not in listed and key.splitlines()[1] not in listed
    assert Credential.objects.get(name="k1").secret == key


def test_invalid_key_is_400_on_secret(admin_api):
    response = admin_api.post(
        "/api/credentials/",
        {"name": "bad", "kind": "ssh_key", "secret": "-----BEGIN nonsense"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "secret" and "private key" in error["message"]


def test_update_without_secret_keeps_it(admin_api):
    credential = CredentialFactory(name="keep")
    original = credential.secret
    response = admin_api.patch(
        f"/api/credentials/{credential.pk}/", {"username": "deploy"}, format="json"
    )
    assert response.status_code == 200, response.json()
    credential.refresh_from_db()
    assert credential.secret == original and credential.username == "deploy"


def test_credential_in_use_cannot_be_deleted(admin_api):
    node = NodeFactory()
    response = admin_api.delete(f"/api/credentials/{node.credential.pk}/")
    assert response.status_code == 409 and node.name in response.json()["message"]


def test_only_admins_handle_credentials(user_api):
    assert user_api().get("/api/credentials/").status_code == 403

"""EncryptedTextField: the database holds ciphertext only; keys rotate."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from portal.core import crypto
from portal.nodes.models import Credential
from tests.factories import CredentialFactory


def _stored(credential) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM nodes_credential WHERE id = %s", [credential.pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_database_holds_ciphertext_only():
    credential = CredentialFactory(kind="password", secret="hunter2-very-secret")
    raw = _stored(credential)
    assert "hunter2" not in raw
    assert raw.startswith("gAAAAA")  # a Fernet token
    assert Credential.objects.get(pk=credential.pk).secret == "hunter2-very-secret"


@pytest.mark.django_db
def test_same_plaintext_gives_different_tokens():
    first = CredentialFactory(kind="password", secret="same")
    second = CredentialFactory(kind="password", secret="same")
    assert _stored(first) != _stored(second)


@pytest.mark.django_db
def test_filtering_on_the_secret_is_refused():
    with pytest.raises(TypeError, match="does not support"):
        Credential.objects.filter(secret="x").exists()


@pytest.mark.django_db
def test_key_rotation(settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    credential = CredentialFactory(kind="password", secret="rotate-me")
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert Credential.objects.get(pk=credential.pk).secret == "rotate-me"  # old key reads

    from django.core.management import call_command

    call_command("rotate_field_keys", verbosity=0)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # old key retired
    assert Credential.objects.get(pk=credential.pk).secret == "rotate-me"


@pytest.mark.django_db
def test_unknown_key_gives_clear_error(settings):
    credential = CredentialFactory(kind="password", secret="x")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError, match="rotate_field_keys"):
        Credential.objects.get(pk=credential.pk)

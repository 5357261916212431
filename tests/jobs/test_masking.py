"""Every secret a job is given is masked wherever a playbook prints it (issue #12, finding 9):
the action's sensitive variables and its nodes' credentials, raw or escaped."""

import json

import pytest

from portal.jobs import actions
from portal.jobs.choices import JobStatus
from portal.jobs.events import MASK, Masker
from portal.jobs.models import JobEvent
from tests.factories import AdminFactory, CredentialFactory, NodeFactory
from tests.helpers import stubbed_broker
from tests.jobs.test_stream import events_and_end, iter_frames, stream

# A quote, a backslash and non-ASCII: Ansible prints them escaped, not as they are.
LOGIN_PASSWORD = 'login-"pa\\ss"-wörd-4242'
API_PASSWORD = "api-'sec\"ret'\\-7777"


# --- the masker -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "printed",
    [
        LOGIN_PASSWORD,
        json.dumps(LOGIN_PASSWORD),
        json.dumps(LOGIN_PASSWORD, ensure_ascii=False),
        json.dumps(json.dumps(LOGIN_PASSWORD)),
        repr(LOGIN_PASSWORD),
    ],
)
def test_text_masks_every_printed_form(printed):
    masked = Masker({"password": LOGIN_PASSWORD}).text(f"before {printed} after")
    assert "4242" not in masked and MASK in masked


def test_data_masks_nested_and_escaped_values():
    data = {
        "res": {
            "msg": f"pw={LOGIN_PASSWORD}",
            "stdout": json.dumps({"pw": LOGIN_PASSWORD}),
            "list": [repr(LOGIN_PASSWORD)],
        }
    }
    masked = Masker([LOGIN_PASSWORD]).data(data)
    assert "4242" not in json.dumps(masked, ensure_ascii=False)
    assert masked["res"]["msg"] == f"pw={MASK}"


def test_data_without_secrets_is_returned_as_is():
    data = {"res": {"msg": "hello"}}
    assert Masker({"pw": "secret-value"}).data(data) is data


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "utf-8"])
@pytest.mark.parametrize(
    "secret",
    [LOGIN_PASSWORD, API_PASSWORD, "tail-with-backslash-\\", "ünïcode-sëcret"],
)
def test_data_as_json_text_is_masked_as_the_data_is(secret, ascii_only):
    """The event path masks the callback's JSON text without parsing it (EncodedData): the
    stored value must be what masking the parsed data gives, cut escapes included, whether
    the text \\u-escapes non-ASCII characters (ansible-runner's) or not (our callback's)."""
    data = {
        "res": {
            "msg": f"pw={secret}",
            "stdout": json.dumps({"pw": secret}),
            "items": [repr(secret), {"nested": secret}],
        },
        "host": "h1",
    }
    masker = Masker([secret])
    text = masker.json_text(json.dumps(data, ensure_ascii=ascii_only))
    assert json.loads(text) == masker.data(data)
    assert secret not in json.loads(text)["res"]["msg"]


def test_json_text_without_secrets_is_returned_as_is():
    text = json.dumps({"res": {"msg": "hello"}})
    assert Masker({"pw": "secret-value"}).json_text(text) is text


# --- a real run of a playbook that prints them ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_playbook_printing_hostvars_and_passwords_reveals_no_secret(user_api):
    # Not in the job, nobody connects through it (port 1): only its key file is written.
    jump_credential = CredentialFactory()
    jump = NodeFactory(name="jump", address="127.0.0.1", ssh_port=1, credential=jump_credential)
    password_node = NodeFactory(
        name="pw-node",
        address="127.0.0.1",
        jump_host=jump,
        credential=CredentialFactory(kind="password", secret=LOGIN_PASSWORD),
    )
    key_credential = CredentialFactory()
    key_node = NodeFactory(name="key-node", address="127.0.0.1", credential=key_credential)
    with stubbed_broker():
        job = actions.launch(
            playbook="print_secrets.yml",
            action="tests.recorded",
            nodes=[password_node, key_node],
            extra_vars={"api_password": API_PASSWORD},
        )
    actions.execute(job.pk, job.signature, worker="test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, _stored_text(job)[-3000:]

    stored = _stored_text(job)
    frames = _streamed_text(user_api(AdminFactory()), job)
    secrets = [LOGIN_PASSWORD, API_PASSWORD]
    for credential in (key_credential, jump_credential):
        secrets += [credential.secret.strip(), *_key_body_lines(credential.secret)]
    for text in (stored, frames):
        assert not _revealed(text, secrets)
        assert f"password={MASK}" in text and f"api_password={MASK}" in text
    assert "ansible_password" in stored  # hostvars were printed, the value masked


def _stored_text(job) -> str:
    rows = JobEvent.objects.filter(job=job).values_list("stdout", "event_data")
    return "\n".join(f"{stdout}\n{json.dumps(data, ensure_ascii=False)}" for stdout, data in rows)


def _streamed_text(client, job) -> str:
    events, end = events_and_end(iter_frames(stream(client, job)))
    assert end is not None and events
    return "\n".join(json.dumps(frame["data"], ensure_ascii=False) for frame in events)


def _key_body_lines(key: str) -> list[str]:
    return [line for line in key.splitlines() if line and not line.startswith("-----")]


def _revealed(text: str, secrets: list[str]) -> list[str]:
    """Secrets found in ``text``, raw or JSON-escaped (as stored JSON shows them)."""
    forms = {
        (secret, form)
        for secret in secrets
        for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1])
    }
    return sorted({secret for secret, form in forms if form in text})

"""Strings reach a playbook as the same strings, whatever they look like to YAML (ansible-core
2.19 resolves an `!unsafe` scalar's type as if it were plain), and templates stay text."""

import json

import pytest

from portal.core.unsafe import dump_yaml, mark_unsafe
from portal.jobs import actions
from portal.jobs.choices import JobStatus
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db(transaction=True)

# (YAML 1.1 reads 1e3 as a string: it keeps its tag, and stays a string too.)
LOOKS_LIKE_OTHER_TYPES = ["12", "0123", "0x1f", "1.10", "1e3", "true", "no", "null", "~", ""]
VALUES = {
    **{f"v{i}": text for i, text in enumerate(LOOKS_LIKE_OTHER_TYPES)},
    "date": "2001-12-14",
    "template": "{{ lookup('pipe', 'id') }}",
    "nested": {"list": ["007", "{% raw %}x"], "number": 7, "flag": True},
}


def test_strings_that_look_like_numbers_booleans_or_null_stay_strings(local_node, tmp_path):
    out = tmp_path / "values.json"
    with stubbed_broker():
        job = actions.launch(
            playbook="types.yml",
            nodes=[local_node],
            extra_vars={"values": VALUES, "out_file": str(out)},
        )
    actions.execute(job.pk, job.signature, worker="test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    assert json.loads(out.read_text()) == VALUES


@pytest.mark.parametrize("text", [t for t in LOOKS_LIKE_OTHER_TYPES if t != "1e3"])
def test_only_strings_without_braces_lose_the_unsafe_tag(text):
    assert "!unsafe" not in dump_yaml(mark_unsafe({"a": text}))
    assert "!unsafe" in dump_yaml(mark_unsafe({"a": "{{ x }}"}))
    assert "!unsafe" in dump_yaml(mark_unsafe({"a": "plain words"}))

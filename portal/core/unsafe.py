"""Values that Ansible must treat as text, never as templates (``!unsafe``).

Everything a user or the database supplies reaches Ansible through here, so a value such as
``{{ lookup('pipe', 'id') }}`` stays a string.
"""

from typing import Any

import yaml


class Unsafe(str):
    """Dumped as ``!unsafe '…'``."""


# libyaml's emitter when PyYAML has it (~6x faster: a job's inventory and variables are
# dumped on every run); the representers, ours included, stay Python.
class UnsafeDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


STR_TAG = "tag:yaml.org,2002:str"


def _represent_unsafe(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # ansible-core 2.19 resolves an `!unsafe` scalar's type as if it were plain: `!unsafe ''`
    # is None (which broke every check of an empty value, `code_server_package == ''`, issue
    # #19), `!unsafe '12'` the int 12, `'0123'` the octal 83, `'1.10'` the float 1.1,
    # `'true'` a bool. A string YAML would read as another type holds no template (no brace
    # fits those patterns): it goes as a quoted plain string, which stays a string.
    implicit = dumper.resolve(yaml.ScalarNode, value, (True, False))
    if implicit != STR_TAG and "{" not in value:
        return dumper.represent_scalar(STR_TAG, str(value), style="'")
    return dumper.represent_scalar("!unsafe", str(value), style="'")


UnsafeDumper.add_representer(Unsafe, _represent_unsafe)


def mark_unsafe(value: Any) -> Any:
    """Every string inside ``value`` (dicts and lists walked) becomes :class:`Unsafe`."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {key: mark_unsafe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mark_unsafe(item) for item in value]
    return value


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=UnsafeDumper, sort_keys=True, allow_unicode=True)

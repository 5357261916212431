"""Lookup ``portal.roles.installer_files``: a catalogue installer's files, read on the
controller, for roles/installer_run's module to place on the node in the same call that runs
the script (one SSH round trip instead of a stat, a transfer and a copy per file).

    query('portal.roles.installer_files', '/srv/portal/installers/nginx') | first
    -> {"install.sh": "<base64>", "manifest.yml": "<base64>", ...}

Every regular file under the directory, by its path relative to it: the files the catalogue
hashes (portal/installers/loader.py), so the module's hash check sees the same set.
"""

from __future__ import annotations

import base64
from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: installer_files
short_description: "A catalogue installer's files as {relative path: base64 content}"
description:
  - Reads every regular file under the directory (links leading out refused).
options:
  _terms:
    description: The installer's directory on the controller.
    required: true
"""

MAX_TOTAL_BYTES = 64 * 1024 * 1024


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [read_directory(Path(str(term))) for term in terms]


def read_directory(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        raise AnsibleLookupError(f"installer directory {directory} does not exist")
    root = directory.resolve()
    files, total = {}, 0
    for path in sorted(directory.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        resolved = path.resolve()
        if not resolved.is_relative_to(root) or not resolved.is_file():
            raise AnsibleLookupError(f"{path}: a link leading out or not a file")
        content = resolved.read_bytes()
        total += len(content)
        if total > MAX_TOTAL_BYTES:
            raise AnsibleLookupError(f"{directory}: more than {MAX_TOTAL_BYTES} bytes")
        files[path.relative_to(directory).as_posix()] = base64.b64encode(content).decode()
    return files

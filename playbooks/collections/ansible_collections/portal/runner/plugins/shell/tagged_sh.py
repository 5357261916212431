"""The POSIX shell plugin, plus the portal job's run tag in every module's environment."""

from __future__ import annotations

import os

from ansible.plugins.shell.sh import ShellModule as PosixShellModule

DOCUMENTATION = """
name: tagged_sh
short_description: POSIX shell (/bin/sh) that tags module runs with PORTAL_JOB_RUN
description:
  - C(ansible.builtin.sh), plus C(PORTAL_JOB_RUN) from the controller's environment in the
    environment of every module it runs, inside become. The portal ends what a lost job left
    running on a node by that tag (portal/jobs/orphans.py).
extends_documentation_fragment:
  - shell_common
"""

class ShellModule(PosixShellModule):
    def env_prefix(self, **kwargs):
        tag = os.environ.get("PORTAL_JOB_RUN")
        if tag:
            kwargs = {"PORTAL_JOB_RUN": tag, **kwargs}
        return super().env_prefix(**kwargs)

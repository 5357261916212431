#!/usr/bin/python3
"""Ansible module: run a lab's script for one session, in one remote call."""

from __future__ import annotations

import os
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: lab_script
short_description: Run a lab script with a session's username and namespace
description:
  - Runs C(timeout TIMEOUT INTERPRETER SCRIPT USERNAME NAMESPACE) as an argument vector (no
    shell), and returns its exit code and output whatever the exit code is.
  - A C(script) that is not a regular file fails the task with C(missing=true), without
    running anything.
  - Checking and running happen in one call, so a session costs one remote module run.
options:
  script:
    description: Absolute path of the script on the server.
    type: path
    required: true
  username:
    description: The portal username (first argument).
    type: str
    required: true
  namespace:
    description: The session's namespace (second argument).
    type: str
    required: true
  interpreter:
    description: Program that runs the script.
    type: path
    default: /bin/bash
  timeout:
    description: Seconds before the script is killed (exit code 124).
    type: int
    default: 600
  output_limit:
    description: How many trailing characters of C(output) C(output_tail) keeps (0 keeps all).
    type: int
    default: 0
"""

RETURN = r"""
rc:
  description: Exit code of the script (124 after the timeout).
  type: int
stdout:
  description: Its standard output.
  type: str
stderr:
  description: Its standard error.
  type: str
output:
  description: Its standard output, then its standard error, on separate lines (real
    newlines; either part may be empty).
  type: str
output_tail:
  description: The last C(output_limit) characters of C(output), what the portal is sent.
  type: str
missing:
  description: True when the script was not found (nothing ran).
  type: bool
"""


def is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def combined_output(stdout: str, stderr: str) -> str:
    """stdout then stderr, with a line break between them only when both have text."""
    if stdout and stderr and not stdout.endswith("\n"):
        return f"{stdout}\n{stderr}"
    return stdout + stderr


def tail(text: str, limit: int) -> str:
    """The last ``limit`` characters of text (all of it for 0, as Python's ``[-0:]``)."""
    return text[-limit:]


def main():
    module = AnsibleModule(
        argument_spec={
            "script": {"type": "path", "required": True},
            "username": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "interpreter": {"type": "path", "default": "/bin/bash"},
            "timeout": {"type": "int", "default": 600},
            "output_limit": {"type": "int", "default": 0},
        }
    )
    params = module.params
    if not is_regular_file(params["script"]):
        module.fail_json(
            msg=f"lab script {params['script']} is missing on the server",
            missing=True,
            rc=None,
            stdout="",
            stderr="",
            output="",
            output_tail="",
        )
    argv = [
        "timeout",
        str(params["timeout"]),
        params["interpreter"],
        params["script"],
        params["username"],
        params["namespace"],
    ]
    rc, stdout, stderr = module.run_command(argv, check_rc=False)
    output = combined_output(stdout, stderr)
    module.exit_json(
        changed=rc == 0,
        rc=rc,
        stdout=stdout,
        stderr=stderr,
        output=output,
        output_tail=tail(output, params["output_limit"]),
        missing=False,
    )


if __name__ == "__main__":
    main()

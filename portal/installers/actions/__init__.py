"""Installers' actions: every change of an installation. Every change on a node is a job.

    run.py       one run of playbooks/installer_run.yml (roles/installer_run): the job's
                 variables (secrets apart), its launch, what it reported per host, which
                 hosts the engine retries (exit 2, unreachable)
    install.py   checks (4xx, inputs before any row or job) and do_install (one job for
                 several nodes), do_reinstall, do_upgrade, do_retry (an operator's), do_uninstall
    results.py   what a finished job does to its installations (the exit-code contract);
                 the registry of the job action

Imports go one way: results -> install -> run.
"""

from portal.installers.actions.install import (
    FOLLOW_UPS,
    Launched,
    check_free,
    check_inputs,
    check_nodes,
    check_status,
    do_install,
    do_reinstall,
    do_retry,
    do_uninstall,
    do_upgrade,
    follow_ups,
)
from portal.installers.actions.results import apply_result, note_retry, register_job_actions
from portal.installers.actions.run import PLAYBOOK, RUN, host_results, retryable_hosts

__all__ = [
    "FOLLOW_UPS",
    "PLAYBOOK",
    "RUN",
    "Launched",
    "apply_result",
    "check_free",
    "check_inputs",
    "check_nodes",
    "check_status",
    "do_install",
    "do_reinstall",
    "do_retry",
    "do_uninstall",
    "do_upgrade",
    "follow_ups",
    "host_results",
    "note_retry",
    "register_job_actions",
    "retryable_hosts",
]

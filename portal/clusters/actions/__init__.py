"""Clusters' actions: every change of a cluster's reprovision runs.

    launch.py        the jobs: a node's readiness check, the cluster's formation (variables)
    progress.py      where a run goes once its nodes moved (settle_run), deadlines' follow-up
    power.py         the power driver's calls (reimage, network boot off) and their tasks
    runs.py          start_run, cancel_run, retry_node: checks (4xx) first, then rows + tasks
    registration.py  the post-install script and the node's signed registration (+ legacy)
    results.py       what finished readiness and formation jobs do; the job actions

Imports go one way: results, registration, runs -> power -> progress -> launch.
"""

from portal.clusters.actions.progress import node_timed_out, run_timed_out, settle_run
from portal.clusters.actions.registration import (
    Registered,
    issue_script,
    legacy_register,
    register,
)
from portal.clusters.actions.results import register_job_actions
from portal.clusters.actions.runs import ALL, cancel_run, retry_node, start_run
from portal.clusters.models import NodeReprovision, ReprovisionRun


def wire_timeouts() -> None:
    """What follows a deadline the sweep enforced (models never import actions)."""
    ReprovisionRun.on_timed_out.handler = run_timed_out
    NodeReprovision.on_timed_out.handler = node_timed_out


__all__ = [
    "ALL",
    "Registered",
    "cancel_run",
    "issue_script",
    "legacy_register",
    "register",
    "register_job_actions",
    "retry_node",
    "settle_run",
    "start_run",
    "wire_timeouts",
]

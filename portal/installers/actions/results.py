"""What a finished run does to its installations: the exit-code contract, per node.

| reported                        | install                          | uninstall   |
|---------------------------------|----------------------------------|-------------|
| preflight refused               | rejected, with the reason        | —           |
| exit 0                          | installed                        | uninstalled |
| exit 1 (validation error)       | rejected, never retried          | failed      |
| exit 2 (installation error)     | retried by the engine, then failed | (same)    |
| exit 3 (configuration error)    | needs_operator                   | failed      |
| exit 124 (timeout)              | failed                           | failed      |
| node unreachable                | retried by the engine, then failed | (same)    |
| nothing (job lost, canceled...) | failed, with the job's reason    | failed      |

The retries are the job engine's (``run.retry_policy``): ``on_retry`` settles the nodes
that are not retried and notes the others; ``on_finish`` settles the last attempt's nodes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from portal.installers.actions import run
from portal.installers.choices import InstallationStatus as S
from portal.installers.models import Installation
from portal.jobs import registry, selectors
from portal.jobs.models import Job

MEANING = {
    1: "validation error",
    2: "installation error",
    3: "configuration error",
    124: "timed out",
}
INSTALL_OUTCOME = {0: S.INSTALLED, 1: S.REJECTED, 3: S.NEEDS_OPERATOR}


def register_job_actions() -> None:
    registry.register(
        registry.ActionSpec(
            name=run.RUN,
            playbook=run.PLAYBOOK,
            sensitive_vars=(run.SECRETS,),
            on_finish=apply_result,
            on_retry=note_retry,
            retry=run.retry_policy(),
            forget_secrets=True,
            description="Run a catalogue installer (install or uninstall) on nodes",
        )
    )


def acting_on(job: Job) -> list[Installation]:
    """The installations this job still acts for (a later job may have taken one over)."""
    return list(Installation.objects.filter(current_job=job).select_related("node"))


def note_retry(job: Job, retry_job: Job) -> None:
    """The engine retries some hosts: note them; settle the others now."""
    retried = set(retry_job.limit.split(","))
    results = run.host_results(job)
    unreached = set(run.unreachable(job))
    attempts = settings.INSTALLERS_RETRY_ATTEMPTS
    for installation in acting_on(job):
        if installation.node.name not in retried:
            settle(installation, job, results.get(installation.node.name), unreached)
            continue
        result = results.get(installation.node.name)
        why = (
            f"exit 2 ({MEANING[2]}): {(result or {}).get('failing_line', '')}".rstrip(": ")
            if result
            else "node unreachable"
        )
        when = retry_job.not_before.strftime("%H:%M:%S UTC") if retry_job.not_before else "now"
        with transaction.atomic():
            installation.jobs.add(retry_job)
            installation.note(
                f"{why}; retrying at {when} (attempt {retry_job.attempt} of {attempts})",
                job=retry_job,
                current_job=retry_job,
                **report_fields(result, job),
            )


def apply_result(job: Job) -> None:
    """The last attempt ended: every installation it still acts for gets its outcome."""
    results = run.host_results(job)
    unreached = set(run.unreachable(job))
    for installation in acting_on(job):
        settle(installation, job, results.get(installation.node.name), unreached)


def settle(
    installation: Installation, job: Job, result: dict[str, Any] | None, unreached: set[str]
) -> None:
    stage = job.extra_vars.get("installer_run_action", run.INSTALL)
    to, reason = outcome(stage, job, result, installation.node.name in unreached)
    moving_from = S.UNINSTALLING if stage == run.UNINSTALL else S.INSTALLING
    installation.move(to, [moving_from], reason=reason, job=job, **report_fields(result, job))


def outcome(
    stage: str, job: Job, result: dict[str, Any] | None, unreached: bool
) -> tuple[str, str]:
    """(status, reason) for one node."""
    failed = S.FAILED
    if result is None:
        if unreached:
            return failed, f"node unreachable after {job.attempt} attempt(s)"
        return failed, f"{stage} did not report: {selectors.failure_message(job)}"
    if result.get("stage") == "preflight":
        return S.REJECTED, f"refused by preflight: {result.get('reason', '')}"
    rc = run.exit_code(result)
    where = result.get("failing_line") or ""
    if rc == 0:
        unchanged = " (unchanged)" if result.get("result") == "unchanged" else ""
        return (S.UNINSTALLED if stage == run.UNINSTALL else S.INSTALLED), f"exit 0{unchanged}"
    meaning = MEANING.get(rc, "failed") if rc is not None else "no exit code"
    if rc == run.RETRYABLE_EXIT:
        meaning += f", after {job.attempt} attempt(s)"
    reason = f"exit {rc} ({meaning}): {where}".rstrip(": ")
    undo = result.get("uninstall_rc")
    if undo not in (None, "", "None"):
        reason += f"; uninstall script exited {undo}"
    if stage == run.UNINSTALL:
        return failed, f"uninstall {reason}"
    return (INSTALL_OUTCOME.get(rc, failed) if rc is not None else failed), reason


def report_fields(result: dict[str, Any] | None, job: Job) -> dict[str, Any]:
    """What the installation keeps of a run's report (the role masked the tail)."""
    if result is None:
        return {"attempts": job.attempt}
    return {
        "attempts": job.attempt,
        "exit_code": run.exit_code(result),
        "log_tail": str(result.get("tail") or ""),
        "failing_line": str(result.get("failing_line") or result.get("reason") or "")[:1000],
    }

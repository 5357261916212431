"""One run of the ``installer_run`` playbook: the job's variables, its launch, its reports.

One job serves every node of a request (its hosts run in parallel; the engine's retry runs
again on the hosts that asked for it). The non-secret variables are the job's stored
``extra_vars``; the sensitive inputs go only into ``secret_vars`` (encrypted, masked in
events, forgotten once no retry may need them: ``forget_secrets``) and from there into the
0600 file the role's wrapper exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from portal.installers import inputs
from portal.installers.manifest import Manifest
from portal.jobs import actions as jobs
from portal.jobs import registry, selectors
from portal.jobs.models import Job

if TYPE_CHECKING:
    from portal.installers.models import Installation

RUN = "installers.run"
PLAYBOOK = "installer_run.yml"
SECRETS = "installer_run_secrets"
RESULTS = "installer_run_results"  # set_stats, keyed by host
INSTALL, UNINSTALL = "install", "uninstall"
RETRYABLE_EXIT = 2  # the contract's installation error: retried with backoff
# The run around the script(s): preflight, copying, reporting; an install may also run the
# uninstall script, each under the manifest's timeout.
JOB_OVERHEAD_SECONDS = 300


def retry_policy() -> registry.RetryPolicy:
    return registry.RetryPolicy(
        max_attempts=lambda: settings.INSTALLERS_RETRY_ATTEMPTS,
        base_delay=lambda: settings.INSTALLERS_RETRY_BASE_SECONDS,
        max_delay=lambda: settings.INSTALLERS_RETRY_MAX_SECONDS,
        hosts=retryable_hosts,
    )


def launch(
    installations: Sequence[Installation],
    manifest: Manifest,
    cleaned: inputs.Cleaned,
    *,
    stage: str = INSTALL,
    by: Any = None,
    keep_on_failure: bool = False,
) -> Job:
    """The job running ``stage`` of ``manifest`` on the installations' nodes (in the
    caller's transaction), linked to every installation."""
    secrets = inputs.secret_environment(manifest, cleaned)
    job = jobs.launch(
        playbook=PLAYBOOK,
        action=RUN,
        nodes=[installation.node for installation in installations],
        extra_vars=variables(manifest, cleaned, stage, keep_on_failure),
        secret_vars={SECRETS: secrets} if secrets else None,
        target=installations[0] if len(installations) == 1 else None,
        customer=installations[0].customer,
        requested_by=by,
        timeout=2 * manifest.timeout_seconds + JOB_OVERHEAD_SECONDS,
        # The script's task is silent until it ends (its own timeout ends it first).
        idle_timeout=max(
            settings.JOB_IDLE_TIMEOUT, manifest.timeout_seconds + JOB_OVERHEAD_SECONDS
        ),
    )
    for installation in installations:
        installation.jobs.add(job)
    return job


def variables(
    manifest: Manifest, cleaned: inputs.Cleaned, stage: str, keep_on_failure: bool
) -> dict[str, Any]:
    """The role's variables (roles/installer_run/meta/argument_specs.yml), secrets apart."""
    return {
        "installer_run_id": manifest.id,
        "installer_run_source": str(manifest.directory),
        "installer_run_sha256": manifest.sha256,
        "installer_run_version": manifest.version,
        "installer_run_action": stage,
        "installer_run_script": manifest.install_script,
        "installer_run_uninstall_script": manifest.uninstall_script or "",
        "installer_run_environment": inputs.environment(manifest, cleaned),
        "installer_run_timeout": manifest.timeout_seconds,
        "installer_run_keep_on_failure": keep_on_failure,
        "installer_run_os_family": list(manifest.os_family),
        "installer_run_os_min_version": manifest.os_min_version,
        "installer_run_min_ram_mb": manifest.min_ram_mb or 0,
        "installer_run_min_disk_mb": manifest.min_disk_mb or 0,
    }


def host_results(job: Job) -> dict[str, dict[str, Any]]:
    """What the role reported per host (set_stats): stage, rc, tail, failing_line, ..."""
    reported = selectors.stats_data(job).get(RESULTS)
    return reported if isinstance(reported, dict) else {}


def exit_code(result: dict[str, Any] | None) -> int | None:
    try:
        return int(result["rc"]) if result and result.get("rc") is not None else None
    except (TypeError, ValueError):
        return None


def unreachable(job: Job) -> list[str]:
    return sorted(host for host, counts in job.host_summary.items() if counts.get("unreachable"))


def retryable_hosts(job: Job) -> list[str]:
    """The retry policy's hosts: a script's exit 2 (installation error) or a node not
    reached. Exit 1, 3 and 124 and preflight refusals are never retried."""
    exit_2 = [
        host for host, result in host_results(job).items() if exit_code(result) == RETRYABLE_EXIT
    ]
    return sorted({*exit_2, *unreachable(job)})

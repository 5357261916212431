"""Install, reinstall, upgrade, retry and uninstall: checks (4xx) first, then the rows and
the job in one transaction (the job exists if and only if the change committed).

Inputs are checked before anything is written: a bad input is a 400 naming the input and
the rule (``InputsInvalid``) with no row and no job. Installations keep only the visible,
non-sensitive inputs; a later run (reinstall, upgrade, an operator's retry) reuses them and
takes sensitive ones anew: the previous run's secrets were forgotten when it ended. A
``generate: true`` password is generated only by a first install: a later run not given one
passes none, and the script keeps the password it set (generating a new one would change it
under every client); one given is set (a rotation on purpose).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from portal.core.errors import Conflict, NotFound, PortalError
from portal.installers import catalogue, inputs
from portal.installers.actions import run
from portal.installers.choices import InstallationStatus as S
from portal.installers.manifest import Manifest
from portal.installers.models import Installation
from portal.jobs.models import Job
from portal.nodes.models import Node

MAX_NODES = 200
RETRIABLE = (S.FAILED, S.NEEDS_OPERATOR)
UNINSTALLABLE = (S.INSTALLED, S.FAILED, S.NEEDS_OPERATOR)


@dataclass(frozen=True)
class Launched:
    installations: list[Installation]
    job: Job
    generated: dict[str, str] = field(default_factory=dict)  # show once, never stored


# --- checks ---------------------------------------------------------------------------------


def check_nodes(nodes: Node | Iterable[Node]) -> list[Node]:
    chosen = [nodes] if isinstance(nodes, Node) else list(nodes)
    if not chosen:
        raise PortalError("Choose at least one node.", field="nodes")
    if len(chosen) > MAX_NODES:
        raise PortalError(f"At most {MAX_NODES} nodes in one run.", field="nodes")
    if len({node.pk for node in chosen}) != len(chosen):
        raise PortalError("A node is named twice.", field="nodes")
    return chosen


def check_inputs(
    manifest: Manifest,
    data: object,
    stored: Mapping[str, Any] | None = None,
    regenerate: bool | Collection[str] = True,
) -> inputs.Cleaned:
    """The inputs for a run: ``stored`` (an installation's, those the manifest still
    defines) overridden by ``data``; InputsInvalid (400) names the input and the rule.
    ``regenerate=False``: a ``generate: true`` password not given is left out."""
    known = {spec.name for spec in manifest.inputs}
    kept = {name: value for name, value in (stored or {}).items() if name in known}
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        return inputs.check_inputs(manifest, data)  # refuses it, naming the body
    return inputs.check_inputs(manifest, {**kept, **data}, regenerate=regenerate)


def check_free(nodes: list[Node], installer_id: str) -> None:
    taken = (
        Installation.objects.live()
        .filter(node__in=nodes, installer_id=installer_id)
        .select_related("node")
        .first()
    )
    if taken is not None:
        raise Conflict(
            f"{installer_id} is already {taken.status} on {taken.node.name} "
            f"(installation {taken.pk}): reinstall, upgrade or uninstall it.",
            field="nodes",
            code="already_installed",
        )


def check_status(installation: Installation, allowed: Iterable[str], doing: str) -> None:
    if installation.status not in allowed:
        raise Conflict(
            f"Cannot {doing} installation {installation.pk}: it is {installation.status} "
            f"(only from {', '.join(sorted(allowed))}).",
            field="status",
            code="invalid_status",
        )


# --- install ----------------------------------------------------------------------------------


def do_install(
    nodes: Node | Iterable[Node],
    installer_id: object,
    data: object,
    by: Any = None,
    keep_on_failure: bool = False,
    customer: Any = None,
) -> Launched:
    """Install on one or several nodes with one job. Returns the installations, the job
    and the generated secrets to show once."""
    manifest = catalogue.get(installer_id)  # 404 for anything not in the catalogue
    cleaned = inputs.check_inputs(manifest, data)  # 400 before any row or job
    chosen = check_nodes(nodes)
    try:
        with transaction.atomic():
            check_free(chosen, manifest.id)
            installations = [
                Installation.objects.create(
                    node=node,
                    installer_id=manifest.id,
                    version=manifest.version,
                    manifest_sha256=manifest.sha256,
                    inputs=cleaned.values,
                    customer=customer,
                    requested_by=by if by is not None and by.pk else None,
                    keep_on_failure=keep_on_failure,
                )
                for node in chosen
            ]
            job = _start(installations, manifest, cleaned, by, keep_on_failure, "install")
    except IntegrityError:  # another request installed it meanwhile
        raise Conflict(
            f"{manifest.id} is already being installed on one of these nodes.",
            field="nodes",
            code="already_installed",
        ) from None
    return Launched(installations, job, cleaned.generated)


def do_reinstall(installation: Installation, data: object = None, by: Any = None) -> Launched:
    """Run the same version's install script again (idempotent installers change nothing).
    The catalogue's entry must still be the one installed (else 409: upgrade)."""
    manifest = catalogue.get_exact(installation.installer_id, installation.manifest_sha256)
    return _again(installation, manifest, data, by, (S.INSTALLED,), "reinstall")


def do_upgrade(installation: Installation, data: object = None, by: Any = None) -> Launched:
    """Install the catalogue's current version over the installed one."""
    manifest = catalogue.get(installation.installer_id)
    if manifest.sha256 == installation.manifest_sha256:
        raise Conflict(
            f"Installation {installation.pk} already runs the catalogue's {manifest.version}.",
            field="version",
            code="up_to_date",
        )
    return _again(installation, manifest, data, by, (S.INSTALLED,), "upgrade")


def do_retry(installation: Installation, data: object = None, by: Any = None) -> Launched:
    """An operator's retry of a failed install (needs_operator or failed), with the
    catalogue's current entry (the operator may have fixed the installer)."""
    manifest = catalogue.get(installation.installer_id)
    return _again(installation, manifest, data, by, RETRIABLE, "retry")


def _again(
    installation: Installation,
    manifest: Manifest,
    data: object,
    by: Any,
    allowed: tuple[str, ...],
    doing: str,
) -> Launched:
    check_status(installation, allowed, doing)
    # uninstall.sh undoes a failed FIRST install; on a node where the application was once
    # installed it would delete what it holds (postgresql: the database), so a failed
    # reinstall, upgrade or retry of it leaves the node as the failure left it.
    was_installed = installation.history.filter(status=S.INSTALLED).exists()
    # The installed password stays unless one is given: the script keeps the current one.
    # One the node never had (an upgrade added it; no install ever succeeded) is generated
    # like a first install's.
    regenerate = never_given(installation, manifest) if was_installed else True
    cleaned = check_inputs(manifest, data, installation.inputs, regenerate=regenerate)
    with transaction.atomic():
        locked = Installation.objects.select_for_update().get(pk=installation.pk)
        check_status(locked, allowed, doing)
        Installation.objects.filter(pk=locked.pk).update(
            version=manifest.version, manifest_sha256=manifest.sha256, inputs=cleaned.values
        )
        locked.refresh_from_db()
        keep = locked.keep_on_failure or was_installed
        job = _start([locked], manifest, cleaned, by, keep, doing)
    installation.refresh_from_db()
    return Launched([installation], job, cleaned.generated)


def never_given(installation: Installation, manifest: Manifest) -> frozenset[str]:
    """The manifest's ``generate: true`` passwords this node was never given (none for rows
    from before ``secret_inputs`` was kept: their passwords are taken as set)."""
    if installation.secret_inputs is None:
        return frozenset()
    generated = {spec.name for spec in manifest.inputs if spec.generate}
    return frozenset(generated - set(installation.secret_inputs))


def _start(
    installations: list[Installation],
    manifest: Manifest,
    cleaned: inputs.Cleaned,
    by: Any,
    keep_on_failure: bool,
    doing: str,
) -> Job:
    job = run.launch(installations, manifest, cleaned, by=by, keep_on_failure=keep_on_failure)
    for installation in installations:
        given = set(installation.secret_inputs or ()) | set(cleaned.secrets)
        installation.move(
            S.INSTALLING,
            reason=f"{doing} {manifest.version}: job {job.pk}",
            job=job,
            by=by,
            current_job=job,
            attempts=0,
            exit_code=None,
            failing_line="",
            secret_inputs=sorted(given),
        )
    return job


# --- uninstall --------------------------------------------------------------------------------


def do_uninstall(installation: Installation, by: Any = None) -> Launched:
    """Run the installer's uninstall script (the catalogue's current entry) with the
    installation's stored inputs."""
    manifest = catalogue.get(installation.installer_id)
    if not manifest.uninstall_script:
        raise Conflict(
            f"Installer {manifest.id} has no uninstall script.", field="installer", code="no_script"
        )
    check_status(installation, UNINSTALLABLE, "uninstall")
    known = {spec.name for spec in manifest.inputs}
    # The stored values as they are: an uninstall must not fail on a rule that changed.
    cleaned = inputs.Cleaned(values={k: v for k, v in installation.inputs.items() if k in known})
    with transaction.atomic():
        locked = Installation.objects.select_for_update().get(pk=installation.pk)
        check_status(locked, UNINSTALLABLE, "uninstall")
        job = run.launch([locked], manifest, cleaned, stage=run.UNINSTALL, by=by)
        locked.move(
            S.UNINSTALLING,
            reason=f"uninstall: job {job.pk}",
            job=job,
            by=by,
            current_job=job,
            attempts=0,
            exit_code=None,
            failing_line="",
        )
    installation.refresh_from_db()
    return Launched([installation], job)


# The follow-ups of an installation: what each runs and the statuses it starts from. The
# admin's buttons and the operator page's read this one table.
FOLLOW_UPS: dict[str, tuple[Callable[..., Launched], tuple[str, ...]]] = {
    "reinstall": (do_reinstall, (S.INSTALLED,)),
    "upgrade": (do_upgrade, (S.INSTALLED,)),
    "retry": (do_retry, RETRIABLE),
    "uninstall": (do_uninstall, UNINSTALLABLE),
}


def follow_ups(installation: Installation) -> list[str]:
    """The follow-ups that apply now (upgrade: only when the catalogue has another version)."""
    shown = [name for name, (_do, start) in FOLLOW_UPS.items() if installation.status in start]
    if "upgrade" in shown and not upgrade_available(installation):
        shown.remove("upgrade")
    return shown


def upgrade_available(installation: Installation) -> bool:
    try:
        return catalogue.get(installation.installer_id).sha256 != installation.manifest_sha256
    except NotFound:  # gone from the catalogue: nothing to upgrade to
        return False

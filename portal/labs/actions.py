"""Lab sessions: assign, provision, retry, extend, expire. Every machine change is a job.

Provisioning keeps the old collector's contract (script exit 0 → ACTIVE, anything else →
FAILED, an unreachable server is not a failure) without its polling delay: assigning a lab
launches ``lab_provision.yml`` at once; the job engine retries an unreachable server with
capped exponential backoff while the session shows "waiting for server".
"""

import hashlib
import logging
import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal.core.errors import Conflict, PortalError
from portal.core.services import editable_fields, model_update
from portal.jobs import actions as jobs
from portal.jobs import registry
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.selectors import failure_message, stats_data
from portal.labs import selectors
from portal.labs.choices import LIVE, ON_SERVER, SessionStatus
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import NodePurpose

logger = logging.getLogger(__name__)

PROVISION = "labs.provision"
CLEANUP = "labs.cleanup"
S = SessionStatus


def register_job_actions() -> None:
    retry = registry.RetryPolicy(
        max_attempts=lambda: settings.LAB_RETRY_MAX_ATTEMPTS,
        base_delay=lambda: settings.LAB_RETRY_BASE_SECONDS,
        max_delay=lambda: settings.LAB_RETRY_MAX_SECONDS,
    )
    registry.register(
        registry.ActionSpec(
            name=PROVISION,
            playbook="lab_provision.yml",
            retry=retry,
            on_finish=apply_provision_result,
            on_retry=note_waiting_for_server,
            description="Run a lab's provision script for a session",
        )
    )
    registry.register(
        registry.ActionSpec(
            name=CLEANUP,
            playbook="lab_cleanup.yml",
            retry=retry,
            on_finish=apply_cleanup_result,
            on_retry=note_waiting_for_server,
            description="Run a lab's cleanup script for a session",
        )
    )


# --- checks -------------------------------------------------------------------------------


def new_namespace(user) -> str:
    return f"user-{user.pk}-{secrets.token_hex(4)}"


def new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def check_lab_usable(lab: Lab) -> None:
    if not lab.enabled:
        raise Conflict(f"Lab {lab.name} is disabled.", field="lab")
    if not lab.server.enabled:
        raise Conflict(f"The lab server {lab.server.name} is disabled.", field="lab")


SAFE_USERNAME = re.compile(r"^[\w.@+-]{1,150}\Z", re.ASCII)


def check_username(user) -> None:
    """Django's own username alphabet: anything else is refused before it nears a server
    (the role passes arguments as argv and asserts the same alphabet again)."""
    if not SAFE_USERNAME.match(user.username):
        raise PortalError(
            f"Username {user.username!r} has characters a lab script cannot "
            "receive (allowed: letters, digits, @ . + - _).",
            field="user",
        )


def check_window(start, expiry) -> None:
    if expiry <= start:
        raise PortalError("Expiry must be after the start.", field="access_expiry")
    if expiry <= timezone.now():
        raise PortalError("Expiry must be in the future.", field="access_expiry")


def check_no_live_session(lab: Lab, user) -> None:
    if lab.allow_concurrent_sessions:
        return
    live = selectors.live_session_of(lab, user)
    if live is not None:
        raise Conflict(
            f"{user} already has a {live.status} session of {lab.name} (session {live.pk}).",
            field="user",
            code="session_exists",
        )


# --- labs ---------------------------------------------------------------------------------


def check_lab_server(server) -> None:
    if server.purpose != NodePurpose.LAB_SERVER:
        raise PortalError(
            f"Node {server.name} is not a lab server (its purpose is {server.purpose}).",
            field="server",
            code="not_a_lab_server",
        )


@transaction.atomic
def do_create_lab(**fields) -> Lab:
    lab = Lab(**fields)
    check_lab_server(lab.server)
    lab.full_clean()
    lab.save()
    return lab


@transaction.atomic
def do_update_lab(lab: Lab, **fields) -> Lab:
    check_lab_server(fields.get("server", lab.server))
    return model_update(lab, fields, editable_fields(Lab))[0]


@transaction.atomic
def do_delete_lab(lab: Lab) -> None:
    if selectors.has_sessions(lab):
        raise Conflict(
            f"Lab {lab.name} has sessions; disable it instead of deleting it.",
            field="lab",
            code="in_use",
        )
    lab.delete()


# --- assign and provision -----------------------------------------------------------------


def do_assign(
    lab: Lab, user, *, start=None, expiry=None, duration: timedelta | None = None, by=None
) -> tuple[LabSession, str]:
    """Create the session and launch provisioning now (or when ``start`` comes).

    Returns the session and its token; only the token's hash is stored.
    """
    start = start or timezone.now()
    expiry = expiry or start + (duration or lab.default_duration)
    check_lab_usable(lab)
    check_username(user)
    check_window(start, expiry)
    with transaction.atomic():
        # Serialise assignments per user, so "one live session per lab" holds under races.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        check_no_live_session(lab, user)
        token, token_hash = new_token()
        session = LabSession.objects.create(
            lab=lab,
            user=user,
            namespace=new_namespace(user),
            access_start=start,
            access_expiry=expiry,
            token_hash=token_hash,
            assigned_by=by,
        )
        if start <= timezone.now():
            launch_provision(session, by=by)
    logger.info("lab %s assigned to %s", lab.name, user, extra={"object_id": session.pk})
    return session, token


def do_assign_many(lab: Lab, users, **options) -> list[tuple]:
    """Assign to a whole class: every user gets a session or the reason they did not.

    What concerns the whole request (the lab, the window) is refused once, for everyone.
    """
    check_lab_usable(lab)
    if options.get("expiry") is not None:
        check_window(options.get("start") or timezone.now(), options["expiry"])
    results: list[tuple[Any, ...]] = []
    for user in users:
        try:
            results.append((user, *do_assign(lab, user, **options), None))
        except PortalError as exc:
            results.append((user, None, None, exc))
    return results


def check_self_service(lab: Lab) -> None:
    if not lab.self_service:
        raise PortalError(
            f"Lab {lab.name} is assigned by the administrators; ask them for a session.",
            field="lab",
            code="not_self_service",
        )


def do_start_own(lab: Lab, user) -> LabSession:
    """A signed-in user starts a self-service lab for themselves, now, for the lab's default
    duration: the same checks and provisioning as an admin's assignment."""
    check_self_service(lab)
    session, _token = do_assign(lab, user, by=user)
    return session


def _script_vars(session: LabSession, script: str) -> dict:
    return {
        "lab_session_script": script,
        "lab_session_username": session.user.username,
        "lab_session_namespace": session.namespace,
    }


def launch_provision(session: LabSession, by=None) -> Job:
    # Only the caller that moves the session launches: two clicks make one job.
    if not session.move(
        S.PROVISIONING,
        [S.REQUESTED],
        attempts=F("attempts") + 1,
        waiting_for_server=False,
        next_retry_at=None,
    ):
        raise Conflict(f"Session {session.pk} is already being provisioned.", field="status")
    return jobs.launch(
        playbook="lab_provision.yml",
        action=PROVISION,
        nodes=[session.lab.server],
        extra_vars=_script_vars(session, session.lab.provision_script_path),
        target=session,
        requested_by=by,
    )


def launch_cleanup(session: LabSession, by=None) -> Job:
    return jobs.launch(
        playbook="lab_cleanup.yml",
        action=CLEANUP,
        nodes=[session.lab.server],
        extra_vars=_script_vars(session, session.lab.cleanup_script_path),
        target=session,
        requested_by=by,
    )


# --- results from the job engine ----------------------------------------------------------


def _session(job: Job) -> LabSession | None:
    session = job.target
    return session if isinstance(session, LabSession) else None


def script_result(job: Job) -> tuple[int | None, str]:
    """The script's rc and output, as the lab_session role reported them (set_stats)."""
    data = stats_data(job)
    return data.get("lab_session_rc"), data.get("lab_session_output", "")


def apply_provision_result(job: Job) -> None:
    session = _session(job)
    if session is None:
        return
    rc, output = script_result(job)
    fields: dict[str, Any] = {
        "last_rc": rc,
        "last_output": output[-8000:],
        "waiting_for_server": False,
        "next_retry_at": None,
    }
    waiting = [S.PROVISIONING, S.REQUESTED]
    if job.status == JobStatus.SUCCESSFUL:
        session.move(S.ACTIVE, waiting, provisioned=True, last_error="", **fields)
    elif job.status == JobStatus.CANCELED:
        session.move(S.REQUESTED, waiting, last_error="provisioning was canceled", **fields)
    elif job.status == JobStatus.LOST or jobs.unreachable_only(job):
        # Not the script's failure: the tick provisions it again.
        session.move(
            S.REQUESTED, waiting, last_error=f"not provisioned yet: {job.reason}", **fields
        )
    else:
        reason = f"provision script exited {rc}" if rc else failure_message(job)
        session.move(S.FAILED, waiting, last_error=reason, **fields)


def apply_cleanup_result(job: Job) -> None:
    session = _session(job)
    if session is None:
        return
    rc, output = script_result(job)
    fields: dict[str, Any] = {
        "last_rc": rc,
        "last_output": output[-8000:],
        "waiting_for_server": False,
    }
    if job.status == JobStatus.SUCCESSFUL:
        session.move(
            S.EXPIRED, [S.EXPIRING], provisioned=False, last_error="", next_retry_at=None, **fields
        )
        return
    reason = f"cleanup script exited {rc}" if rc else failure_message(job)
    delay = settings.LAB_RETRY_BASE_SECONDS * 2 ** min(session.attempts, 10)
    session.move(
        S.CLEANUP_FAILED,
        [S.EXPIRING],
        last_error=reason,
        attempts=F("attempts") + 1,
        next_retry_at=timezone.now()
        + timedelta(seconds=min(delay, settings.LAB_RETRY_MAX_SECONDS)),
        **fields,
    )


def note_waiting_for_server(job: Job, retry_job: Job) -> None:
    session = _session(job)
    if session is None:
        return
    # A provision retry never brings back a session that was ended meanwhile (expiring).
    if job.action == PROVISION:
        status, allowed_from = S.REQUESTED, [S.PROVISIONING, S.REQUESTED]
    else:
        status, allowed_from = S.EXPIRING, [S.EXPIRING]
    session.move(
        status,
        allowed_from,
        waiting_for_server=True,
        next_retry_at=retry_job.not_before,
        attempts=F("attempts") + 1,
        last_error=f"waiting for server {session.lab.server.name}: {job.reason}",
    )


# --- operate: retry, extend, end ----------------------------------------------------------


def do_retry(session: LabSession, by=None) -> LabSession:
    if session.status != S.FAILED:
        raise Conflict(
            f"Only a failed session can be retried (this one is {session.status}).", field="status"
        )
    with transaction.atomic():
        if not session.move(S.REQUESTED, [S.FAILED], last_error=""):
            raise Conflict("The session was already retried.", field="status")
        launch_provision(session, by=by)
    return session


def do_extend(
    session: LabSession, *, until=None, duration: timedelta | None = None, by=None
) -> LabSession:
    if session.status not in LIVE:
        raise Conflict(f"A {session.status} session cannot be extended.", field="status")
    new_expiry = until or session.access_expiry + (duration or session.lab.default_duration)
    if new_expiry <= max(timezone.now(), session.access_start):
        raise PortalError("The new expiry must be in the future.", field="access_expiry")
    LabSession.objects.filter(pk=session.pk).update(access_expiry=new_expiry)
    session.refresh_from_db()
    logger.info("lab session extended to %s by %s", new_expiry, by, extra={"object_id": session.pk})
    return session


def check_user_extend(session: LabSession, user) -> None:
    """May this user extend their own session once (the lab's ``user_extend_minutes``)?"""
    if session.user_id != getattr(user, "pk", None):
        raise PortalError(
            "Only the session's user extends it this way.", field="user", code="not_yours"
        )
    if not session.lab.user_extend_minutes:
        raise Conflict(
            f"Lab {session.lab.name} cannot be extended by its users.",
            field="lab",
            code="extend_not_allowed",
        )
    if session.status != S.ACTIVE:
        raise Conflict(
            f"Only an active session can be extended (this one is {session.status}).",
            field="status",
        )
    if session.user_extended_at is not None:
        raise Conflict(
            "This session was already extended once.", field="status", code="already_extended"
        )


def do_user_extend(session: LabSession, user) -> LabSession:
    """The user's one extension: claimed by a guarded update (two clicks, one extension),
    then applied by :func:`do_extend` in the same transaction."""
    check_user_extend(session, user)
    with transaction.atomic():
        claimed = LabSession.objects.filter(
            pk=session.pk,
            status=S.ACTIVE,
            user_extended_at__isnull=True,
        ).update(user_extended_at=timezone.now())
        if not claimed:
            raise Conflict(
                "This session was already extended once.", field="status", code="already_extended"
            )
        session.refresh_from_db()
        return do_extend(
            session, duration=timedelta(minutes=session.lab.user_extend_minutes), by=user
        )


def do_end(session: LabSession, by=None) -> LabSession:
    """Expire now: stop any provisioning, run the cleanup script where needed."""
    if session.status in (S.EXPIRED, S.EXPIRING):
        raise Conflict(f"The session is already {session.status}.", field="status")
    touched_server = False
    for job in selectors.active_jobs_of(session):
        touched_server |= job.status == JobStatus.RUNNING
        jobs.cancel(job, by=by)
    session.refresh_from_db()
    now = timezone.now()
    with transaction.atomic():
        expiry = min(now, session.access_expiry)
        if touched_server or session.provisioned or session.status in ON_SERVER:
            if not session.move(
                S.EXPIRING, [session.status], next_retry_at=None, access_expiry=expiry
            ):
                raise Conflict("The session changed meanwhile; try again.", field="status")
            launch_cleanup(session, by=by)
        else:  # never reached the server: nothing to clean up
            session.move(S.EXPIRED, [session.status], access_expiry=expiry)
    return session


# --- the periodic tick (beat) -------------------------------------------------------------


def tick(now=None) -> dict:
    """Start sessions whose time came, expire those past their expiry, retry cleanups."""
    now = now or timezone.now()
    counts = {"started": 0, "expired": 0, "cleanup_retried": 0}
    for session in selectors.due_to_start(now):
        with transaction.atomic():
            launch_provision(session)
        counts["started"] += 1
    for session in LabSession.objects.due_for_cleanup(now).exclude(status=S.CLEANUP_FAILED):
        do_end(session)
        counts["expired"] += 1
    for session in selectors.cleanups_to_retry(now, settings.LAB_CLEANUP_MAX_ATTEMPTS):
        with transaction.atomic():
            if session.move(S.EXPIRING, [S.CLEANUP_FAILED]):
                launch_cleanup(session)
                counts["cleanup_retried"] += 1
    return counts

"""Reads about labs and lab sessions: the customer pages, the API, the admin, the tick."""

from django.db.models import Count, Q

from portal.jobs.choices import ACTIVE as JOB_ACTIVE
from portal.jobs.selectors import jobs_of
from portal.labs.choices import LIVE, SessionStatus
from portal.labs.models import Lab, LabSession

# What "My labs" lists: live sessions, and failed ones (so the user sees why).
SHOWN_TO_USERS = LIVE | {SessionStatus.FAILED}


def with_live_count(labs):
    """Labs annotated with ``live_sessions``: their requested, provisioning or active
    sessions."""
    return labs.annotate(live_sessions=Count("sessions", filter=Q(sessions__status__in=LIVE)))


def labs_with_live_counts():
    return with_live_count(Lab.objects.select_related("server")).order_by("name")


def live_session_count(lab: Lab) -> int:
    """The annotation's figure when the lab came with it, else counted."""
    annotated = getattr(lab, "live_sessions", None)
    if annotated is not None:
        return annotated
    return lab.sessions.filter(status__in=LIVE).count()


def live_or_not(sessions, *, live: bool):
    return sessions.filter(status__in=LIVE) if live else sessions.exclude(status__in=LIVE)


def sessions_shown_to(user):
    """The user's own sessions for the "My labs" page, the one ending soonest first."""
    return (
        LabSession.objects.filter(user=user, status__in=SHOWN_TO_USERS)
        .select_related("lab", "user")
        .order_by("access_expiry")
    )


def self_service_labs(user):
    """Labs the user may start now: enabled, self-service, on an enabled server, and
    (unless concurrent sessions are allowed) without a live session of theirs."""
    labs = Lab.objects.filter(enabled=True, self_service=True, server__enabled=True)
    busy = LabSession.objects.filter(user=user, status__in=LIVE).values("lab")
    return labs.exclude(Q(allow_concurrent_sessions=False) & Q(pk__in=busy)).order_by("name")


def live_session_of(lab: Lab, user) -> LabSession | None:
    return LabSession.objects.filter(lab=lab, user=user, status__in=LIVE).first()


def has_sessions(lab: Lab) -> bool:
    return lab.sessions.exists()


def active_jobs_of(session: LabSession):
    """The session's jobs still pending, dispatched or running."""
    return jobs_of(session).filter(status__in=JOB_ACTIVE)


def due_to_start(now) -> list[LabSession]:
    """Requested sessions whose access window is open and that no job is provisioning."""
    waiting = LabSession.objects.filter(
        status=SessionStatus.REQUESTED, access_start__lte=now, access_expiry__gt=now
    ).select_related("lab", "user")
    return [session for session in waiting if not active_jobs_of(session).exists()]


def cleanups_to_retry(now, max_attempts: int):
    return LabSession.objects.filter(
        status=SessionStatus.CLEANUP_FAILED, next_retry_at__lte=now, attempts__lt=max_attempts
    )

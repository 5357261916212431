"""Customer web UI: a user's labs with their time left, and the labs they may start."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.core.errors import PortalError
from portal.labs import actions, selectors
from portal.labs.choices import SessionStatus
from portal.labs.instructions import for_session
from portal.labs.models import Lab


def _time_left_text(delta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m {seconds % 60:02d}s"


def _may_extend(session, user) -> bool:
    try:
        actions.check_user_extend(session, user)
    except PortalError:
        return False
    return True


def _duration_text(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return (
        " ".join(
            part
            for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "")
            if part
        )
        or "0 min"
    )


@login_required
def my_labs(request, start_error=None, status=200):
    sessions = selectors.sessions_shown_to(request.user)
    for session in sessions:
        session.time_left_text = _time_left_text(session.time_left)
        session.instructions = (
            for_session(session) if session.status == SessionStatus.ACTIVE else ""
        )
        session.can_extend = _may_extend(session, request.user)
    startable = list(selectors.self_service_labs(request.user))
    for lab in startable:
        lab.duration_text = _duration_text(lab.default_duration)
    return render(
        request,
        "labs/my_labs.html",
        {
            "sessions": sessions,
            "startable": startable,
            "start_error": start_error,
        },
        status=status,
    )


@login_required
@require_POST
def start_lab(request, pk):
    """Start a self-service lab for oneself (do_start_own); the new session shows on My labs
    while it is provisioned. A refusal is shown above the labs one may start."""
    lab = get_object_or_404(Lab, pk=pk, enabled=True, self_service=True)
    try:
        actions.do_start_own(lab, request.user)
    except PortalError as error:
        return my_labs(request, start_error=error.message, status=error.status_code)
    return redirect("labs:mine")

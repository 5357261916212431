"""Customer web UI: a user's labs with their time left."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portal.core.errors import PortalError
from portal.labs import actions
from portal.labs.choices import LIVE, SessionStatus
from portal.labs.instructions import for_session
from portal.labs.models import LabSession

SHOWN = LIVE | {SessionStatus.FAILED}


def _time_left_text(delta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m {seconds % 60:02d}s"


def _may_extend(session, user) -> bool:
    try:
        actions.check_user_extend(session, user)
    except PortalError:
        return False
    return True


@login_required
def my_labs(request):
    sessions = (LabSession.objects.filter(user=request.user, status__in=SHOWN)
                .select_related("lab", "user").order_by("access_expiry"))
    for session in sessions:
        session.time_left_text = _time_left_text(session.time_left)
        session.instructions = (for_session(session) if session.status == SessionStatus.ACTIVE
                                else "")
        session.can_extend = _may_extend(session, request.user)
    return render(request, "labs/my_labs.html", {"sessions": sessions})

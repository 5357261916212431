"""The labs' figures on the admin home (registered with portal.jobs.dashboard)."""

from typing import Any

from portal.labs.choices import SessionStatus
from portal.labs.models import LabSession


def labs_active() -> int:
    return LabSession.objects.filter(status=SessionStatus.ACTIVE).count()


def admin_home_figures() -> dict[str, Any]:
    return {"labs_active": labs_active()}

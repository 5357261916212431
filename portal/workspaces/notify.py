"""Tell the admins when workspace creates are refused for want of room (#19).

A create refused with ``no_node`` (no enabled workspace node) or ``no_capacity`` (no free
port) is recorded as a :class:`CapacityRefusal` row (the admin home counts the last 24
hours') and emailed to the admins: at most one email per node group in
``CAPACITY_NOTICE_MINUTES``, claimed by a guarded update of a :class:`CapacityNotice` row, so
a burst of refused creates (or two web processes) sends one email, not one per create.

The refusal is raised inside the create's transaction, which rolls back; so the record is
written by :func:`tells_admins_when_full`, around ``do_create``, once that transaction is
over. The admins are the ``ADMINS`` setting when set, else the active staff users with an
email address.
"""

import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.core.errors import Conflict
from portal.workspaces.models import CapacityNotice, CapacityRefusal
from portal.workspaces.selectors import workspace_nodes

logger = logging.getLogger(__name__)

REFUSALS = frozenset({"no_node", "no_capacity"})
NO_GROUP = "(no group)"


def admin_addresses() -> list[str]:
    configured = [address for _, address in settings.ADMINS]
    if configured:
        return configured
    staff = (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )
    return list(dict.fromkeys(staff))


def scope_of(node=None) -> str:
    """The node group(s) that had no room: the asked-for node's, else those of every
    enabled workspace node ("no workspace node" when there is none)."""
    nodes = [node] if node is not None else list(workspace_nodes().select_related("group"))
    if not nodes:
        return "no workspace node"
    names = sorted({n.group.name if n.group_id else NO_GROUP for n in nodes})
    return ", ".join(names)[:200]


def claim(scope: str, now=None) -> bool:
    """True for the one caller that may email about ``scope`` now (none was sent for it in
    the window)."""
    now = now or timezone.now()
    window = timedelta(minutes=settings.CAPACITY_NOTICE_MINUTES)
    if CapacityNotice.objects.filter(scope=scope, last_told_at__lte=now - window).update(
        last_told_at=now
    ):
        return True
    try:
        with transaction.atomic():
            CapacityNotice.objects.create(scope=scope, last_told_at=now)
    except IntegrityError:  # exists, and told within the window (or just now by another)
        return False
    return True


def refused(refusal: Conflict, *, customer=None, node=None) -> CapacityRefusal:
    """Record the refusal; email the admins unless they were told about its scope within
    the window. A failed send is logged: the customer's answer does not change."""
    scope = scope_of(node)
    now = timezone.now()
    row = CapacityRefusal.objects.create(
        at=now,
        code=refusal.code,
        scope=scope,
        message=refusal.message,
        customer=customer if customer is not None and customer.pk else None,
    )
    logger.warning("workspace create refused (%s) for %s: %s", refusal.code, scope, refusal.message)
    if not claim(scope, now):
        return row
    since = now - timedelta(hours=24)
    count = CapacityRefusal.objects.filter(scope=scope, at__gte=since).count()
    base = settings.PORTAL_URL or ""
    body = "\n".join(
        (
            "A customer could not create a workspace:",
            "",
            f"  {refusal.message}",
            "",
            f"Node group: {scope}",
            f"Customer: {customer.name if customer is not None else '-'}",
            f"Creates refused for this group in the last 24 hours: {count}",
            "",
            "Add or enable a workspace node, or widen a node's port range, in the admin:",
            f"  {base}/admin/nodes/node/",
            "",
            f"You get at most one such email per node group every "
            f"{settings.CAPACITY_NOTICE_MINUTES} minutes; the admin home counts every refusal.",
        )
    )
    recipients = admin_addresses()
    if not recipients:
        logger.warning(
            "no admin to tell about the refused create (no ADMINS, no staff "
            "user with an email address)"
        )
        return row
    try:
        send_mail(
            f"[portal] Workspace creates refused: no room in {scope}",
            body,
            settings.SERVER_EMAIL,
            recipients,
        )
    except Exception as exc:  # SMTP down: the refusal is recorded; say so in the log
        logger.warning("could not email the admins about the refused create: %s", exc)
        return row
    CapacityRefusal.objects.filter(pk=row.pk).update(admins_told=True)
    row.admins_told = True
    return row


def refusals_last_day(now=None) -> int:
    return CapacityRefusal.objects.filter(
        at__gte=(now or timezone.now()) - timedelta(hours=24)
    ).count()


def tells_admins_when_full(create):
    """Around ``do_create(customer, owner, name, …, node=None)``: a refusal for want of room
    is recorded and told once the create's transaction has rolled back, then re-raised."""

    @functools.wraps(create)
    def wrapper(customer, *args, **kwargs):
        try:
            return create(customer, *args, **kwargs)
        except Conflict as refusal:
            if refusal.code in REFUSALS:
                try:
                    with transaction.atomic():  # a savepoint: a caller's transaction survives
                        refused(refusal, customer=customer, node=kwargs.get("node"))
                except Exception:  # never turn the customer's 409 into a 500
                    logger.exception("recording a refused workspace create failed")
            raise

    return wrapper

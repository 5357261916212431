"""Create: check, record the workspace ``pending``, launch one create run per node and customer.

Create is two steps. :func:`do_create` records the workspace (plan limit, node, port, user
name) in one transaction that serialises on the customer (exact plan limits) and on the node
(ports never collide; a unique constraint is the backstop) and leaves it ``pending``. Then
:func:`provision_pending` launches ONE ``workspace_create.yml`` run for everything pending for
that node and customer: creates queued together are provisioned together, and a run never
carries another customer's workspaces (its output is visible to the customer). While a node's
run is going, new creates wait and join the next run, which the result handler
(results.apply_create_result) starts.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count

from portal.accounts.choices import BillingStatus
from portal.accounts.models import Customer, Membership
from portal.core.errors import Conflict, PortalError
from portal.jobs.choices import ACTIVE as JOB_ACTIVE
from portal.jobs.models import Job
from portal.nodes.models import Node
from portal.workspaces import naming, notify
from portal.workspaces.actions.runs import CREATE, launch_for, move_all, passwords
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from portal.workspaces.selectors import workspace_nodes

logger = logging.getLogger(__name__)


# --- checks -------------------------------------------------------------------------------


def check_owner(customer: Customer, owner) -> None:
    if owner is None or not owner.pk:
        raise PortalError("A workspace needs an owner.", field="owner")
    if not Membership.objects.filter(customer=customer, user=owner).exists():
        raise PortalError(
            f"{owner} is not a member of {customer}.", field="owner", code="not_a_member"
        )


def check_customer_may_create(customer: Customer) -> None:
    if customer.billing_status != BillingStatus.ACTIVE:
        raise Conflict(
            f"The account is {customer.billing_status}: new workspaces are paused.",
            field="customer",
            code="billing",
        )


def check_plan_limit(customer: Customer) -> None:
    """Call with the customer row locked: the count is exact under concurrent creates."""
    limit = customer.plan.workspace_limit
    used = Workspace.objects.filter(customer=customer).live().count()
    if used >= limit:
        raise Conflict(
            f"The {customer.plan.name} plan allows {limit} workspace"
            f"{'s' if limit != 1 else ''}; {used} exist. Delete one or upgrade.",
            field="plan",
            code="plan_limit",
        )


def check_name_free(customer: Customer, name: str) -> None:
    if Workspace.objects.live().filter(customer=customer, name=name).exists():
        raise Conflict(
            f"You already have a workspace named {name!r}.", field="name", code="name_taken"
        )


def free_slug(name: str, chosen: str | None) -> str:
    taken = Workspace.objects.live().filter
    if chosen:
        if taken(slug=chosen).exists():
            raise Conflict(f"The subdomain {chosen!r} is taken.", field="slug", code="slug_taken")
        return chosen
    base = naming.slug_from_name(name)
    candidate, counter = base, 1
    while taken(slug=candidate).exists() or candidate in naming.RESERVED_SLUGS:
        counter += 1
        tail = f"-{counter}"
        candidate = base[: naming.SLUG_MAX - len(tail)].rstrip("-") + tail
    return candidate


# --- who creates for whom -------------------------------------------------------------------


def resolve_creator(user, customer_id=None, owner_username=None) -> tuple[Customer, object]:
    """The customer and owner of a new workspace, as the requesting user may ask for them.

    A customer member creates for themselves, in their customer (their only one by default);
    an admin names the customer and the owner (a member of it).
    """
    if owner_username and not user.is_staff:
        raise PortalError(
            "Only admins may create a workspace for someone else.",
            field="owner",
            code="permission_denied",
        )
    customers = Customer.objects.visible_to(user)
    if customer_id is None:
        mine = list(customers[:2]) if not user.is_staff else []
        if len(mine) != 1:
            raise PortalError(
                "Say which customer the workspace is for.", field="customer", code="required"
            )
        customer = mine[0]
    else:
        customer = customers.filter(pk=customer_id).first()
        if customer is None:
            raise PortalError(
                f"No customer {customer_id} that you belong to.",
                field="customer",
                code="does_not_exist",
            )
    owner = user
    if owner_username:
        owner = get_user_model().objects.filter(username=owner_username).first()
        if owner is None:
            raise PortalError(f"No user {owner_username!r}.", field="owner", code="does_not_exist")
    elif user.is_staff and not Membership.objects.filter(customer=customer, user=user).exists():
        raise PortalError(
            "Name the owner: admins create workspaces for a member.", field="owner", code="required"
        )
    return customer, owner


# --- allocation -----------------------------------------------------------------------------

# Said with every refusal for want of a node: notify.py records it and emails the admins.
TOLD_TRY_LATER = "The administrators have been told; please try again later."


def allocate_port(node: Node) -> int | None:
    """The lowest free port of the node's range. Call with the node row locked."""
    used = set(
        Workspace.objects.filter(node=node, port__isnull=False).values_list("port", flat=True)
    )
    return next(
        (
            port
            for port in range(node.workspace_port_start, node.workspace_port_end + 1)
            if port not in used
        ),
        None,
    )


def allocate(node: Node | None = None) -> tuple[Node, int]:
    """A node with a free port (the least loaded first) and that port.

    Locks every candidate node, always in primary-key order, so concurrent creates never
    deadlock; ``FOR NO KEY UPDATE`` lets other transactions still insert rows referring to
    the node (a job, a workspace) while it is held.
    """
    nodes = Node.objects.filter(pk=node.pk) if node is not None else workspace_nodes()
    locked = list(nodes.select_for_update(no_key=True).order_by("pk"))
    if not locked:
        logger.warning("workspace create refused: no enabled workspace node")
        raise Conflict(
            f"No workspace node is available. {TOLD_TRY_LATER}", field="node", code="no_node"
        )
    load = dict(
        Workspace.objects.filter(node__in=locked, port__isnull=False)
        .values("node")
        .annotate(n=Count("id"))
        .values_list("node", "n")
    )
    for candidate in sorted(locked, key=lambda n: (load.get(n.pk, 0), n.name)):
        port = allocate_port(candidate)
        if port is not None:
            return candidate, port
    where = f"node {node.name}" if node is not None else "any workspace node"
    logger.warning("workspace create refused: no free port on %s", where)
    raise Conflict(
        f"No free port on {where}: every port of the range is in use. {TOLD_TRY_LATER}",
        field="node",
        code="no_capacity",
    )


def _insert_with_free_slug(fields: dict, name: str, chosen: str | None, taken) -> Workspace:
    """Slugs are global, and two customers' creates do not lock each other: when a derived
    slug was taken meanwhile (the unique constraint says so), derive the next one."""
    for _ in range(5):
        slug = free_slug(name, chosen)
        try:
            with transaction.atomic():
                return Workspace.objects.create(
                    slug=slug, linux_username=naming.username_for(slug, taken), **fields
                )
        except IntegrityError:
            if chosen or not Workspace.objects.live().filter(slug=slug).exists():
                raise Conflict(
                    f"The subdomain {slug!r} is taken.", field="slug", code="slug_taken"
                ) from None
    raise Conflict("Could not find a free subdomain; choose one.", field="slug", code="slug_taken")


# --- create ---------------------------------------------------------------------------------


@notify.tells_admins_when_full  # a refusal for want of room is told to the admins
def do_create(
    customer: Customer, owner, name, *, slug=None, node: Node | None = None, by=None
) -> Workspace:
    name = naming.check_name(name)
    slug = naming.check_slug(slug) if slug not in (None, "") else None
    check_owner(customer, owner)
    with transaction.atomic():
        # Serialise creates per customer: the plan-limit count below is exact.
        customer = (
            Customer.objects.select_for_update(no_key=True, of=("self",))
            .select_related("plan")
            .get(pk=customer.pk)
        )
        check_customer_may_create(customer)
        check_plan_limit(customer)
        check_name_free(customer, name)
        node, port = allocate(node)
        taken = set(
            Workspace.objects.live().filter(node=node).values_list("linux_username", flat=True)
        )
        plan = customer.plan
        fields = dict(
            customer=customer,
            owner=owner,
            name=name,
            node=node,
            port=port,
            password=naming.new_password(),
            disk_quota_gb=plan.disk_quota_gb,
            cpu_limit=plan.cpu_limit,
            memory_limit_mb=plan.memory_limit_mb,
        )
        workspace = _insert_with_free_slug(fields, name, slug, taken)
        workspace.history.create(
            to_status=S.PENDING,
            by=by if by and by.pk else None,
            message=f"created on {node.name}, port {port}",
        )
        transaction.on_commit(lambda: provision_pending(node.pk, customer.pk))
    logger.info("workspace %s created", workspace.slug, extra={"object_id": workspace.pk})
    return workspace


def provision_pending(node_id: int, customer_id: int) -> Job | None:
    """Launch one create run for the customer's pending workspaces on the node, unless a
    run for them is still going (its result handler calls this again)."""
    with transaction.atomic():
        node = (
            Node.objects.select_for_update(no_key=True, of=("self",))
            .select_related("credential", "group")
            .get(pk=node_id)
        )
        mine = Workspace.objects.filter(node=node, customer_id=customer_id)
        if mine.filter(status=S.PROVISIONING, current_job__status__in=JOB_ACTIVE).exists():
            return None
        batch = list(
            mine.filter(status=S.PENDING)
            .select_for_update(of=("self",))
            .select_related("customer")
            .order_by("id")[: settings.WORKSPACE_BATCH_MAX]
        )
        if not batch:
            return None
        for workspace in batch:
            workspace.node = node
        try:
            job = launch_for(
                batch,
                CREATE,
                "workspace_create.yml",
                secret=passwords(batch),
                by=batch[0].owner if len(batch) == 1 else None,
            )
        except PortalError as error:
            move_all(
                batch, S.FAILED, [S.PENDING], f"provisioning could not start: {error}", port=None
            )
            return None
        move_all(
            batch,
            S.PROVISIONING,
            [S.PENDING],
            f"provisioning on {node.name} (job {job.pk}, {len(batch)} in this run)",
            job=job,
            current_job=job,
            on_node=True,
        )
    return job


def provision_stalled() -> int:
    """Catch up (the beat's tick): start the runs of pending workspaces whose run never
    started (a crash between commit and launch). Returns how many runs started."""
    started = 0
    pending = (
        Workspace.objects.filter(status=S.PENDING).values_list("node_id", "customer_id").distinct()
    )
    for node_id, customer_id in pending:
        started += provision_pending(node_id, customer_id) is not None
    return started

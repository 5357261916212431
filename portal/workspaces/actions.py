"""Workspaces: create, operate, resize, delete. Every change on a node is a job.

Create is two steps. ``do_create`` records the workspace (plan limit, node, port, user name)
in one transaction that serialises on the customer (exact plan limits) and on the node (ports
never collide; a unique constraint is the backstop) and leaves it ``pending``. Then
``provision_pending`` launches ONE ``workspace_create.yml`` run for everything pending for that
node and customer: creates queued together are provisioned together, and a run never carries
another customer's workspaces (its output is visible to the customer). While a node's run is
going, new creates wait and join the next run, which the result handler starts.

A delete while a job acts on the workspace (including provisioning) is refused with 409: the
customer deletes it once the job is over. A pending workspace has nothing on its node yet and
is deleted at once.
"""

import contextlib
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from portal.accounts.choices import BillingStatus
from portal.accounts.models import Customer, Membership, Plan
from portal.core.errors import Conflict, PortalError
from portal.core.tenancy import is_admin
from portal.jobs import actions as jobs
from portal.jobs import registry
from portal.jobs.choices import ACTIVE as JOB_ACTIVE
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Node
from portal.workspaces import naming, notify, routing
from portal.workspaces.choices import LIVE, OPERATIONS, S
from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)

CREATE = "workspaces.create"
DELETE = "workspaces.delete"
ROLLBACK = "workspaces.rollback"
CONTROL = "workspaces.control"
RESIZE = "workspaces.resize"


def register_job_actions() -> None:
    from portal.workspaces import results

    retry = registry.RetryPolicy(
        max_attempts=lambda: settings.WORKSPACE_RETRY_MAX_ATTEMPTS,
        base_delay=lambda: settings.WORKSPACE_RETRY_BASE_SECONDS,
        max_delay=lambda: settings.WORKSPACE_RETRY_MAX_SECONDS,
    )
    secret = ("workspace_passwords",)
    for name, playbook, on_finish, sensitive, description in [
        (CREATE, "workspace_create.yml", results.apply_create_result, secret,
         "Provision workspaces on a node (user, quota, code-server)"),
        (DELETE, "workspace_delete.yml", results.apply_delete_result, (),
         "Remove workspaces from a node"),
        (ROLLBACK, "workspace_delete.yml", results.apply_rollback_result, (),
         "Undo what a failed provisioning left on a node"),
        (CONTROL, "workspace_control.yml", results.apply_control_result, (),
         "Start, stop, restart, check or read the logs of workspaces"),
        (RESIZE, "workspace_resize.yml", results.apply_resize_result, secret,
         "Re-apply workspaces' plan limits (quota, memory, CPU)"),
    ]:
        registry.register(registry.ActionSpec(
            name=name, playbook=playbook, sensitive_vars=sensitive, retry=retry,
            on_finish=on_finish, on_retry=results.note_waiting_for_node,
            description=description))


# --- checks -------------------------------------------------------------------------------

def check_owner(customer: Customer, owner) -> None:
    if owner is None or not owner.pk:
        raise PortalError("A workspace needs an owner.", field="owner")
    if not Membership.objects.filter(customer=customer, user=owner).exists():
        raise PortalError(f"{owner} is not a member of {customer}.", field="owner",
                          code="not_a_member")


def check_customer_may_create(customer: Customer) -> None:
    if customer.billing_status != BillingStatus.ACTIVE:
        raise Conflict(f"The account is {customer.billing_status}: new workspaces are paused.",
                       field="customer", code="billing")


def check_plan_limit(customer: Customer) -> None:
    """Call with the customer row locked: the count is exact under concurrent creates."""
    limit = customer.plan.workspace_limit
    used = Workspace.objects.filter(customer=customer).live().count()
    if used >= limit:
        raise Conflict(f"The {customer.plan.name} plan allows {limit} workspace"
                       f"{'s' if limit != 1 else ''}; {used} exist. Delete one or upgrade.",
                       field="plan", code="plan_limit")


def check_name_free(customer: Customer, name: str) -> None:
    if Workspace.objects.live().filter(customer=customer, name=name).exists():
        raise Conflict(f"You already have a workspace named {name!r}.", field="name",
                       code="name_taken")


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
        candidate = base[:naming.SLUG_MAX - len(tail)].rstrip("-") + tail
    return candidate


# --- allocation -----------------------------------------------------------------------------

# Said with every refusal for want of a node: notify.py records it and emails the admins.
TOLD_TRY_LATER = "The administrators have been told; please try again later."


def workspace_nodes():
    return Node.objects.filter(purpose=NodePurpose.WORKSPACE_HOST, enabled=True)


def allocate_port(node: Node) -> int | None:
    """The lowest free port of the node's range. Call with the node row locked."""
    used = set(Workspace.objects.filter(node=node, port__isnull=False)
               .values_list("port", flat=True))
    return next((port for port in range(node.workspace_port_start, node.workspace_port_end + 1)
                 if port not in used), None)


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
        raise Conflict(f"No workspace node is available. {TOLD_TRY_LATER}", field="node",
                       code="no_node")
    load = dict(Workspace.objects.filter(node__in=locked, port__isnull=False)
                .values("node").annotate(n=Count("id")).values_list("node", "n"))
    for candidate in sorted(locked, key=lambda n: (load.get(n.pk, 0), n.name)):
        port = allocate_port(candidate)
        if port is not None:
            return candidate, port
    where = f"node {node.name}" if node is not None else "any workspace node"
    logger.warning("workspace create refused: no free port on %s", where)
    raise Conflict(f"No free port on {where}: every port of the range is in use. "
                   f"{TOLD_TRY_LATER}", field="node", code="no_capacity")


def _insert_with_free_slug(fields: dict, name: str, chosen: str | None, taken) -> Workspace:
    """Slugs are global, and two customers' creates do not lock each other: when a derived
    slug was taken meanwhile (the unique constraint says so), derive the next one."""
    for _ in range(5):
        slug = free_slug(name, chosen)
        try:
            with transaction.atomic():
                return Workspace.objects.create(
                    slug=slug, linux_username=naming.username_for(slug, taken), **fields)
        except IntegrityError:
            if chosen or not Workspace.objects.live().filter(slug=slug).exists():
                raise Conflict(f"The subdomain {slug!r} is taken.", field="slug",
                               code="slug_taken") from None
    raise Conflict("Could not find a free subdomain; choose one.", field="slug",
                   code="slug_taken")


# --- create ---------------------------------------------------------------------------------

@notify.tells_admins_when_full  # a refusal for want of room is told to the admins
def do_create(customer: Customer, owner, name, *, slug=None, node: Node | None = None,
              by=None) -> Workspace:
    name = naming.check_name(name)
    slug = naming.check_slug(slug) if slug not in (None, "") else None
    check_owner(customer, owner)
    with transaction.atomic():
        # Serialise creates per customer: the plan-limit count below is exact.
        customer = Customer.objects.select_for_update(no_key=True, of=("self",)).select_related(
            "plan").get(pk=customer.pk)
        check_customer_may_create(customer)
        check_plan_limit(customer)
        check_name_free(customer, name)
        node, port = allocate(node)
        taken = set(Workspace.objects.live().filter(node=node)
                    .values_list("linux_username", flat=True))
        plan = customer.plan
        fields = dict(
            customer=customer, owner=owner, name=name, node=node, port=port,
            password=naming.new_password(), disk_quota_gb=plan.disk_quota_gb,
            cpu_limit=plan.cpu_limit, memory_limit_mb=plan.memory_limit_mb)
        workspace = _insert_with_free_slug(fields, name, slug, taken)
        workspace.history.create(to_status=S.PENDING, by=by if by and by.pk else None,
                                 message=f"created on {node.name}, port {port}")
        transaction.on_commit(lambda: provision_pending(node.pk, customer.pk))
    logger.info("workspace %s created", workspace.slug, extra={"object_id": workspace.pk})
    return workspace


def item_vars(workspace: Workspace) -> dict:
    return {
        "id": workspace.pk, "slug": workspace.slug, "username": workspace.linux_username,
        "port": workspace.port, "bind_address": workspace.node.address,
        "quota_gb": workspace.disk_quota_gb,
        "cpu_quota_percent": int(workspace.cpu_limit * 100),
        "memory_max_mb": workspace.memory_limit_mb,
    }


def playbook_vars(node: Node, workspaces) -> dict:
    return {
        "workspace_items": [item_vars(workspace) for workspace in workspaces],
        "workspace_root": node.workspace_root,
        "workspace_quota_backend": node.workspace_quota_backend,
        "code_server_package": settings.CODE_SERVER_PACKAGE,
        "code_server_version": settings.CODE_SERVER_VERSION,
    }


def passwords(workspaces) -> dict:
    return {"workspace_passwords": {workspace.slug: workspace.password
                                    for workspace in workspaces}}


def launch_for(workspaces: list[Workspace], action: str, playbook: str, *, extra=None,
               secret=None, by=None) -> Job:
    """One job acting on workspaces of one node and one customer."""
    node = workspaces[0].node
    return jobs.launch(
        playbook=playbook, action=action, nodes=[node], nodes_loaded=True,
        extra_vars={**playbook_vars(node, workspaces), **(extra or {})}, secret_vars=secret,
        target=workspaces[0] if len(workspaces) == 1 else None,
        customer=workspaces[0].customer, requested_by=by)


def provision_pending(node_id: int, customer_id: int) -> Job | None:
    """Launch one create run for the customer's pending workspaces on the node, unless a
    run for them is still going (its result handler calls this again)."""
    with transaction.atomic():
        node = Node.objects.select_for_update(no_key=True, of=("self",)).select_related(
            "credential", "group").get(pk=node_id)
        mine = Workspace.objects.filter(node=node, customer_id=customer_id)
        if mine.filter(status=S.PROVISIONING, current_job__status__in=JOB_ACTIVE).exists():
            return None
        batch = list(mine.filter(status=S.PENDING).select_for_update(of=("self",))
                     .select_related("customer").order_by("id")[:settings.WORKSPACE_BATCH_MAX])
        if not batch:
            return None
        for workspace in batch:
            workspace.node = node
        try:
            job = launch_for(batch, CREATE, "workspace_create.yml", secret=passwords(batch),
                             by=batch[0].owner if len(batch) == 1 else None)
        except PortalError as error:
            move_all(batch, S.FAILED, [S.PENDING], f"provisioning could not start: {error}",
                     port=None)
            return None
        move_all(batch, S.PROVISIONING, [S.PENDING],
                 f"provisioning on {node.name} (job {job.pk}, {len(batch)} in this run)",
                 job=job, current_job=job, on_node=True)
    return job


def move_all(workspaces, to, allowed_from, message, *, job=None, by=None, **fields) -> list:
    return [workspace for workspace in workspaces
            if workspace.move(to, allowed_from, message=message, job=job, by=by, **fields)]


# --- operate --------------------------------------------------------------------------------

def check_operation(workspace: Workspace, operation: str) -> None:
    allowed = OPERATIONS.get(operation)
    if allowed is None:
        raise PortalError(f"Unknown operation {operation!r}.", field="operation")
    if workspace.busy:
        raise Conflict(f"Workspace {workspace.slug} is busy (job {workspace.current_job_id} is "
                       f"{workspace.current_job.status}); try again when it is done.",
                       field="status", code="busy")
    if workspace.status not in allowed:
        raise Conflict(f"Cannot {operation} a {workspace.status} workspace.", field="status",
                       code="invalid_state")


def _claim(workspaces, operation: str) -> list[Workspace]:
    """Lock the rows and re-check them: of two clicks, one job."""
    locked = list(Workspace.objects.select_for_update(of=("self",)).select_related(
        "node", "customer", "current_job").filter(pk__in=[w.pk for w in workspaces]))
    for workspace in locked:
        check_operation(workspace, operation)
    return locked


def do_operate(workspaces, operation: str, *, by=None) -> list[Job]:
    """start/stop/restart/status/logs/resize for workspaces: one job per node and customer."""
    launched = []
    for group in group_by_run(workspaces):
        with transaction.atomic():
            locked = _claim(group, operation)
            if operation == "resize":
                job = _launch_resize(locked, by)
            else:
                job = launch_for(locked, CONTROL, "workspace_control.yml", by=by, extra={
                    "workspace_control_action": operation,
                    "workspace_log_lines": settings.WORKSPACE_LOG_LINES})
            fields = {"current_job": job}
            if operation == "stop":
                fields.update(route_wanted=False)  # the route goes first
            for workspace in locked:
                workspace.note(f"{operation} requested (job {job.pk})", job=job, by=by,
                               **fields)
            launched.append(job)
    return launched


def _launch_resize(locked: list[Workspace], by) -> Job:
    for workspace in locked:
        plan = workspace.customer.plan
        Workspace.objects.filter(pk=workspace.pk).update(
            disk_quota_gb=plan.disk_quota_gb, cpu_limit=plan.cpu_limit,
            memory_limit_mb=plan.memory_limit_mb)
        workspace.refresh_from_db()
    return launch_for(locked, RESIZE, "workspace_resize.yml", secret=passwords(locked), by=by)


def group_by_run(workspaces) -> list[list[Workspace]]:
    groups: dict[tuple, list] = {}
    for workspace in workspaces:
        groups.setdefault((workspace.node_id, workspace.customer_id), []).append(workspace)
    return list(groups.values())


@transaction.atomic
def do_change_plan(customer: Customer, plan: Plan, *, by=None) -> list[Job]:
    """A new plan re-applies quota and limits to every workspace that runs or is stopped."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    live = Workspace.objects.filter(customer=customer).live().count()
    if live > plan.workspace_limit:
        raise Conflict(f"{customer} has {live} workspaces; the {plan.name} plan allows "
                       f"{plan.workspace_limit}.", field="plan", code="plan_limit")
    Customer.objects.filter(pk=customer.pk).update(plan=plan)
    resizable = Workspace.objects.filter(customer=customer, status__in=OPERATIONS["resize"])
    idle = [w for w in resizable.select_related("current_job") if not w.busy]
    return do_operate(idle, "resize", by=by) if idle else []


# --- delete ---------------------------------------------------------------------------------

def check_deletable(workspace: Workspace) -> None:
    if workspace.status == S.DELETING and workspace.status_reason:
        raise Conflict(f"The workspace is already deleting ({workspace.status_reason}).",
                       field="status", code="invalid_state")
    if workspace.status in (S.DELETING, S.DELETED):
        raise Conflict(f"The workspace is already {workspace.status}.", field="status",
                       code="invalid_state")
    if workspace.busy or workspace.status == S.PROVISIONING:
        raise Conflict("A job is acting on the workspace (provisioning, start, stop …); "
                       "delete it when that job is done.", field="status", code="busy")


def do_delete(workspace: Workspace, *, by=None) -> Workspace:
    return do_delete_many([workspace], by=by)[0]


def do_delete_many(workspaces, *, by=None) -> list[Workspace]:
    """Delete workspaces: those with nothing on their node at once, the others by one
    delete run per node and customer, each after Traefik dropped its route."""
    deleted = []
    for group in group_by_run(workspaces):
        with transaction.atomic():
            locked = list(Workspace.objects.select_for_update(of=("self",)).select_related(
                "node", "customer", "current_job").filter(pk__in=[w.pk for w in group])
                .order_by("pk"))
            for workspace in locked:
                check_deletable(workspace)
            on_node = [w for w in locked if w.on_node]
            for workspace in locked:
                if not workspace.on_node:  # pending, or rolled back: nothing on the node
                    workspace.move(S.DELETED, [workspace.status], message="deleted", by=by,
                                   port=None, route_wanted=False, deleted_at=timezone.now())
                else:  # the route goes first: the delete run starts once Traefik dropped it
                    workspace.move(S.DELETING, [workspace.status], by=by, route_wanted=False,
                                   route_wanted_since=timezone.now(),
                                   message="removing the route, then the workspace from its "
                                           "node")
            if on_node and not routing.confirmation_enabled():
                launch_delete(on_node, by=by)  # a refusal (node disabled) undoes the moves
        deleted += locked
    return deleted


def launch_delete(workspaces: list[Workspace], *, by=None, action=DELETE) -> list[Job]:
    launched = []
    for group in group_by_run(workspaces):
        with transaction.atomic():
            job = launch_for(group, action, "workspace_delete.yml", by=by)
            for workspace in group:
                message = (f"{workspace.status_reason} (job {job.pk})" if action == ROLLBACK
                           else f"removing from {workspace.node.name} (job {job.pk})")
                workspace.note(message, job=job, current_job=job)
            launched.append(job)
    return launched


class Forbidden(PortalError):
    status_code = 403
    code = "permission_denied"


def check_force_delete(workspace: Workspace, by) -> None:
    if not is_admin(by):
        raise Forbidden("Only an admin may force a delete.", field="force")
    if workspace.status == S.DELETED:
        raise Conflict("The workspace is already deleted.", field="status",
                       code="invalid_state")
    job = workspace.current_job
    if job is not None and job.status == JobStatus.RUNNING:
        raise Conflict(f"Job {job.pk} is running on the workspace; cancel it or wait for it "
                       "to end, then force the delete.", field="status", code="busy")


def do_force_delete(workspace: Workspace, *, by=None) -> Workspace:
    """An admin's way out when a node cannot be reached (or cleaned): the workspace is
    deleted in the portal without a job, its port and name are free again, and the history
    says what the node may still hold. A job still waiting to act on it (a retry) is
    canceled."""
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update(of=("self",)).select_related(
            "node", "current_job").get(pk=workspace.pk)
        check_force_delete(workspace, by)
        waiting = workspace.current_job if workspace.busy else None
        node = workspace.node
        where = f"{node.name}:{workspace.port}" if workspace.port else node.name
        leftovers = (f"; the node may still hold leftovers ({where}: unit "
                     f"{workspace.unit_name}, user {workspace.linux_username}, home "
                     f"{node.workspace_root}/{workspace.slug}): clean it by hand or with "
                     "workspace_delete.yml" if workspace.on_node
                     else "; nothing of it was on the node")
        workspace.move(S.DELETED, [workspace.status], by=by, job=waiting,
                       message=f"delete forced by {by}{leftovers}", port=None,
                       on_node=False, route_wanted=False, current_job=None, health={},
                       deleted_at=timezone.now())
        if waiting is not None:
            transaction.on_commit(lambda: _cancel_quietly(waiting, by))
    logger.warning("workspace %s deleted by force", workspace.slug,
                   extra={"object_id": workspace.pk})
    return workspace


def _cancel_quietly(job: Job, by) -> None:
    # A job that ended meanwhile is left as it is: its handler finds no workspace to act on.
    with contextlib.suppress(PortalError):
        jobs.cancel(job, by=by)


# --- the periodic tick (beat) ---------------------------------------------------------------

def tick() -> dict:
    """Catch up: pending workspaces whose run never started (a crash between commit and
    launch), and routes waiting for Traefik."""
    from portal.workspaces import confirm

    started = 0
    pending = (Workspace.objects.filter(status=S.PENDING)
               .values_list("node_id", "customer_id").distinct())
    for node_id, customer_id in pending:
        started += provision_pending(node_id, customer_id) is not None
    return {"started": started, **confirm.confirm_routes()}


__all__ = ["LIVE", "do_change_plan", "do_create", "do_delete", "do_force_delete", "do_operate",
           "tick"]


# --- who creates for whom -------------------------------------------------------------------

def resolve_creator(user, customer_id=None, owner_username=None) -> tuple[Customer, object]:
    """The customer and owner of a new workspace, as the requesting user may ask for them.

    A customer member creates for themselves, in their customer (their only one by default);
    an admin names the customer and the owner (a member of it).
    """
    from django.contrib.auth import get_user_model

    if owner_username and not user.is_staff:
        raise PortalError("Only admins may create a workspace for someone else.",
                          field="owner", code="permission_denied")
    customers = Customer.objects.visible_to(user)
    if customer_id is None:
        mine = list(customers[:2]) if not user.is_staff else []
        if len(mine) != 1:
            raise PortalError("Say which customer the workspace is for.", field="customer",
                              code="required")
        customer = mine[0]
    else:
        customer = customers.filter(pk=customer_id).first()
        if customer is None:
            raise PortalError(f"No customer {customer_id} that you belong to.",
                              field="customer", code="does_not_exist")
    owner = user
    if owner_username:
        owner = get_user_model().objects.filter(username=owner_username).first()
        if owner is None:
            raise PortalError(f"No user {owner_username!r}.", field="owner",
                              code="does_not_exist")
    elif user.is_staff and not Membership.objects.filter(customer=customer, user=user).exists():
        raise PortalError("Name the owner: admins create workspaces for a member.",
                          field="owner", code="required")
    return customer, owner


def do_rename(workspace: Workspace, name, *, by=None) -> Workspace:
    name = naming.check_name(name)
    with transaction.atomic():
        Customer.objects.select_for_update(no_key=True).filter(
            pk=workspace.customer_id).first()
        if name != workspace.name:
            check_name_free(workspace.customer, name)
            # History only: the status reason (e.g. "provisioning on …") stays.
            workspace.note(f"renamed from {workspace.name!r} to {name!r}", by=by, name=name,
                           status_reason=F("status_reason"))
    return workspace

"""Demo data for `make run`: an admin and a customer's owner (logins printed), this machine
as a fleet node and as a lab server with a demo lab the customer starts on My labs, and a
demo workspace when a workspace host is registered.

Only what is harmless on the developer's own machine runs on it (``connection=local``): the
demo lab's scripts write under var/demo-lab/ and nowhere else. Workspaces add Linux users and
systemd units, so this machine is never a workspace host: the output says how to add a
disposable test host instead, and once one is registered (an enabled workspace-host node),
the next run creates the demo workspace on it.

Idempotent: a second run keeps the rows and prints the same logins again. The passwords are
generated once into var/ (like the development secrets) and set again on every run, so the
printed login always works.
"""

import os
import secrets
import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts import actions as account_actions
from portal.accounts.choices import DEFAULT_PLANS, PlanTier
from portal.accounts.models import Customer, Membership, Plan
from portal.config import generated_secret
from portal.core.errors import PortalError
from portal.core.tenancy import MembershipRole
from portal.fleet.actions import seed as fleet
from portal.jobs import actions as job_actions
from portal.labs import actions as lab_actions
from portal.labs.models import Lab
from portal.nodes.choices import Connection, NodePurpose
from portal.nodes.models import Node, NodeGroup
from portal.workspaces import actions as workspace_actions
from portal.workspaces.models import Workspace

DEFAULT_WEB_ADDRESS = "127.0.0.1:8000"  # the Procfile's default for `make run`'s web process
MEMBER_USERNAME = "demo"
CUSTOMER_EMAIL = "demo@example.com"
LAB_NAME = "Demo lab"
LAB_SERVER = "demo-lab-server"
LAB_SCRIPTS = Path(__file__).resolve().parents[3] / "labs" / "examples" / "demo"
WORKSPACE_NAME = "Demo IDE"


def base_url(address: str | None) -> str:
    """The browser's address of `runserver WEB_ADDRESS` ("[addr:]port"); a wildcard address
    (all interfaces) is shown as this machine's loopback."""
    address = (address or "").strip() or DEFAULT_WEB_ADDRESS
    host, _, port = address.rpartition(":")
    host = host.strip()
    if host in ("", "0.0.0.0", "0"):  # noqa: S104 - an address to show, not to bind
        host = "127.0.0.1"
    elif host in ("[::]", "::"):
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def demo_lab_dir() -> Path:
    return Path(settings.VAR_DIR).resolve() / "demo-lab"


def demo_password(name: str) -> str:
    return generated_secret(settings.VAR_DIR / name, lambda: secrets.token_urlsafe(12))


class Command(BaseCommand):
    help = (
        "Create the demo admin, customer (with an owner who can log in), this machine as a "
        "fleet node and a lab server with a demo lab, and a demo workspace when a "
        "workspace host is registered (idempotent); print the logins and URLs (from "
        "WEB_ADDRESS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--no-job", action="store_true", help="do not launch the demo facts job"
        )

    def handle(self, *args, username, no_job, **options):
        admin_password = demo_password("demo_admin_password")
        member_password = demo_password("demo_member_password")
        with transaction.atomic():
            admin = self._admin(username, admin_password)
            member = self._member(member_password)
            customer = self._customer(member)
            node = self._node()
            lab, lab_problem = self._lab()
            fleet.do_seed_fleet(demo_customer=customer)
        url = base_url(os.environ.get("WEB_ADDRESS"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: admin login {username} / {admin_password} at {url}/admin/"
            )
        )
        self.stdout.write(
            "\n".join(
                (
                    f"  customer login {member.username} / {member_password} at {url}/ "
                    f"(owner of {customer.name!r}: its workspaces, labs and members)",
                    f"  API docs at {url}/api/docs/ (a token: POST /api/auth/token/ with a login)",
                    f"  node {node.name!r} (group {node.group.name!r}): this machine, a fleet host "
                    "(runs jobs, holds no workspaces)",
                    f"  fleet: sample customers and VMs (addresses of a documentation range: "
                    f"figures and charts, not reachable) at {url}/fleet/ (admin); "
                    f"{customer.name!r}'s own VMs at {url}/fleet/mine/",
                )
            )
        )
        if lab is not None:
            self.stdout.write(
                f"  lab {lab.name!r} on lab server {lab.server.name!r} (this machine, "
                f"connection local): start it as {member.username} on {url}/labs/ "
                f"(its scripts only write under {demo_lab_dir()}/sessions/)"
            )
        else:
            self.stdout.write(self.style.WARNING(f"  no demo lab: {lab_problem}"))
        self._workspace_lines(customer, member, admin, url)
        if not no_job:
            job = job_actions.launch(
                playbook="facts.yml", nodes=[node], check_mode=True, requested_by=admin
            )
            self.stdout.write(
                f"Demo job {job.pk} (facts.yml, check mode, on {node.name}) queued: "
                f"{url}/admin/jobs/job/{job.pk}/change/ "
                f"or GET {url}/api/jobs/{job.pk}/events/"
            )

    def _workspace_lines(self, customer, member, admin, url):
        """The demo workspace on a registered workspace host, or how to add one."""
        if not workspace_actions.workspace_nodes().exists():
            self.stdout.write(
                "\n".join(
                    (
                        "  no workspace host yet (this machine is never one: a workspace adds "
                        "Linux users and systemd units). To try workspaces on a disposable one, "
                        "as root:",
                        "    sudo .venv/bin/python -m tests.hosts up 1   # boots it, prints its "
                        "address and SSH key path (tests/hosts/README.md)",
                        "    in the admin: a Credential (kind SSH key, user root, the key file's "
                        "text), then a Node with that address, credential and purpose "
                        '"workspace host"',
                        "    its hosts have no route out: start `make run` with "
                        "CODE_SERVER_PACKAGE=$(sudo .venv/bin/python -m tests.hosts code-server)",
                        "    then run `make run` (or manage.py seed_demo) again: it creates the "
                        "demo workspace there",
                    )
                )
            )
            return
        workspace = Workspace.objects.live().filter(customer=customer, name=WORKSPACE_NAME).first()
        if workspace is None:
            try:
                workspace = workspace_actions.do_create(customer, member, WORKSPACE_NAME, by=admin)
            except PortalError as error:
                self.stdout.write(self.style.WARNING(f"  no demo workspace: {error.message}"))
                return
            workspace.refresh_from_db()
        self.stdout.write(
            f"  workspace {workspace.name!r} on node {workspace.node.name!r}: "
            f"{workspace.status} (follow it at {url}/workspaces/; served at {workspace.url})"
        )

    def _lab(self) -> tuple[Lab | None, str]:
        """This machine as a lab server (connection local) and the demo lab, whose scripts
        are copied into var/demo-lab/ and write only beside themselves."""
        group = self._group()
        server, _ = Node.objects.update_or_create(
            name=LAB_SERVER,
            defaults={
                "address": "127.0.0.1",
                "connection": Connection.LOCAL,
                "purpose": NodePurpose.LAB_SERVER,
                "enabled": True,
                "group": group,
                "credential": None,
                "labels": {"demo": True},
            },
        )
        target = demo_lab_dir()
        target.mkdir(parents=True, exist_ok=True)
        for script in ("provision.sh", "cleanup.sh"):
            shutil.copyfile(LAB_SCRIPTS / script, target / script)
            (target / script).chmod(0o755)
        fields = {
            "server": server,
            "provision_script_path": str(target / "provision.sh"),
            "cleanup_script_path": str(target / "cleanup.sh"),
            "access_instructions": (
                "Your lab {lab} is ready, {username}.\nIts files are on the portal's "
                f"machine; open\n  {target}/sessions/{{namespace}}/README"
            ),
        }
        lab = Lab.objects.filter(name=LAB_NAME).first()
        try:
            if lab is None:
                lab = lab_actions.do_create_lab(
                    name=LAB_NAME,
                    self_service=True,
                    user_extend_minutes=30,
                    default_duration=timedelta(hours=1),
                    description="A safe demo: its scripts write a README under the portal's "
                    "var/ directory, nothing else.",
                    **fields,
                )
            else:
                lab = lab_actions.do_update_lab(lab, **fields)
        except (ValidationError, PortalError) as error:
            message = (
                error.message
                if isinstance(error, PortalError)  # may be empty
                else getattr(error, "message", None) or "; ".join(error.messages)
            )
            return None, f"{message} (scripts in {target})"
        return lab, ""

    def _admin(self, username, password):
        User = get_user_model()
        admin, _ = User.objects.get_or_create(
            username=username, defaults={"email": "admin@example.com"}
        )
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        return admin

    def _member(self, password):
        member = get_user_model().objects.filter(username=MEMBER_USERNAME).first()
        if member is None:
            return account_actions.do_create_user(MEMBER_USERNAME, CUSTOMER_EMAIL, password)
        member.set_password(password)
        member.is_active = True
        member.save()
        return member

    def _customer(self, member):
        customer = Customer.objects.filter(email=CUSTOMER_EMAIL).first()
        if customer is None:
            return account_actions.do_create_customer(
                name="Demo Co",
                email=CUSTOMER_EMAIL,
                company="Demo Co Ltd",
                plan=self._plan(),
                monthly_fee="99.00",
                owner=member,
            )
        if not Membership.objects.filter(customer=customer, user=member).exists():
            account_actions.do_add_member(customer, member, role=MembershipRole.OWNER)
        return customer

    def _plan(self):
        """The team plan (made by a data migration; again here if it was deleted)."""
        plan, _ = Plan.objects.get_or_create(
            tier=PlanTier.TEAM, defaults={"name": "Team", **DEFAULT_PLANS[PlanTier.TEAM]}
        )
        return plan

    def _group(self):
        group, _ = NodeGroup.objects.get_or_create(
            name="local", defaults={"description": "This machine (demo)"}
        )
        return group

    def _node(self):
        group = self._group()
        node, _ = Node.objects.update_or_create(
            name="localhost",
            defaults={
                "address": "127.0.0.1",
                "connection": Connection.LOCAL,
                # Not a workspace host: a workspace create would add users and
                # systemd units to the machine running the demo.
                "purpose": NodePurpose.FLEET_HOST,
                "enabled": True,
                "group": group,
                "labels": {"demo": True},
            },
        )
        return node

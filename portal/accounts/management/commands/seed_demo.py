"""Demo data for `make run`: an admin and a customer's owner (logins printed), a node.

Idempotent: a second run keeps the rows and prints the same logins again. The passwords are
generated once into var/ (like the development secrets) and set again on every run, so the
printed login always works.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts import actions as account_actions
from portal.accounts.choices import PlanTier
from portal.accounts.models import Customer, Membership, Plan
from portal.config import generated_secret
from portal.core.tenancy import MembershipRole
from portal.jobs import actions as job_actions
from portal.nodes.choices import Connection, NodePurpose
from portal.nodes.models import Node, NodeGroup

DEFAULT_WEB_ADDRESS = "127.0.0.1:8000"  # the Procfile's default for `make run`'s web process
MEMBER_USERNAME = "demo"
CUSTOMER_EMAIL = "demo@example.com"


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


def demo_password(name: str) -> str:
    return generated_secret(settings.VAR_DIR / name, lambda: secrets.token_urlsafe(12))


class Command(BaseCommand):
    help = ("Create the demo admin, customer (with an owner who can log in) and node "
            "(idempotent) and print the logins and URLs (from WEB_ADDRESS).")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-job", action="store_true",
                            help="do not launch the demo facts job")

    def handle(self, *args, username, no_job, **options):
        admin_password = demo_password("demo_admin_password")
        member_password = demo_password("demo_member_password")
        with transaction.atomic():
            admin = self._admin(username, admin_password)
            member = self._member(member_password)
            customer = self._customer(member)
            node = self._node()
        url = base_url(os.environ.get("WEB_ADDRESS"))
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready: admin login {username} / {admin_password} at {url}/admin/"))
        self.stdout.write("\n".join((
            f"  customer login {member.username} / {member_password} at {url}/ "
            f"(owner of {customer.name!r}: its workspaces and labs)",
            f"  API docs at {url}/api/docs/ (a token: POST /api/auth/token/ with a login)",
            f"  node {node.name!r} (group {node.group.name!r}): this machine, a fleet host "
            "(runs jobs, holds no workspaces)",
            "  a workspace host to try: `sudo .venv/bin/python -m tests.hosts up 1` boots a "
            "disposable one (tests/hosts/README.md);",
            "    add it in the admin: its SSH key as a Credential, then a Node with its "
            "address, that credential and purpose \"workspace host\"",
        )))
        if not no_job:
            job = job_actions.launch(playbook="facts.yml", nodes=[node], check_mode=True,
                                     requested_by=admin)
            self.stdout.write(
                f"Demo job {job.pk} (facts.yml, check mode, on {node.name}) queued: "
                f"{url}/admin/jobs/job/{job.pk}/change/ "
                f"or GET {url}/api/jobs/{job.pk}/events/"
            )

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
                name="Demo Co", email=CUSTOMER_EMAIL, company="Demo Co Ltd",
                plan=Plan.objects.get(tier=PlanTier.TEAM), monthly_fee="99.00", owner=member,
            )
        if not Membership.objects.filter(customer=customer, user=member).exists():
            account_actions.do_add_member(customer, member, role=MembershipRole.OWNER)
        return customer

    def _node(self):
        group, _ = NodeGroup.objects.get_or_create(
            name="local", defaults={"description": "This machine (demo)"}
        )
        node, _ = Node.objects.update_or_create(
            name="localhost",
            defaults={"address": "127.0.0.1", "connection": Connection.LOCAL,
                      # Not a workspace host: a workspace create would add users and
                      # systemd units to the machine running the demo.
                      "purpose": NodePurpose.FLEET_HOST, "enabled": True,
                      "group": group, "labels": {"demo": True}},
        )
        return node

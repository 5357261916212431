"""Demo data for `make run`: an admin (login printed), a customer with an owner, a node."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts import actions as account_actions
from portal.accounts.choices import PlanTier
from portal.accounts.models import Customer, Plan
from portal.config import generated_secret
from portal.jobs import actions as job_actions
from portal.nodes.choices import Connection, NodePurpose
from portal.nodes.models import Node, NodeGroup


class Command(BaseCommand):
    help = "Create the demo admin, customer and node (idempotent) and print the admin login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-job", action="store_true",
                            help="do not launch the demo facts job")

    def handle(self, *args, username, no_job, **options):
        password = generated_secret(settings.VAR_DIR / "demo_admin_password",
                                    lambda: secrets.token_urlsafe(12))
        with transaction.atomic():
            admin = self._admin(username, password)
            customer = self._customer(admin)
            node = self._node()
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready: admin login {username} / {password} at http://127.0.0.1:8000/admin/ "
            f"(customer {customer.name!r}, node {node.name!r})"
        ))
        if not no_job:
            job = job_actions.launch(playbook="facts.yml", nodes=[node], check_mode=True,
                                     requested_by=admin)
            self.stdout.write(
                f"Demo job {job.pk} (facts.yml, check mode, on {node.name}) queued: "
                f"http://127.0.0.1:8000/admin/jobs/job/{job.pk}/change/ "
                f"or GET /api/jobs/{job.pk}/events/"
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

    def _customer(self, admin):
        existing = Customer.objects.filter(email="demo@example.com").first()
        if existing:
            return existing
        owner = get_user_model().objects.filter(username="demo").first()
        if owner is None:
            owner = account_actions.do_create_user(
                "demo", "demo@example.com", secrets.token_urlsafe(16)
            )
        return account_actions.do_create_customer(
            name="Demo Co", email="demo@example.com", company="Demo Co Ltd",
            plan=Plan.objects.get(tier=PlanTier.TEAM), monthly_fee="99.00", owner=owner,
        )

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

"""factory_boy factories shared by every test module."""

import factory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.contrib.auth import get_user_model

from portal.accounts.choices import DEFAULT_PLANS, PlanTier
from portal.accounts.models import Customer, Membership, Plan
from portal.core.tenancy import MembershipRole
from portal.nodes.choices import CredentialKind, NodePurpose
from portal.nodes.models import Credential, Node


def make_private_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


def plan(tier: str = PlanTier.STARTER) -> Plan:
    """The data migration's plan; made again after a transactional test flushed the tables
    (which also deletes what migrations inserted), so no test depends on the order."""
    tier = PlanTier(tier)
    values = DEFAULT_PLANS[tier]
    return Plan.objects.get_or_create(tier=tier.value, defaults={"name": tier.label, **values})[0]


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    company = "Example Ltd"
    plan = factory.LazyFunction(plan)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory)
    role = MembershipRole.OWNER


class CredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credential

    name = factory.Sequence(lambda n: f"key-{n}")
    kind = CredentialKind.SSH_KEY
    secret = factory.LazyFunction(make_private_key)


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    name = factory.Sequence(lambda n: f"node-{n}")
    address = factory.Sequence(lambda n: f"10.0.0.{n % 250 + 1}")
    purpose = NodePurpose.WORKSPACE_HOST
    credential = factory.SubFactory(CredentialFactory)

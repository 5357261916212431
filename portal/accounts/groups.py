"""The `operators` group: people who run playbooks and manage nodes, not customers."""

from django.contrib.auth.models import Group, Permission

from portal.core.tenancy import OPERATORS_GROUP

# app label -> permission codename prefixes operators get on every model of that app
OPERATOR_PERMISSIONS = {
    "nodes": ("view", "add", "change"),
    "accounts": ("view",),
    "jobs": ("view", "add", "change"),
    # change: the installations' actions (reinstall, upgrade, retry, uninstall, install)
    "installers": ("view", "change"),
}


def ensure_operators_group(**kwargs) -> Group:
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    wanted = Permission.objects.none()
    for app_label, actions in OPERATOR_PERMISSIONS.items():
        wanted |= Permission.objects.filter(
            content_type__app_label=app_label,
            codename__regex=rf"^({'|'.join(actions)})_",
        )
    group.permissions.add(*wanted)
    return group

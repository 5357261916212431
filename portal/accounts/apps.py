from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"
    verbose_name = "Customers and plans"

    def ready(self):
        from portal.accounts import lockout  # noqa: F401  connects its axes signal receiver
        from portal.accounts.groups import ensure_operators_group

        # Permissions only exist after migrate; this is set-up, not a domain side effect.
        post_migrate.connect(ensure_operators_group, sender=self)

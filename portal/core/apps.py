from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        # Bind shared tasks to the portal's Celery app in every process (web included),
        # so `.delay()` from a view publishes with the portal's broker settings.
        import portal.celery  # noqa: F401

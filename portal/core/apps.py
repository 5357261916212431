from pathlib import Path

from django.apps import AppConfig

from portal.config import PRIVATE_DIR_MODE


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Bind shared tasks to the portal's Celery app in every process (web included),
        # so `.delay()` from a view publishes with the portal's broker settings.
        import portal.celery  # noqa: F401

        make_local_dirs()


def make_local_dirs() -> None:
    """The folders every process of the embedded default needs, made as it starts (importing
    settings only names them): var/, the portal's user's alone, for the SQLite file (and the
    test database beside it); STATIC_ROOT (WhiteNoise warns on every start without it)."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        Path(settings.VAR_DIR).mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)

"""`manage.py check` on the clusters' settings."""

from typing import Any

from django.core import checks

from portal.clusters.actions.registration import post_install_networks


def post_install_networks_check(app_configs: Any = None, **kwargs: Any) -> list[checks.Error]:
    try:
        post_install_networks()
    except ValueError as exc:
        return [checks.Error(str(exc), id="clusters.E001")]
    return []

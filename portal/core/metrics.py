"""The Prometheus collectors behind /metrics.

An app adds its collector in its ``AppConfig.ready()`` (``portal.jobs`` adds the jobs'), so
core serves figures without importing the apps built on it.
"""

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

_FACTORIES: list[Callable[[], Collector]] = []


def register(factory: Callable[[], Collector]) -> None:
    """``factory()`` makes the collector, once per scrape; registering twice is a no-op."""
    if factory not in _FACTORIES:
        _FACTORIES.append(factory)


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    for factory in _FACTORIES:
        registry.register(factory())
    return registry

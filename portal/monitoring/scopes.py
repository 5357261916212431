"""Scopes of alert rules that the layers above monitoring define, and nodes whose alerts
they hold.

Monitoring knows nodes, groups and purposes; a layer above it (the fleet) knows other sets
of nodes (the VMs of a tier). It registers them here at start-up (its AppConfig.ready), by
a key, and an alert rule names one in ``AlertRule.scope``: the rule then watches only the
nodes in the set, or, for a scope registered with ``exclude=True``, only the nodes outside
it. A hold (``register_hold``) names nodes whose alerts do not fire for now (a fleet VM in
maintenance): their rules' conditions stay pending and fire once the hold ends, if they
still hold. The evaluator reads every set once per pass (one query each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

NodeIds = Callable[[], Iterable[int]]


@dataclass(frozen=True)
class Scope:
    key: str
    label: str
    nodes: NodeIds
    exclude: bool = False  # the rule watches the nodes *outside* the set


_scopes: dict[str, Scope] = {}
_holds: dict[str, NodeIds] = {}


def register_scope(key: str, label: str, nodes: NodeIds, *, exclude: bool = False) -> None:
    _scopes[key] = Scope(key, label, nodes, exclude)


def register_hold(name: str, nodes: NodeIds) -> None:
    _holds[name] = nodes


def choices() -> list[tuple[str, str]]:
    return [(scope.key, scope.label) for scope in sorted(_scopes.values(), key=lambda s: s.key)]


def known(key: str) -> bool:
    return key in _scopes


def narrows(key: str) -> bool:
    """The scope picks some nodes (not "every node but some"): its rules are about those
    nodes only, so a down group's alert does not stand for their alerts."""
    scope = _scopes.get(key)
    return bool(key) and (scope is None or not scope.exclude)


@dataclass(frozen=True)
class Members:
    """A pass's view of the scopes and holds: which scoped rule applies to which node."""

    sets: dict[str, frozenset[int]]
    held: frozenset[int]

    def applies(self, key: str, node_id: int) -> bool:
        if not key:
            return True
        scope = _scopes.get(key)
        if scope is None:
            return False  # a scope nobody registers (its app removed): the rule sees nothing
        return (node_id in self.sets[key]) != scope.exclude


NOBODY = Members({}, frozenset())


def members(keys: Iterable[str]) -> Members:
    """The node sets of ``keys`` and the held nodes, one query each."""
    sets = {key: frozenset(_scopes[key].nodes()) for key in set(keys) if key in _scopes}
    held = frozenset(node for nodes in _holds.values() for node in nodes())
    return Members(sets, held)

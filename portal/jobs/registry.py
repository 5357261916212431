"""The explicit registry of job actions: what each action runs and who handles its result.

A domain app registers its actions in its ``AppConfig.ready()``::

    register(ActionSpec(
        name="workspaces.create", playbook="workspace_create.yml",
        sensitive_vars=("workspace_password",),
        on_finish=workspaces.actions.apply_create_result,
        retry=RetryPolicy(max_attempts=5),
    ))

``on_finish(job)`` runs once per job after it reaches a terminal status (also ``lost``), in
the worker or the reaper, so the owning domain object never stays "in progress".
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """Retry hosts that were unreachable, with capped exponential backoff."""

    max_attempts: int = 5
    base_delay: float = 5.0
    max_delay: float = 300.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


@dataclass(frozen=True)
class ActionSpec:
    name: str
    playbook: str | None = None  # None: any playbook (operators' ad-hoc runs)
    sensitive_vars: tuple[str, ...] = ()
    on_finish: Callable | None = None
    retry: RetryPolicy | None = None
    timeout: int | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)


_ACTIONS: dict[str, ActionSpec] = {}


def register(spec: ActionSpec) -> ActionSpec:
    existing = _ACTIONS.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"job action {spec.name!r} is already registered differently")
    _ACTIONS[spec.name] = spec
    return spec


def get(name: str) -> ActionSpec:
    try:
        return _ACTIONS[name]
    except KeyError:
        raise LookupError(f"unknown job action {name!r}") from None


def all_actions() -> dict[str, ActionSpec]:
    return dict(_ACTIONS)

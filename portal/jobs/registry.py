"""The explicit registry of job actions: what each action runs and who handles its result.

A domain app registers its actions in its ``AppConfig.ready()``::

    register(ActionSpec(
        name="workspaces.create", playbook="workspace_create.yml",
        sensitive_vars=("workspace_password",),
        on_finish=workspaces.actions.apply_create_result,
        retry=RetryPolicy(max_attempts=5),
    ))

``on_finish(job)`` runs once per job after it reaches a terminal status (also ``lost``), in
the worker or the reaper, so the owning domain object never stays "in progress". When the
action's retry policy schedules a retry instead, ``on_retry(job, retry_job)`` runs and
``on_finish`` waits for the final attempt.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")


def _value(setting: _T | Callable[[], _T]) -> _T:
    return setting() if callable(setting) else setting


@dataclass(frozen=True)
class RetryPolicy:
    """Retry hosts that were unreachable, with capped exponential backoff.

    Each number may be a zero-argument callable (e.g. reading settings), so deployments and
    tests can tune an action's policy without re-registering it. ``hosts(job)`` names the
    hosts of a failed job to retry (default: the unreachable ones, when nothing actually
    failed); an action whose hosts report a retryable failure of their own (an installer's
    exit 2) gives its own.
    """

    max_attempts: int | Callable[[], int] = 5
    base_delay: float | Callable[[], float] = 5.0
    max_delay: float | Callable[[], float] = 300.0
    hosts: Callable[[Any], list[str]] | None = None  # None: jobs.actions.unreachable_only

    def delay(self, attempt: int) -> float:
        return min(_value(self.max_delay), _value(self.base_delay) * 2 ** (attempt - 1))

    def allows(self, attempt: int) -> bool:
        """May a job that ran as ``attempt`` be retried?"""
        return attempt < _value(self.max_attempts)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    playbook: str | None = None  # None: any playbook (operators' ad-hoc runs)
    sensitive_vars: tuple[str, ...] = ()
    on_finish: Callable | None = None
    on_retry: Callable | None = None  # on_retry(job, retry_job): a retry was scheduled
    retry: RetryPolicy | None = None
    timeout: int | None = None
    # Clear the job's encrypted secret_vars once its run is over (a retry launched by the
    # policy carries its own copy): secrets kept only while a retry may need them.
    forget_secrets: bool = False
    description: str = ""


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

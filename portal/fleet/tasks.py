"""Celery tasks of the fleet: thin, each calls one action."""

from celery import shared_task

from portal.fleet.actions import rollout_engine


@shared_task(name="fleet.advance_rollouts", ignore_result=True, soft_time_limit=120)
def advance_rollouts() -> int:
    """The beat's pass over the rollouts that may move (FLEET_ROLLOUT_TICK)."""
    return rollout_engine.advance_all()


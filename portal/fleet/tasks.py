"""Celery tasks of the fleet: thin, each calls one action."""

from celery import shared_task

from portal.fleet.actions import operate, rollout_engine, usage


@shared_task(name="fleet.advance_rollouts", ignore_result=True, soft_time_limit=120)
def advance_rollouts() -> int:
    """The beat's pass over the rollouts that may move (FLEET_ROLLOUT_TICK)."""
    return rollout_engine.advance_all()


@shared_task(name="fleet.reimage_vm", ignore_result=True)
def reimage_vm(operation_id: int) -> None:
    """A rebuild's re-image through the VM's power driver (bounded by the driver's timeout)."""
    operate.do_reimage(operation_id)


@shared_task(name="fleet.advance_operations", ignore_result=True, soft_time_limit=120)
def advance_operations() -> int:
    """The beat's pass over the restarts and rebuilds that wait (every 5 s)."""
    return operate.advance_operations()


@shared_task(name="fleet.roll_up_usage_hours", ignore_result=True, time_limit=600)
def roll_up_usage_hours() -> int:
    """The fleet's usage per hour from the rollups of the hours that ended (every 5 min)."""
    return usage.roll_up_hours()

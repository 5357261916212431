"""Celery tasks of the fleet: thin, each calls one action."""

from celery import shared_task

from portal.fleet.actions import operate, rollout_engine


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

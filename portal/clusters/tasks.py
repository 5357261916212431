"""Celery tasks: thin. Each loads a node-run by id and calls one power action.

The reimage is one attempt (a refused power call is the node's error, retried by an
operator); the time limit bounds a BMC that hangs.
"""

from celery import shared_task

from portal.clusters.actions import power

POWER_TIME_LIMIT = 300


@shared_task(name="clusters.reimage", ignore_result=True, soft_time_limit=POWER_TIME_LIMIT)
def reimage(node_run_id: int) -> None:
    power.do_reimage(node_run_id)


@shared_task(
    name="clusters.disable_network_boot", ignore_result=True, soft_time_limit=POWER_TIME_LIMIT
)
def disable_network_boot(node_run_id: int) -> None:
    power.do_disable_network_boot(node_run_id)

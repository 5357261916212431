from celery import shared_task

from portal.labs import actions


@shared_task(name="labs.tick", ignore_result=True)
def tick() -> dict:
    return actions.tick()

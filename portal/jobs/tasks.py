"""Celery tasks: thin. Load by id, call one action; retries and limits live here."""

from celery import Task, shared_task

from portal.jobs import actions


@shared_task(
    name="jobs.run", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_job(self: Task, job_id: int, signature: str) -> None:
    actions.execute(job_id, signature, worker=self.request.hostname or "worker")


@shared_task(name="jobs.sweep_pending", ignore_result=True)
def sweep_pending() -> int:
    return actions.sweep_pending()


@shared_task(name="jobs.reap_lost", ignore_result=True)
def reap_lost() -> int:
    return len(actions.reap_lost())


@shared_task(name="jobs.prune", ignore_result=True, time_limit=1800)
def prune() -> dict[str, int]:
    from portal.jobs import retention

    return retention.prune()

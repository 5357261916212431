"""Helpers shared by test modules."""

from django.utils import timezone

from portal.jobs import actions as jobs
from portal.jobs.models import Job


def run_due_jobs(max_rounds: int = 20, worker: str = "test") -> None:
    """Act as the worker: run every job that is due, oldest first, until none is due."""
    for _ in range(max_rounds):
        waiting = Job.objects.filter(status__in=["pending", "dispatched"]).order_by("id")
        due = [job for job in waiting if not job.not_before or job.not_before <= timezone.now()]
        if not due:
            return
        for job in due:
            jobs.execute(job.pk, job.signature, worker=worker)


def playbook_span(names: list[str]) -> list[str]:
    """Event names from the playbook's start to its end. What Ansible prints outside its
    callback (a warning before the callback loads, say) reaches the sink from the terminal as
    a ``verbose`` event, numbered in arrival order among the callback's events."""
    kept = [i for i, name in enumerate(names) if name != "verbose"]
    return names[kept[0]:kept[-1] + 1] if kept else []


class InlineWorker:
    """A thread that acts as the worker (and beat) for tests with a live server: it runs
    due jobs and then ``tick()`` until stopped; an error in it fails the test at stop()."""

    def __init__(self, tick=None, interval: float = 0.2):
        import threading

        self.tick = tick
        self.interval = interval
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inline-worker", daemon=True)

    def _run(self):
        from django.db import connection

        try:
            while not self._stop.is_set():
                run_due_jobs(worker="inline")
                if self.tick is not None:
                    self.tick()
                self._stop.wait(self.interval)
        except BaseException as error:  # reported by stop()
            self.error = error
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=600)
        if self.error is not None:
            raise AssertionError(f"the inline worker failed: {self.error!r}") from self.error

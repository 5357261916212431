"""Helpers shared by test modules."""

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

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
    return names[kept[0] : kept[-1] + 1] if kept else []


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


class BrokerStub:
    """Celery's broker as a test sees it: every task published is recorded, none is sent.

    ``publish`` is the mock of ``Task.apply_async`` (``.delay`` goes through it too), called
    with the task first: ``publish.call_args.kwargs["args"]`` are the task's arguments.
    """

    def __init__(self, publish: mock.MagicMock):
        self.publish = publish

    def published(self) -> list[tuple[str, list]]:
        """(task name, arguments) of every publication, in order."""
        return [
            (call.args[0].name, list(call.kwargs.get("args") or []))
            for call in self.publish.call_args_list
        ]


@contextmanager
def stubbed_broker(side_effect=None) -> Iterator[BrokerStub]:
    """The suite's one broker stub (the ``broker`` fixture in tests/conftest.py is this).

    Jobs are published as usual (``dispatch`` marks them dispatched) but reach no broker; run
    them with :func:`run_due_jobs`. ``side_effect`` replaces the publication: an exception is a
    broker that is down (the job stays pending for the sweep), a function runs instead (it gets
    the task, then apply_async's arguments).
    """
    publish = mock.MagicMock(name="apply_async", side_effect=side_effect)

    def apply_async(task, *args, **kwargs):  # a function, so the task comes first
        return publish(task, *args, **kwargs)

    with mock.patch("celery.app.task.Task.apply_async", apply_async):  # nests, too
        yield BrokerStub(publish)

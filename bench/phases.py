"""Where one provisioning job's time went, from its own timestamps (ms), for the figures
that time an owner's action up to the owner's row saying it is done (labs, installers):
the action up to the job's row, the row to the worker's claim (publish, delivery, claim),
the claim to the run's first event (data dir, ansible-runner, ansible-playbook's start),
its first to its last event, the last event to the job's end (ansible-playbook's exit, the
last events stored, the data dir removed), the end to the owner's move (its handler)."""

from __future__ import annotations

from bench import stats

PHASES = (
    "action_to_job_row",
    "row_to_claim",
    "claim_to_first_event",
    "first_to_last_event",
    "last_event_to_end",
    "end_to_settled",
)


def add(phases: dict[str, list[float]], job, started: float, settled: float) -> None:
    """Append ``job``'s phases to ``phases``; ``started`` and ``settled`` are epoch seconds
    of the action's call and of the owner's row settling (the worker's clock is the same
    machine's, so they compare with the job's times)."""
    events = job.events.order_by("counter").values_list("created", flat=True)
    marks = [
        started,
        job.created_at.timestamp(),
        job.started_at.timestamp(),
        events.first().timestamp(),
        events.last().timestamp(),
        job.finished_at.timestamp(),
        settled,
    ]
    for name, begin, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
        phases.setdefault(name, []).append((end - begin) * 1000)


def medians(phases: dict[str, list[float]]) -> dict[str, float]:
    return {name: stats.rounded(stats.median(values), 1) for name, values in phases.items()}

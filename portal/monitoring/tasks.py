"""Beat tasks of monitoring: thin, each calls one action."""

from celery import shared_task
from django.utils import timezone

from portal.monitoring import actions, alerts, baselines, notify, probe


@shared_task(name="monitoring.evaluate_liveness", ignore_result=True, time_limit=60)
def evaluate_liveness() -> None:
    moved = actions.evaluate_liveness()
    if moved["down"]:
        # A node's down alert is raised in the tick that took it down, not up to one
        # alert pass later (down_detection_lag_p95 in `python -m bench --only monitoring`).
        alerts.evaluate_alerts(only=moved["down"])


@shared_task(name="monitoring.rollup_and_prune", ignore_result=True, time_limit=600)
def rollup_and_prune() -> None:
    actions.rollup()
    actions.prune()
    baselines.compute_if_due(timezone.now())


@shared_task(name="monitoring.probe_nodes", ignore_result=True, time_limit=60)
def probe_nodes() -> None:
    probe.do_probe()


@shared_task(name="monitoring.evaluate_alerts", ignore_result=True, time_limit=120)
def evaluate_alerts() -> None:
    alerts.evaluate_alerts()


@shared_task(name="monitoring.deliver_notifications", ignore_result=True, time_limit=300)
def deliver_notifications() -> None:
    notify.deliver()

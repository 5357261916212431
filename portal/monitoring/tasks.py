"""Beat tasks of monitoring: thin, each calls one action."""

from celery import shared_task

from portal.monitoring import actions, alerts, notify, probe


@shared_task(name="monitoring.evaluate_liveness", ignore_result=True, time_limit=60)
def evaluate_liveness() -> None:
    actions.evaluate_liveness()


@shared_task(name="monitoring.rollup_and_prune", ignore_result=True, time_limit=600)
def rollup_and_prune() -> None:
    actions.rollup()
    actions.prune()


@shared_task(name="monitoring.probe_nodes", ignore_result=True, time_limit=60)
def probe_nodes() -> None:
    probe.do_probe()


@shared_task(name="monitoring.evaluate_alerts", ignore_result=True, time_limit=120)
def evaluate_alerts() -> None:
    alerts.evaluate_alerts()


@shared_task(name="monitoring.deliver_notifications", ignore_result=True, time_limit=300)
def deliver_notifications() -> None:
    notify.deliver()

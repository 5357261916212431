from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "portal.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from portal.core import metrics
        from portal.jobs import registry
        from portal.jobs.metrics import JobCollector

        metrics.register(JobCollector)  # served at /metrics

        # Operators' ad-hoc runs (manage.py runplaybook, the jobs API): any playbook.
        registry.register(registry.ActionSpec(
            name="jobs.adhoc", description="A playbook run by an operator",
        ))
        # The reaper's: ends what a lost job left running on its nodes (portal.jobs.orphans).
        registry.register(registry.ActionSpec(
            name="jobs.end_lost_run", playbook="end_lost_run.yml", timeout=300,
            description="End the processes a lost job left on its nodes",
        ))

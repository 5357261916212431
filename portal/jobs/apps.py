from django.apps import AppConfig


def _close_node_masters(node_ids: list[int]) -> None:
    from portal.jobs import ssh

    ssh.close_node_masters(node_ids)


class JobsConfig(AppConfig):
    name = "portal.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from portal.core import metrics
        from portal.jobs import registry
        from portal.jobs.metrics import JobCollector
        from portal.nodes import actions as node_actions

        metrics.register(JobCollector)  # served at /metrics
        # A node's login changed or it went: the SSH masters jobs share to it close.
        node_actions.on_login_changed(_close_node_masters)

        # Operators' ad-hoc runs (manage.py runplaybook, the jobs API): any playbook.
        registry.register(
            registry.ActionSpec(
                name="jobs.adhoc",
                description="A playbook run by an operator",
            )
        )
        # The reaper's: ends what a lost job left running on its nodes (portal.jobs.orphans).
        registry.register(
            registry.ActionSpec(
                name="jobs.end_lost_run",
                playbook="end_lost_run.yml",
                timeout=300,
                description="End the processes a lost job left on its nodes",
            )
        )

from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "portal.clusters"
    label = "clusters"
    verbose_name = "Clusters"

    def ready(self) -> None:
        from portal.clusters import actions

        actions.register_job_actions()
        actions.wire_timeouts()

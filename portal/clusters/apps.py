from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "portal.clusters"
    label = "clusters"
    verbose_name = "Clusters"

    def ready(self) -> None:
        from django.core import checks

        from portal.clusters import actions
        from portal.clusters.checks import post_install_networks_check
        from portal.clusters.metrics import ClusterCollector
        from portal.core import metrics

        actions.register_job_actions()
        actions.wire_timeouts()
        checks.register(post_install_networks_check)
        metrics.register(ClusterCollector)  # served at /metrics

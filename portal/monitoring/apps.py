from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "portal.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from portal.core import metrics
        from portal.monitoring import actions, probe
        from portal.monitoring.metrics import AlertCollector, LivenessCollector

        metrics.register(LivenessCollector)  # served at /metrics
        metrics.register(AlertCollector)
        actions.register_job_actions()
        probe.register_job_actions()

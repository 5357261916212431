from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "portal.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from portal.monitoring import actions

        actions.register_job_actions()

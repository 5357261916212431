from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "portal.fleet"
    label = "fleet"
    verbose_name = "Fleet"

    def ready(self) -> None:
        from portal.fleet import actions, alerts

        actions.register_job_actions()
        alerts.register()  # the tier scopes and the maintenance hold of the alert rules

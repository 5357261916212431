from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "portal.fleet"
    label = "fleet"
    verbose_name = "Fleet"

    def ready(self) -> None:
        from portal.fleet import actions, alerts, selectors
        from portal.monitoring import owners

        actions.register_job_actions()
        owners.register_owned_nodes(selectors.owned_node_ids)  # customers read their VMs' alerts
        alerts.register()  # the tier scopes and the maintenance hold of the alert rules

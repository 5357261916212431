from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "portal.labs"
    label = "labs"
    verbose_name = "Labs"

    def ready(self):
        from portal.jobs import dashboard as admin_home
        from portal.labs import actions, dashboard

        actions.register_job_actions()
        admin_home.register(dashboard.admin_home_figures)

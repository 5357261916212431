from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "portal.labs"
    label = "labs"
    verbose_name = "Labs"

    def ready(self):
        from portal.labs import actions

        actions.register_job_actions()

from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "portal.workspaces"
    label = "workspaces"
    verbose_name = "Workspaces"

    def ready(self):
        from portal.workspaces import actions

        actions.register_job_actions()

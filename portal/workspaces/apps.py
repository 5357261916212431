from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "portal.workspaces"
    label = "workspaces"
    verbose_name = "Workspaces"

    def ready(self):
        from portal.jobs import dashboard as admin_home
        from portal.workspaces import actions, dashboard

        actions.register_job_actions()
        admin_home.register(dashboard.admin_home_figures)

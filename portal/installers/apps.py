from django.apps import AppConfig


class InstallersConfig(AppConfig):
    name = "portal.installers"
    label = "installers"
    verbose_name = "Installers"
    # The catalogue loads on first use in each process, so a bad manifest is logged there
    # and never stops a process (see catalogue.py, also for SIGHUP).

    def ready(self) -> None:
        from portal.core import metrics
        from portal.installers import actions, dashboard
        from portal.installers.metrics import InstallerCollector
        from portal.jobs import dashboard as admin_home

        actions.register_job_actions()
        metrics.register(InstallerCollector)  # served at /metrics
        admin_home.register(dashboard.admin_home_figures)

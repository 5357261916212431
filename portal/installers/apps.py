from django.apps import AppConfig


class InstallersConfig(AppConfig):
    name = "portal.installers"
    label = "installers"
    verbose_name = "Installers"
    # The catalogue loads on first use in each process, so a bad manifest is logged there
    # and never stops a process (see catalogue.py, also for SIGHUP).

    def ready(self) -> None:
        from portal.installers import actions

        actions.register_job_actions()

from django.apps import AppConfig


class InstallersConfig(AppConfig):
    name = "portal.installers"
    label = "installers"
    verbose_name = "Installers"
    # Nothing to do at start: the catalogue loads on first use in each process, so a bad
    # manifest is logged there and never stops a process (see catalogue.py, also for SIGHUP).

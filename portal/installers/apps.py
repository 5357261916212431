from django.apps import AppConfig


class InstallersConfig(AppConfig):
    name = "portal.installers"
    label = "installers"
    verbose_name = "Installers"

    def ready(self):
        from celery.signals import worker_process_init

        from portal.installers import catalogue

        # The catalogue itself loads on first use (a bad manifest is logged, never fatal).
        # A Celery pool process reloads it on SIGHUP (see catalogue.py for web and the rest).
        worker_process_init.connect(catalogue.install_hup_handler, weak=False)

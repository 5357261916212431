"""Celery application: `celery -A portal worker` / `celery -A portal beat`."""

import os

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from portal.entrypoint import load_settings_or_exit

load_settings_or_exit()

# The embedded default's broker, fixed to write messages atomically (see fs_transport).
TRANSPORT_ALIASES["filesystem"] = "portal.core.fs_transport:Transport"

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _own_process_group(**kwargs):
    # A terminal's Ctrl-C (or honcho's SIGTERM to the worker's process group) goes to the
    # main process only; it then shuts the pool down cleanly (warm shutdown) instead of the
    # pool processes dying mid-task.
    os.setpgrp()


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_a_request(task=None, **kwargs):
    # What Django does around a web request: a connection older than CONN_MAX_AGE, or left
    # in a bad state, is closed, and the next query checks the connection is alive
    # (CONN_HEALTH_CHECKS). Celery's fixup no longer closes it every time
    # (CELERY_DB_REUSE_MAX). A task run eagerly, inside its caller, is the caller's business.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_ready.connect
def _end_what_dead_workers_left(**kwargs):
    # A worker SIGKILLed mid-job left its run's processes and its data dir (secrets in
    # clear) behind; a restarted worker ends them as it starts (portal.jobs.orphans).
    from portal.jobs.callback_plugin import compile_callback
    from portal.jobs.orphans import clean_up_local

    clean_up_local()
    compile_callback()


@worker_shutdown.connect
def _stop_shared_ssh_masters(**kwargs):
    # Masters shared between jobs (portal.jobs.ssh) take no new sessions once the worker
    # stops; sessions of other workers on this machine finish normally.
    from portal.jobs.ssh import stop_shared_masters

    stop_shared_masters()

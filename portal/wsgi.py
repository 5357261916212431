import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from portal.entrypoint import load_settings_or_exit

load_settings_or_exit()
django_application = get_wsgi_application()
# Agents' heartbeats are most of the requests on a large fleet: answered before Django's
# middleware, with the same answer (portal/monitoring/heartbeat_wsgi.py); the rest is Django.
from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath  # noqa: E402 - needs setup()

application = HeartbeatFastPath(django_application)

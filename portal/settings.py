"""Portal settings: every value comes from the environment (see README, "Configuration").

With nothing set, the portal runs on the embedded default: SQLite and Celery's filesystem
transport under ``var/``, development secrets generated once into ``var/`` (DEBUG only).
Values are read and cast by django-environ (``portal.config.Env``).

Importing settings makes no directory: the folders named here are made where they are first
needed (``portal.core.apps`` for var/ and STATIC_ROOT, the filesystem transport for the
broker's, the runner for job dirs). Only a development secret generated on first start (DEBUG,
no SECRET_KEY/FIELD_ENCRYPTION_KEY given) writes into var/.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from portal.config import ConfigError, Env, generated_secret

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    if env.is_set("SECRET_KEY"):
        key = env.str("SECRET_KEY")
        if len(key) < 32:
            raise ConfigError("SECRET_KEY: must be at least 32 characters")
        return key
    if not DEBUG:
        raise ConfigError("SECRET_KEY: required when DEBUG is off (or set SECRET_KEY_FILE)")
    return generated_secret(VAR_DIR / "secret_key")


SECRET_KEY = _secret_key()
# MultiFernet keys, newest first: prepend a new key, run `manage.py rotate_field_keys`,
# then drop the old one.
FIELD_ENCRYPTION_KEYS = env.fernet_keys(
    "FIELD_ENCRYPTION_KEY", fallback_file=VAR_DIR / "field_encryption_key" if DEBUG else None
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
# Proxies in front that append to X-Forwarded-For: the client is the one they appended.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", 1, minimum=1)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS: off until the site is HTTPS-only for good (a browser remembers it for HSTS_SECONDS).
SECURE_HSTS_SECONDS = env.int("HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=False)
# Behind the TLS proxy a plain-http request reached us past the proxy: send it to https.
# Probes and Traefik's provider poll these over the internal network, without the proxy.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^metrics$", r"^api/traefik/config$"]
# security.W021 (HSTS preload off): joining the browsers' preload list commits the whole
# domain to HTTPS and is slow to undo, so it is the owner's explicit choice (HSTS_PRELOAD).
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Content-Security-Policy (django-csp): only this origin's files; no inline code or styles
# (pages load theirs from static files). The API docs view widens it for Swagger UI only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (air-gapped sites)
    "django_celery_beat",
    "axes",
    "portal.core",
    "portal.accounts",
    "portal.nodes",
    "portal.jobs",
    "portal.labs",
    "portal.workspaces",
    "portal.monitoring",
    "portal.installers",
    "portal.clusters",
    "portal.fleet",
    "portal.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # outside the next one: its header is on the final answer
    "portal.core.middleware.ApiErrorShapeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "portal.core.middleware.RejectNulCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: it turns a login refused for a lockout into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------

_default_database_url = f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", _default_database_url)}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + immediate transactions: web, worker and beat share one file without
    # "database is locked" on the first write of a read transaction.
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so a Celery worker started by the tests can share the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    _db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- celery -------------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "filesystem://")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", "default")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The folders are made by the transport (portal.core.fs_transport) when it first connects.
    _broker_dir = Path(env.str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else ./control in the cwd
        "store_processed": False,
        # Polled, not pushed: a short interval keeps launch -> start latency low.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless
# told how many tasks one may serve: each job opened a new PostgreSQL connection before its
# claim (6 of the 10 ms from a job's message to its claim). A worker's tasks now reuse it as
# the web's requests do, CONN_MAX_AGE and the health check deciding (portal/celery.py); the
# fixup still closes it after this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
BROKER_HEALTH_TIMEOUT = env.float("BROKER_HEALTH_TIMEOUT", 2.0)
CELERY_BEAT_SCHEDULE = {
    # Rows past their status's deadline (portal.core.status) to their timeout status.
    "core-expire-statuses": {"task": "core.expire_statuses", "schedule": 10.0},
    "jobs-sweep-pending": {"task": "jobs.sweep_pending", "schedule": 5.0},
    "jobs-reap-lost": {"task": "jobs.reap_lost", "schedule": 10.0},
    "labs-tick": {"task": "labs.tick", "schedule": 10.0},
    "workspaces-tick": {"task": "workspaces.tick", "schedule": 5.0},
    # A silent node is down at its due time + at most this tick (down_detection_lag_p95).
    "monitoring-liveness": {
        "task": "monitoring.evaluate_liveness",
        "schedule": float(env.int("MONITORING_LIVENESS_TICK", 1, minimum=1)),
        "options": {"expires": 10},
    },
    "monitoring-rollup": {"task": "monitoring.rollup_and_prune", "schedule": 60.0},
    "monitoring-alerts": {"task": "monitoring.evaluate_alerts", "schedule": 10.0},
}

METRICS_TOKEN = env.str("METRICS_TOKEN", "")
# Without a token /metrics is open in development only; with DEBUG off it answers 403.
METRICS_OPEN = DEBUG and not METRICS_TOKEN

# --- labs ---------------------------------------------------------------------------------

LAB_RETRY_BASE_SECONDS = env.float("LAB_RETRY_BASE_SECONDS", 5.0)
LAB_RETRY_MAX_SECONDS = env.float("LAB_RETRY_MAX_SECONDS", 300.0)
LAB_RETRY_MAX_ATTEMPTS = env.int("LAB_RETRY_MAX_ATTEMPTS", 1000, minimum=1)
LAB_CLEANUP_MAX_ATTEMPTS = env.int("LAB_CLEANUP_MAX_ATTEMPTS", 10, minimum=1)

# --- workspaces ---------------------------------------------------------------------------

WORKSPACES_DOMAIN = env.str("WORKSPACES_DOMAIN", "workspaces.localhost")
WORKSPACE_LOG_LINES = env.int("WORKSPACE_LOG_LINES", 100, minimum=1)
WORKSPACE_BATCH_MAX = env.int("WORKSPACE_BATCH_MAX", 100, minimum=1)
WORKSPACE_RETRY_MAX_ATTEMPTS = env.int("WORKSPACE_RETRY_MAX_ATTEMPTS", 5, minimum=1)
WORKSPACE_RETRY_BASE_SECONDS = env.float("WORKSPACE_RETRY_BASE_SECONDS", 5.0)
WORKSPACE_RETRY_MAX_SECONDS = env.float("WORKSPACE_RETRY_MAX_SECONDS", 120.0)
# A create refused for want of a node or port emails the admins (active staff with an
# address, or ADMINS) at most once per node group in this many minutes.
CAPACITY_NOTICE_MINUTES = env.int("CAPACITY_NOTICE_MINUTES", 60, minimum=1)
# How long Traefik may take to show (or drop) a workspace's route before it counts as failed.
WORKSPACE_ROUTE_TIMEOUT = env.float("WORKSPACE_ROUTE_TIMEOUT", 60.0)
CODE_SERVER_PACKAGE = env.str("CODE_SERVER_PACKAGE", "")  # path or URL; empty: npm
CODE_SERVER_VERSION = env.str("CODE_SERVER_VERSION", "4.100.3")
# Traefik: the portal serves its HTTP-provider configuration and confirms routes via its API.
TRAEFIK_PROVIDER_TOKEN = env.str("TRAEFIK_PROVIDER_TOKEN", "")
TRAEFIK_API_URL = env.str("TRAEFIK_API_URL", "")  # empty: routes are not confirmed (dev)
TRAEFIK_ENTRYPOINTS = env.list("TRAEFIK_ENTRYPOINTS", default=["websecure"])
TRAEFIK_TLS = env.bool("TRAEFIK_TLS", True)
TRAEFIK_CERT_RESOLVER = env.str("TRAEFIK_CERT_RESOLVER", "")

# --- monitoring ---------------------------------------------------------------------------

# Agents' heartbeats (README, "Monitoring"): a node is late once its beat is overdue by
# LATE_SECONDS, down once it is overdue by GRACE_SECONDS (next_due_at = beat + interval + grace).
MONITORING_HEARTBEAT_INTERVAL = env.int("MONITORING_HEARTBEAT_INTERVAL", 30, minimum=1)
MONITORING_LATE_SECONDS = env.int("MONITORING_LATE_SECONDS", 10, minimum=0)
MONITORING_GRACE_SECONDS = env.int("MONITORING_GRACE_SECONDS", 60, minimum=0)
MONITORING_MAX_GAUGES = env.int("MONITORING_MAX_GAUGES", 32, minimum=0)
# A heartbeat's commit waits for its WAL flush only if this is on (PostgreSQL). Off: the
# heartbeat's own transaction commits asynchronously (synchronous_commit off, that
# transaction only): a PostgreSQL crash can lose the last ~0.6 s of acknowledged heartbeats
# (never half of one), and a flush per beat is most of the database's CPU per beat.
MONITORING_HEARTBEAT_SYNC_COMMIT = env.bool("MONITORING_HEARTBEAT_SYNC_COMMIT", default=False)
# The portal's address as the nodes' agents reach it (empty: PORTAL_URL).
MONITORING_PORTAL_URL = env.str("MONITORING_PORTAL_URL", "")
MONITORING_RAW_RETENTION_HOURS = env.int("MONITORING_RAW_RETENTION_HOURS", 48, minimum=1)
MONITORING_ROLLUP_RETENTION_DAYS = env.int("MONITORING_ROLLUP_RETENTION_DAYS", 90, minimum=1)
MONITORING_RAW_QUERY_HOURS = env.int("MONITORING_RAW_QUERY_HOURS", 24, minimum=1)
MONITORING_METRICS_MAX_HOURS = env.int("MONITORING_METRICS_MAX_HOURS", 2160, minimum=1)
MONITORING_PRUNE_BATCH = env.int("MONITORING_PRUNE_BATCH", 10000, minimum=1)
MONITORING_PRUNE_MAX_BATCHES = env.int("MONITORING_PRUNE_MAX_BATCHES", 100, minimum=1)
MONITORING_ALERT_BATCH = env.int("MONITORING_ALERT_BATCH", 5000, minimum=1)
MONITORING_ALERT_GAUGE_MAX_AGE = env.int("MONITORING_ALERT_GAUGE_MAX_AGE", 300, minimum=1)
MONITORING_ALERT_FLAP_FLIPS = env.int("MONITORING_ALERT_FLAP_FLIPS", 6, minimum=2)
MONITORING_ALERT_FLAP_WINDOW = env.int("MONITORING_ALERT_FLAP_WINDOW", 3600, minimum=1)  # seconds
# A group (site) with at least this many monitored nodes of which at least this percentage
# is down is down itself: one alert for the group instead of its nodes' down alerts.
MONITORING_GROUP_DOWN_MIN_NODES = env.int("MONITORING_GROUP_DOWN_MIN_NODES", 3, minimum=2)
MONITORING_GROUP_DOWN_PERCENT = env.int("MONITORING_GROUP_DOWN_PERCENT", 50, minimum=1)
# Baseline rules ("unusual activity"): a node's usual value for an hour of the week is
# the same hour's rollups of the last BASELINE_WEEKS weeks, once it has MIN_BUCKETS of them.
MONITORING_BASELINE_WEEKS = env.int("MONITORING_BASELINE_WEEKS", 4, minimum=1)
MONITORING_BASELINE_MIN_BUCKETS = env.int("MONITORING_BASELINE_MIN_BUCKETS", 24, minimum=1)
# Alert notifications (monitoring/notify.py): attempts before a row is failed, first backoff
# (doubling), webhook timeout (email: EMAIL_TIMEOUT), lease of a claimed row, rows per pass.
MONITORING_NOTIFY_MAX_ATTEMPTS = env.int("MONITORING_NOTIFY_MAX_ATTEMPTS", 5, minimum=1)
MONITORING_NOTIFY_BACKOFF = env.int("MONITORING_NOTIFY_BACKOFF", 30, minimum=0)
MONITORING_NOTIFY_TIMEOUT = env.int("MONITORING_NOTIFY_TIMEOUT", 10, minimum=1)
MONITORING_NOTIFY_LEASE = env.int("MONITORING_NOTIFY_LEASE", 300, minimum=30)
MONITORING_NOTIFY_BATCH = env.int("MONITORING_NOTIFY_BATCH", 500, minimum=1)
CELERY_BEAT_SCHEDULE["monitoring-notify"] = {
    "task": "monitoring.deliver_notifications",
    "schedule": 10.0,
}
# Agent-less nodes: one batched probe run (playbooks/node_probe.yml) every this many seconds.
MONITORING_PROBE_INTERVAL = env.int("MONITORING_PROBE_INTERVAL", 60, minimum=5)
CELERY_BEAT_SCHEDULE["monitoring-probe"] = {
    "task": "monitoring.probe_nodes",
    "schedule": float(MONITORING_PROBE_INTERVAL),
}

# Fleet update rollouts (README, "Update rollouts"): the wave engine's tick; how long an
# updated VM has to report the new version in a heartbeat; how long a wave waits for a VM
# busy with another action before skipping it; an update job's timeout.
FLEET_ROLLOUT_TICK = env.int("FLEET_ROLLOUT_TICK", 5, minimum=1)
FLEET_ROLLOUT_HEALTH_TIMEOUT = env.int("FLEET_ROLLOUT_HEALTH_TIMEOUT", 300, minimum=1)
FLEET_ROLLOUT_BUSY_WAIT = env.int("FLEET_ROLLOUT_BUSY_WAIT", 600, minimum=0)
FLEET_UPDATE_TIMEOUT = env.int("FLEET_UPDATE_TIMEOUT", 1800, minimum=10)
CELERY_BEAT_SCHEDULE["fleet-rollouts"] = {
    "task": "fleet.advance_rollouts",
    "schedule": float(FLEET_ROLLOUT_TICK),
    "options": {"expires": 30},
}

# --- installers ---------------------------------------------------------------------------

# The application catalogue (portal/installers/catalogue.py): one directory per installer.
# `manage.py installers reload` replaces the generation file; every process reading the
# catalogue reloads it on its next use.
INSTALLERS_DIR = Path(env.str("INSTALLERS_DIR", str(BASE_DIR / "installers")))
INSTALLERS_GENERATION_FILE = Path(
    env.str("INSTALLERS_GENERATION_FILE", str(VAR_DIR / "installers.generation"))
)
# Exit 2 (installation error) and unreachable nodes: retried with exponential backoff
# (10 s, 20 s, ...), at most this many attempts in all (the contract: 3), then failed.
INSTALLERS_RETRY_ATTEMPTS = env.int("INSTALLERS_RETRY_ATTEMPTS", 3, minimum=1)
INSTALLERS_RETRY_BASE_SECONDS = env.float("INSTALLERS_RETRY_BASE_SECONDS", 10.0)
INSTALLERS_RETRY_MAX_SECONDS = env.float("INSTALLERS_RETRY_MAX_SECONDS", 300.0)

# --- clusters -----------------------------------------------------------------------------

# Reprovision runs (portal/clusters): a run ends at its deadline (per run, this by default);
# each node has its own overall deadline from its reimage to "ready" (the old system's 45
# minutes), and each phase its own (minutes; the core.expire_statuses sweep enforces both).
CLUSTERS_RUN_TIMEOUT_MINUTES = env.int("CLUSTERS_RUN_TIMEOUT_MINUTES", 60, minimum=1)
CLUSTERS_NODE_TIMEOUT_MINUTES = env.int("CLUSTERS_NODE_TIMEOUT_MINUTES", 45, minimum=1)
CLUSTERS_PHASE_MINUTES = {
    "requested": env.int("CLUSTERS_REQUESTED_MINUTES", 5, minimum=1),
    "rebooting": env.int("CLUSTERS_REBOOTING_MINUTES", 15, minimum=1),
    "installing": env.int("CLUSTERS_INSTALLING_MINUTES", 40, minimum=1),
    "registered": env.int("CLUSTERS_REGISTERED_MINUTES", 15, minimum=1),
    "joining": env.int("CLUSTERS_JOINING_MINUTES", 20, minimum=1),
}
# Readiness (playbooks/cluster_node_ready.yml) is checked again this long after a "not
# ready", at most this many times per node and run (the node's deadline bounds it too).
CLUSTERS_READY_RECHECK_SECONDS = env.int("CLUSTERS_READY_RECHECK_SECONDS", 30, minimum=1)
CLUSTERS_READY_MAX_CHECKS = env.int("CLUSTERS_READY_MAX_CHECKS", 60, minimum=1)
# Registration: a signed request's timestamp may differ from the portal's clock this much.
CLUSTERS_REGISTRATION_SKEW_SECONDS = env.int("CLUSTERS_REGISTRATION_SKEW_SECONDS", 300, minimum=1)
# The URL the post-install script posts its registration to (blank: the URL the script was
# fetched from, i.e. what the installer reached).
CLUSTERS_PORTAL_URL = env.str("CLUSTERS_PORTAL_URL", "")
# The post-install script (with the node's token and secret) is served only to clients in
# these networks (comma-separated CIDRs, e.g. the provisioning VLAN; empty: anywhere).
# A bad entry serves the script to nobody (and `manage.py check` names it).
CLUSTERS_POST_INSTALL_NETWORKS = env.list("CLUSTERS_POST_INSTALL_NETWORKS", default=[])
# cluster_form.yml's bounds (seconds): quorum after the create, and each join.
CLUSTERS_QUORUM_TIMEOUT = env.int("CLUSTERS_QUORUM_TIMEOUT", 120, minimum=1)
CLUSTERS_JOIN_TIMEOUT = env.int("CLUSTERS_JOIN_TIMEOUT", 300, minimum=1)

# Fleet restart and rebuild (README, "Restart and rebuild"): bounds in seconds on the
# reboot, the re-image, the new image's SSH, and the heartbeat from the new boot; the tick
# that moves operations along (nothing sleeps waiting).
FLEET_REBOOT_TIMEOUT = env.int("FLEET_REBOOT_TIMEOUT", 600, minimum=10)
FLEET_REIMAGE_TIMEOUT = env.int("FLEET_REIMAGE_TIMEOUT", 900, minimum=10)
FLEET_BOOT_TIMEOUT = env.int("FLEET_BOOT_TIMEOUT", 600, minimum=10)
FLEET_HEARTBEAT_TIMEOUT = env.int("FLEET_HEARTBEAT_TIMEOUT", 300, minimum=10)
CELERY_BEAT_SCHEDULE["fleet-operations"] = {
    "task": "fleet.advance_operations",
    "schedule": 5.0,
    "options": {"expires": 30},
}
# The fleet's hourly usage sums (the 30-day usage figures), once the rollups pass an hour.
CELERY_BEAT_SCHEDULE["fleet-usage-hours"] = {
    "task": "fleet.roll_up_usage_hours",
    "schedule": 300.0,
    "options": {"expires": 300},
}

# --- jobs ---------------------------------------------------------------------------------

PLAYBOOKS_DIR = Path(env.str("PLAYBOOKS_DIR", str(BASE_DIR / "playbooks")))
ROLES_DIR = Path(env.str("ROLES_DIR", str(BASE_DIR / "roles")))


def default_jobs_work_dir(shm: Path = Path("/dev/shm")) -> Path:  # noqa: S108
    # A running job's data dir holds its secrets in clear (extra vars, passwords, keys): on
    # a tmpfs when the machine has one, they never reach a disk, nor outlive a reboot.
    # Shared by all users: runner.work_dir() refuses a directory that is not ours alone.
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm / f"portal-jobs-{os.geteuid()}"
    return VAR_DIR / "jobs"


JOBS_WORK_DIR = Path(env.str("JOBS_WORK_DIR", str(default_jobs_work_dir())))
# SSH control sockets: a unix socket path must stay under 108 bytes.
JOBS_CONTROL_DIR = env.str("JOBS_CONTROL_DIR", tempfile.gettempdir())
JOB_TIMEOUT = env.int("JOB_TIMEOUT", 3600, minimum=1)
JOB_IDLE_TIMEOUT = env.int("JOB_IDLE_TIMEOUT", 900, minimum=1)
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", 5.0)
JOB_LOST_AFTER = env.int("JOB_LOST_AFTER", 40, minimum=1)
JOB_SWEEP_PENDING_AFTER = env.int("JOB_SWEEP_PENDING_AFTER", 5, minimum=0)
JOB_REDISPATCH_AFTER = env.int("JOB_REDISPATCH_AFTER", 900, minimum=1)
# How long a worker looks for the row its message names before dropping the message: the
# API's launch publishes before it writes the row (jobs.actions._publish_then_insert).
JOB_MESSAGE_ROW_WAIT = env.float("JOB_MESSAGE_ROW_WAIT", 5.0)
JOB_EVENT_FLUSH_SECONDS = env.float("JOB_EVENT_FLUSH_SECONDS", 0.1)
JOB_EVENT_BATCH = env.int("JOB_EVENT_BATCH", 5000, minimum=1)
JOB_FORKS = env.int("JOB_FORKS", 50, minimum=1)
JOB_CONNECT_TIMEOUT = env.int("JOB_CONNECT_TIMEOUT", 10, minimum=1)
# SSH masters shared by jobs to the same node; a master is not reused past this window
# (0: one master per job). See portal/jobs/ssh.py.
JOB_SSH_SHARE_SECONDS = env.int("JOB_SSH_SHARE_SECONDS", 300, minimum=0)
JOB_POLL_SECONDS = env.float("JOB_POLL_SECONDS", 0.2)
JOB_STREAM_POLL_SECONDS = env.float("JOB_STREAM_POLL_SECONDS", 0.1)
JOB_STREAM_MAX_SECONDS = env.int("JOB_STREAM_MAX_SECONDS", 3600, minimum=1)
# Variables of the portal's environment passed on to the processes it starts
# (ansible-playbook, ssh, ipmitool), beside the allow-list of portal/core/childenv.py.
CHILD_ENV_PASSTHROUGH = frozenset(env.list("CHILD_ENV_PASSTHROUGH", default=[]))
# Retention (portal/jobs/retention.py, beat jobs.prune hourly, manage.py prune_jobs): events
# of jobs ended more than JOB_EVENTS_RETENTION_DAYS ago, then the jobs themselves (summary
# rows) after JOB_RETENTION_DAYS; 0 keeps forever. In batches of JOB_PRUNE_BATCH jobs.
JOB_EVENTS_RETENTION_DAYS = env.int("JOB_EVENTS_RETENTION_DAYS", 30, minimum=0)
JOB_RETENTION_DAYS = env.int("JOB_RETENTION_DAYS", 180, minimum=0)
JOB_PRUNE_BATCH = env.int("JOB_PRUNE_BATCH", 500, minimum=1)
JOB_PRUNE_MAX_BATCHES = env.int("JOB_PRUNE_MAX_BATCHES", 200, minimum=1)
CELERY_BEAT_SCHEDULE["jobs-prune"] = {"task": "jobs.prune", "schedule": 3600.0}
JOB_PUBLISH_RETRY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

# --- email and invitations ----------------------------------------------------------------

# EMAIL_URL (django-environ's email URL): smtp://user:password@host:25, smtp+tls://…:587,
# smtp+ssl://…:465, consolemail://, filemail:///path, memorymail://, dummymail://.
# Unset: the console in DEBUG, SMTP on localhost:25 otherwise. Secrets: EMAIL_URL_FILE.
_email = env.email_url("EMAIL_URL", "consolemail://" if DEBUG else "smtp://localhost:25")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
if _email.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where the portal is reached from outside, for links in emails (e.g. https://portal.example.com);
# empty: the address of the request that sent the email.
PORTAL_URL = env.str("PORTAL_URL", "").rstrip("/")
INVITATION_DAYS = env.int("INVITATION_DAYS", 7, minimum=1)

# --- auth, i18n, static -------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login lockout (django-axes, see portal/accounts/lockout.py): per username and address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before any check
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_COOLOFF_MINUTES = env.int("LOGIN_COOLOFF_MINUTES", 15, minimum=0)  # 0: until unlocked
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES) if LOGIN_COOLOFF_MINUTES else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a typo now and then never adds up to a lockout
AXES_LOCKOUT_CALLABLE = "portal.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "portal.accounts.lockout.client_ip"
AXES_USERNAME_CALLABLE = "portal.accounts.lockout.client_username"
AXES_VERBOSE = False  # no banner on every start (manage.py, the inventory script's stderr)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/workspaces/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(VAR_DIR / "static")))  # made by portal.core.apps
# Browser libraries from the npm registry (portal/deploy/package.json + lock; `make` runs
# `npm ci`), served from node_modules as the portal's own files: no CDN, air-gapped sites work.
NODE_MODULES_DIR = BASE_DIR / "portal" / "deploy" / "node_modules"
STATICFILES_DIRS = [("vendor/chart.js", NODE_MODULES_DIR / "chart.js" / "dist")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- API ----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate ("Token") makes an unauthenticated call a 401, not a
    # 403. The browser's session still signs in (with CSRF checks) when no token is sent.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.core.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.core.api.pagination.Pagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", 50, minimum=1),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.core.api.errors.exception_handler",
    # JSON with bounded size and nesting: a hostile body is a 4xx, never a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "portal.core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "NON_FIELD_ERRORS_KEY": "non_field_errors",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Provisioning portal API",
    "DESCRIPTION": "Customers, nodes, jobs, workspaces and labs; "
    "every machine change is an Ansible job.",
    # Swagger UI from the project's own static files, not a CDN: /api/docs/ works offline and
    # the docs page's Content-Security-Policy stays 'self' (portal.core.api.docs).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Descriptions come from each viewset's own docstring, never a shared base's.
    "GET_LIB_DOC_EXCLUDES": "portal.core.api.schema.doc_excludes",
    "ENUM_NAME_OVERRIDES": {
        "PlanTierEnum": "portal.accounts.choices.PlanTier",
        "LabSessionStatusEnum": "portal.labs.choices.SessionStatus",
        "JobStatusEnum": "portal.jobs.choices.JobStatus",
        # One name per choice set (check --deploy warns about generated ones).
        "WorkspaceStatusEnum": "portal.workspaces.choices.WorkspaceStatus",
        "QuotaBackendEnum": "portal.nodes.choices.QuotaBackend",
        "BillingStatusEnum": "portal.accounts.choices.BillingStatus",
        "InvitationStatusEnum": "portal.accounts.choices.InvitationStatus",
        "MembershipRoleEnum": "portal.core.tenancy.MembershipRole",
        "NodePurposeEnum": "portal.nodes.choices.NodePurpose",
        "NodeConnectionEnum": "portal.nodes.choices.Connection",
        "CredentialKindEnum": "portal.nodes.choices.CredentialKind",
        "LivenessStatusEnum": "portal.monitoring.choices.Liveness",
        "AlertSeverityEnum": "portal.monitoring.choices.Severity",
        "AlertTypeEnum": "portal.monitoring.choices.AlertType",
        "InstallerInputTypeEnum": "portal.installers.choices.InputType",
        "InstallationStatusEnum": "portal.installers.choices.InstallationStatus",
        "ReprovisionRunStatusEnum": "portal.clusters.choices.RunStatus",
        "NodeReprovisionStatusEnum": "portal.clusters.choices.NodeStatus",
        "PowerDriverEnum": "portal.clusters.power.DRIVER_CHOICES",
        "VMOperationStatusEnum": "portal.fleet.choices.OperationStatus",
        "FleetTierEnum": "portal.fleet.choices.FleetTier",
        "VMStatusEnum": "portal.fleet.choices.VMStatus",
        "VMActionKindEnum": "portal.fleet.choices.VMActionKind",
        "RolloutStatusEnum": "portal.fleet.choices.RolloutStatus",
        "RolloutTargetStatusEnum": "portal.fleet.choices.TargetStatus",
    },
}

# --- logging ------------------------------------------------------------------------------

LOG_LEVEL = env.choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
LOG_FORMAT = env.choice("LOG_FORMAT", ("text", "json"), "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "portal.core.logging.TextFormatter"},
        "json": {"()": "portal.core.logging.json_formatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
        # The filesystem transport has no host name and says so on every connection.
        "kombu.connection": {"level": "ERROR"},
        # Failed logins and lockouts are warnings; axes' step-by-step notes are not.
        "axes": {"level": "WARNING"},
    },
}

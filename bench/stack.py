"""One backend under test: its environment, database, broker, fixtures and services.

``postgres``: a database of its own (``portal_bench``, dropped and recreated) on the local
PostgreSQL, Redis db 10 (flushed), a unique queue name. ``sqlite``: the embedded default
(SQLite file + Celery filesystem transport) in a private var dir. Both run with DEBUG off
and secrets generated for the run, like a production deployment.
"""

import os
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.paths import PLAYBOOKS, ROOT
from bench.procs import Service, free_port

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
# Another database (with BENCH_REDIS_URL on another db) lets a second bench run beside a
# long one, e.g. the fleet's fill; the two share the CPU, and neither resets the other's.
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "portal_bench")
if not PG_DATABASE.isidentifier():  # it goes into DROP/CREATE DATABASE as it is
    raise SystemExit(f"BENCH_PG_DATABASE: not a plain identifier: {PG_DATABASE!r}")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
HEAVY_HOSTS = 20
BIN = Path(sys.executable).parent

# Portal settings the bench decides; an inherited value would change what is measured.
_INHERITED_OUT = (
    "DATABASE_",
    "CELERY_",
    "JOB_",
    "WORKER_",
    "WEB_",
    "PORTAL_",
    "PLAYBOOKS_DIR",
    "ROLES_DIR",
    "STATIC_ROOT",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "DEBUG",
    "LOG_",
    "API_PAGE_SIZE",
    "DJANGO_SETTINGS_MODULE",
)


def stack_env(kind: str, work: Path) -> dict:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_OUT)}
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PORTAL_VAR_DIR": str(work / "var"),
            "STATIC_ROOT": str(work / "static"),
            "PLAYBOOKS_DIR": str(PLAYBOOKS),
            "JOBS_WORK_DIR": str(work / "jobs"),
            "CELERY_DEFAULT_QUEUE": queue,
            "JOB_FORKS": str(HEAVY_HOSTS),
            "JOB_TIMEOUT": "300",
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            "BENCH_STACK": kind,
            "BENCH_WORK": str(work),
            # /metrics answers only with a token when DEBUG is off (the growth figures).
            "METRICS_TOKEN": secrets.token_urlsafe(24),
        }
    )
    if kind == "postgres":
        env["DATABASE_URL"] = f"{PG_SERVER}/{PG_DATABASE}"
        env["CELERY_BROKER_URL"] = REDIS_URL
    elif kind == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{work / 'var' / 'portal.sqlite3'}"
        env["CELERY_BROKER_URL"] = "filesystem://"
    else:
        raise ValueError(kind)
    return env


def reset_backends(env: dict) -> None:
    """Before Django starts: a fresh database and an empty broker db."""
    Path(env["PORTAL_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    if env["BENCH_STACK"] == "postgres":
        import psycopg
        import redis

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        redis.Redis.from_url(REDIS_URL).flushdb()


@dataclass
class Fixtures:
    token: str
    heavy_nodes: list[str]
    dispatch_node: str
    parked_node: str
    default_queue: str
    dispatch_queue: str
    parked_queue: str
    extra: dict = field(default_factory=dict)


def create_fixtures() -> Fixtures:
    """An operator with an API token, 20 local nodes on the default queue, one local node on
    the dispatch worker's queue, one node whose queue no worker consumes (launch rate)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from portal.core.tenancy import OPERATORS_GROUP
    from portal.nodes.choices import Connection, NodePurpose
    from portal.nodes.models import Node

    user = get_user_model().objects.create_user("bench-operator", password=None)
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    token = Token.objects.create(user=user).key
    default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    dispatch_queue, parked_queue = f"{default_queue}-dispatch", f"{default_queue}-parked"

    def node(name, queue=""):
        Node.objects.create(
            name=name,
            address="127.0.0.1",
            connection=Connection.LOCAL,
            purpose=NodePurpose.WORKSPACE_HOST,
            queue=queue,
        )
        return name

    heavy = [node(f"bench-{i:02d}") for i in range(1, HEAVY_HOSTS + 1)]
    return Fixtures(
        token,
        heavy,
        node("bench-dispatch", dispatch_queue),
        node("bench-parked", parked_queue),
        default_queue,
        dispatch_queue,
        parked_queue,
    )


GUNICORN_CONF = ROOT / "portal" / "deploy" / "gunicorn.conf.py"


def start_web(
    env: dict,
    log_dir: Path,
    settings: str | None = None,
    app: str = "portal.wsgi",
    name: str = "web",
) -> tuple[Service, int]:
    """gunicorn with the production configuration file, on a free loopback port.
    ``settings``: another settings module (bench.settings adds the bench-only URLs);
    ``app``: another WSGI module (bench.wsgi adds the floor to the heartbeat's fast path);
    ``name``: its log file's (a second web beside the bench's needs its own)."""
    port = free_port()
    if settings:
        env = {**env, "DJANGO_SETTINGS_MODULE": settings}
    web = Service(
        name,
        [
            str(BIN / "gunicorn"),
            "-c",
            str(GUNICORN_CONF),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env,
        log_dir,
    )
    return web, port


def _gunicorn_conf() -> dict:
    import runpy

    return runpy.run_path(str(GUNICORN_CONF))


def web_settings() -> str:
    """What the configuration file gives on this machine, for results.json."""
    conf = _gunicorn_conf()
    return f"gunicorn {conf['worker_class']} {conf['workers']}x{conf['threads']}"


def web_processes() -> int:
    return _gunicorn_conf()["workers"]


def web_threads() -> int:
    """How many requests the web server serves at once: its processes x their threads."""
    conf = _gunicorn_conf()
    return conf["workers"] * conf["threads"]


def wait_web(web: Service, port: int, timeout: float = 60) -> None:
    import http.client

    def up():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/api/health")
            return conn.getresponse().status in (200, 503)
        finally:
            conn.close()

    web.wait_for(up, timeout, "the web server to answer")


def start_worker(env: dict, log_dir: Path, name: str, queue: str, concurrency: int) -> Service:
    return Service(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env,
        log_dir,
    )


def wait_worker(worker: Service, timeout: float = 60) -> None:
    worker.wait_for(
        lambda: "ready." in worker.log_path.read_text(errors="replace"),
        timeout,
        f"{worker.name} to be ready",
    )
    worker.remember_children()  # the pool processes


def start_beat(env: dict, log_dir: Path, schedule: Path) -> Service:
    """``celery beat`` with the settings' scheduler and schedule (the monitoring figures)."""
    return Service(
        "beat",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel",
            "info",
            "--schedule",
            str(schedule),
        ],
        env,
        log_dir,
    )


def wait_beat(beat: Service, timeout: float = 60) -> None:
    beat.wait_for(
        lambda: "Starting..." in beat.log_path.read_text(errors="replace"),
        timeout,
        "celery beat to start",
    )

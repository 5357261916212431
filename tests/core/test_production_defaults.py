"""Production defaults: `check --deploy` clean with the README's environment, HSTS and the
https redirect from the environment, /metrics closed without a token, gunicorn on loopback."""

import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path
from secrets import token_urlsafe

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def readme_production_env() -> dict:
    """The ``export`` lines of the README's production example, as a mapping."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### PostgreSQL and Redis (production)", 1)[1].split("```sh", 1)[1]
    block = block.split("```", 1)[0]
    env = {}
    for line in block.splitlines():
        if line.startswith("export "):
            env.update(word.split("=", 1) for word in shlex.split(line)[1:])
    return env


def _manage(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def production_env(tmp_path):
    """The README's environment, its secret files written with fresh secrets."""
    env = readme_production_env()
    secrets = {
        "SECRET_KEY_FILE": token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY_FILE": Fernet.generate_key().decode(),
        "METRICS_TOKEN_FILE": "metrics-token-for-tests",
    }
    for name, value in secrets.items():
        assert name in env, f"README's production example no longer sets {name}"
        env[name] = str(tmp_path / name.lower())
        Path(env[name]).write_text(value)
    return {**env, "PORTAL_VAR_DIR": str(tmp_path / "var")}


def test_check_deploy_passes_with_the_readmes_production_environment(production_env):
    assert production_env["DEBUG"] == "false"
    result = _manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


def _settings(env: dict, *names) -> list[str]:
    code = "from django.conf import settings; " + "; ".join(
        f"print(repr(settings.{name}))" for name in names
    )
    result = _manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-len(names) :]


def test_hsts_and_redirect_come_from_the_environment(production_env):
    env = {**production_env, "HSTS_SECONDS": "60", "HSTS_PRELOAD": "yes"}
    assert _settings(
        env,
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_SSL_REDIRECT",
        "METRICS_OPEN",
    ) == ["60", "True", "True", "True", "False"]
    plain = {**production_env, "BEHIND_TLS_PROXY": "false"}
    del plain["HSTS_SECONDS"], plain["HSTS_INCLUDE_SUBDOMAINS"]
    assert _settings(plain, "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT") == ["0", "False"]


def test_a_bad_hsts_value_is_a_one_line_error(production_env):
    result = _manage({**production_env, "HSTS_SECONDS": "a year"}, "check")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "portal: configuration error: HSTS_SECONDS: expected an integer, got 'a year'"
    )


@pytest.mark.django_db
def test_hsts_header_and_https_redirect(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_SSL_REDIRECT = True
    redirect = client.get("/accounts/login/")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://testserver/accounts/login/"
    page = client.get("/accounts/login/", secure=True)
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # Probes and Traefik's provider reach these directly, over plain http.
    assert client.get("/api/health").status_code in (200, 503)
    assert client.get("/metrics").status_code != 301
    assert client.get("/api/traefik/config").status_code != 301


@pytest.mark.django_db
def test_metrics_closed_without_a_token_when_debug_is_off(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_OPEN = False
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"METRICS_TOKEN" in response.content
    settings.METRICS_OPEN = True  # DEBUG on, no token: development
    assert client.get("/metrics").status_code == 200


def test_metrics_open_only_in_development(production_env):
    without_token = {k: v for k, v in production_env.items() if k != "METRICS_TOKEN_FILE"}
    assert _settings(without_token, "METRICS_OPEN") == ["False"]
    development = {"DEBUG": "true", "PORTAL_VAR_DIR": production_env["PORTAL_VAR_DIR"]}
    assert _settings(development, "METRICS_OPEN") == ["True"]


@pytest.mark.parametrize(
    ("environ", "bind"), [({}, "127.0.0.1:8000"), ({"WEB_BIND": "0.0.0.0:9000"}, "0.0.0.0:9000")]
)
def test_gunicorn_binds_loopback_unless_configured(monkeypatch, environ, bind):
    monkeypatch.delenv("WEB_BIND", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    conf = runpy.run_path(str(ROOT / "portal" / "deploy" / "gunicorn.conf.py"))
    assert conf["bind"] == bind


def test_readme_documents_every_new_variable():
    readme = (ROOT / "README.md").read_text()
    for name in (
        "HSTS_SECONDS",
        "HSTS_INCLUDE_SUBDOMAINS",
        "HSTS_PRELOAD",
        "SECURE_SSL_REDIRECT",
        "METRICS_TOKEN",
    ):
        assert re.search(rf"^\| `{name}`|`{name}` /| / `{name}`", readme, re.M), name


@pytest.mark.parametrize(("name", "value"), [("WEB_THREADS", "abc"), ("WEB_CONCURRENCY", "0")])
def test_gunicorn_refuses_a_bad_number_in_one_line(name, value):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; runpy.run_path(sys.argv[1])",
            str(ROOT / "portal" / "deploy" / "gunicorn.conf.py"),
        ],
        env={"PATH": "/usr/bin:/bin", name: value},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gunicorn: configuration error: {name}: "
        + ("expected an integer, got 'abc'" if value == "abc" else "must be >= 1, got 0")
    ]

"""Settings come from the environment only; bad values stop start-up with one clear line."""

import subprocess
import sys
from pathlib import Path

import environ
import pytest
from cryptography.fernet import Fernet

from portal.config import ConfigError, Env, generated_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("yes", True), ("ON", True), ("0", False), ("no", False), ("", False)],
)
def test_bool_words(raw, expected):
    assert Env({"DEBUG": raw}).bool("DEBUG") is expected


def test_bool_rejects_other_words_naming_the_variable():
    with pytest.raises(ConfigError, match=r"^DEBUG: expected true/false.*'maybe'"):
        Env({"DEBUG": "maybe"}).bool("DEBUG")
    # django-environ alone reads any unknown word as false, and "ok"/"y" as true.
    assert environ.Env.parse_value("maybe", bool) is False
    with pytest.raises(ConfigError, match="SECURE_COOKIES: expected true/false"):
        Env({"SECURE_COOKIES": "ok"}).bool("SECURE_COOKIES", default=False)


def test_reads_through_django_environ():
    assert isinstance(Env({}), environ.Env)
    env = Env({"N": "7", "F": "2.5", "L": " a, b ,,c", "J": '{"k": [1, 2]}', "S": "$HOME"})
    assert env.int("N", 1) == 7 and env.float("F", 1.0) == 2.5
    assert env.list("L", default=[]) == ["a", "b", "c"]
    assert env.list("L", str.upper) == ["A", "B", "C"]
    assert env.json("J") == {"k": [1, 2]}
    assert env.str("S") == "$HOME"  # no proxied values: a secret may start with '$'
    assert env.list("UNSET", default=["x"]) == ["x"] and env.int("UNSET", 3) == 3
    with pytest.raises(TypeError, match="by name"):
        env.list("L", ["x"])  # django-environ's second argument is the cast


def test_empty_number_is_the_default_and_bad_ones_name_the_variable():
    env = Env({"N": "", "F": " ", "BAD_F": "1e3", "BAD_J": "{oops"})
    assert env.int("N", 5) == 5 and env.float("F", 0.5) == 0.5
    # django-environ's float cast alone would read '1e3' as 13.0
    with pytest.raises(ConfigError, match=r"^BAD_F: expected a number, got '1e3'"):
        env.float("BAD_F", 1.0)
    with pytest.raises(ConfigError, match=r"^BAD_J: expected JSON, got '\{oops'"):
        env.json("BAD_J")
    with pytest.raises(ConfigError, match=r"^MISSING: required but not set"):
        env.str("MISSING")


def test_int_rejects_text_and_minimum():
    with pytest.raises(ConfigError, match="API_PAGE_SIZE: expected an integer"):
        Env({"API_PAGE_SIZE": "ten"}).int("API_PAGE_SIZE", 50)
    with pytest.raises(ConfigError, match="API_PAGE_SIZE: must be >= 1"):
        Env({"API_PAGE_SIZE": "0"}).int("API_PAGE_SIZE", 50, minimum=1)


def test_secret_from_file(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("s3cret-from-file\n")
    env = Env({"SECRET_KEY_FILE": str(secret_file), "SECRET_KEY": "from-the-variable"})
    assert env.str("SECRET_KEY") == "s3cret-from-file"  # the file wins, stripped
    assert env.is_set("SECRET_KEY")
    (tmp_path / "port").write_text("2525\n")
    assert Env({"EMAIL_TIMEOUT_FILE": str(tmp_path / "port")}).int("EMAIL_TIMEOUT", 10) == 2525


def test_unreadable_secret_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY_FILE: cannot read"):
        Env({"SECRET_KEY_FILE": str(tmp_path / "missing")}).str("SECRET_KEY")


def test_database_urls():
    env = Env({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal"})
    config = env.db_url("DATABASE_URL", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "portal" and config["HOST"] == "127.0.0.1"
    with pytest.raises(ConfigError, match="DATABASE_URL: unsupported database URL scheme"):
        Env({"DATABASE_URL": "nosuchdb://x/y"}).db_url("DATABASE_URL", "sqlite:///x")
    with pytest.raises(ConfigError, match="DATABASE_URL: the URL names no database"):
        Env({"DATABASE_URL": "postgres://host:5432/"}).db_url("DATABASE_URL", "sqlite:///x")


def test_email_urls():
    config = Env({"EMAIL_URL": "smtp+tls://u:p@mail.example:587"}).email_url("EMAIL_URL")
    assert config["EMAIL_HOST"] == "mail.example" and config["EMAIL_PORT"] == 587
    assert config["EMAIL_USE_TLS"] is True
    with pytest.raises(ConfigError, match="EMAIL_URL: not an email URL"):
        Env({"EMAIL_URL": "pigeon://coop"}).email_url("EMAIL_URL")


def test_fernet_keys_validated_and_ordered():
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = Env({"FIELD_ENCRYPTION_KEY": f"{first}, {second}"})
    assert env.fernet_keys("FIELD_ENCRYPTION_KEY", None) == [first, second]
    with pytest.raises(ConfigError, match="key #2 is not a valid Fernet key"):
        Env({"FIELD_ENCRYPTION_KEY": f"{first},short"}).fernet_keys("FIELD_ENCRYPTION_KEY", None)
    with pytest.raises(ConfigError, match="required when DEBUG is off"):
        Env({}).fernet_keys("FIELD_ENCRYPTION_KEY", None)


def test_generated_secret_is_created_once_private(tmp_path):
    path = tmp_path / "var" / "secret_key"
    value = generated_secret(path)
    assert len(value) >= 50
    assert generated_secret(path) == value
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_the_embedded_defaults_var_dir_is_the_portals_users_alone(tmp_path):
    """The SQLite file holds API tokens and password hashes: no one else may read var/."""
    var = tmp_path / "var"
    env = {"SECRET_KEY": "k" * 50, "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    result = _manage({**env, "PORTAL_VAR_DIR": str(var)}, "check")
    assert result.returncode == 0, result.stderr
    assert var.stat().st_mode & 0o777 == 0o700


def _manage(env: dict, *args) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PORTAL_VAR_DIR": env.pop("PORTAL_VAR_DIR")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG: expected true/false"),
        ({}, "SECRET_KEY: required when DEBUG is off"),
        ({"SECRET_KEY": "x" * 40}, "FIELD_ENCRYPTION_KEY: required when DEBUG is off"),
        ({"DEBUG": "1", "DATABASE_URL": "bogus://"}, "DATABASE_URL"),
        ({"DEBUG": "1", "LOG_FORMAT": "xml"}, "LOG_FORMAT: expected one of text, json"),
    ],
)
def test_bad_environment_stops_startup_with_one_line(tmp_path, env, message):
    result = _manage({**env, "PORTAL_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode == 2
    assert result.stderr.startswith(f"portal: configuration error: {message}")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_off_with_real_secrets_starts(tmp_path):
    env = {
        "SECRET_KEY": "k" * 50,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    result = _manage(env, "check")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secret_key").exists()  # no dev secret made in production mode


def test_json_logs(tmp_path):
    code = (
        "import logging; logging.getLogger('portal.test').warning("
        "'job started', extra={'job_id': 42})"
    )
    env = {"DEBUG": "1", "LOG_FORMAT": "json", "PORTAL_VAR_DIR": str(tmp_path)}
    result = _manage(env, "shell", "-c", code)
    import json

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["event"] == "job started" and line["level"] == "WARNING"
    assert line["job_id"] == 42 and "timestamp" in line


def test_text_logs_show_context(tmp_path):
    code = (
        "import logging; logging.getLogger('portal.test').warning("
        "'job started', extra={'job_id': 42})"
    )
    result = _manage({"DEBUG": "1", "PORTAL_VAR_DIR": str(tmp_path)}, "shell", "-c", code)
    assert "WARNING portal.test: job started [job_id=42]" in result.stderr


def test_filesystem_broker_folder_from_the_environment(tmp_path):
    # `make test` gives each run its own folder this way, apart from a `make run` worker's.
    code = (
        "from django.conf import settings; "
        "print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'])"
    )
    env = {
        "DEBUG": "1",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
    }
    result = _manage(dict(env), "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "broker" / "queue")
    assert not (tmp_path / "broker").exists()  # made by the transport, not by settings
    code = (
        "from portal.celery import app\n"
        "with app.connection_for_write() as connection: connection.default_channel"
    )
    result = _manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "broker" / "queue").is_dir() and (tmp_path / "broker" / "control").is_dir()
    assert not (tmp_path / "var" / "broker").exists()


@pytest.mark.parametrize("debug", ["true", "false"])
def test_importing_settings_makes_no_directory(tmp_path, debug):
    """Settings only name folders: the process that needs one makes it (see settings.py)."""
    var = tmp_path / "does" / "not" / "exist"
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": debug,
        "PORTAL_VAR_DIR": str(var),
        "SECRET_KEY": "k" * 50,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    code = (
        "import portal.settings as s; "
        "print(s.VAR_DIR, s.STATIC_ROOT, s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'],"
        " s.JOBS_WORK_DIR, s.DATABASES['default']['NAME'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert str(var) in result.stdout  # the defaults really point there
    assert not (tmp_path / "does").exists()


def test_django_setup_makes_the_embedded_defaults_folders(tmp_path):
    var = tmp_path / "var"
    code = "import django; django.setup()"
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "1",
        "PORTAL_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (var / "static").is_dir()
    assert (var / "secret_key").is_file()  # DEBUG without SECRET_KEY: generated into var/

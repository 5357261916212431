"""Settings come from the environment only; bad values stop start-up with one clear line."""

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from portal.config import ConfigError, Env, generated_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("ON", True),
                                               ("0", False), ("no", False), ("", False)])
def test_bool_words(raw, expected):
    assert Env({"DEBUG": raw}).bool("DEBUG") is expected


def test_bool_rejects_other_words_naming_the_variable():
    with pytest.raises(ConfigError, match=r"^DEBUG: expected true/false.*'maybe'"):
        Env({"DEBUG": "maybe"}).bool("DEBUG")


def test_int_rejects_text_and_minimum():
    with pytest.raises(ConfigError, match="API_PAGE_SIZE: expected an integer"):
        Env({"API_PAGE_SIZE": "ten"}).int("API_PAGE_SIZE", 50)
    with pytest.raises(ConfigError, match="API_PAGE_SIZE: must be >= 1"):
        Env({"API_PAGE_SIZE": "0"}).int("API_PAGE_SIZE", 50, minimum=1)


def test_secret_from_file(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("s3cret-from-file\n")
    env = Env({"SECRET_KEY_FILE": str(secret_file)})
    assert env.str("SECRET_KEY") == "s3cret-from-file"
    assert env.is_set("SECRET_KEY")


def test_unreadable_secret_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY_FILE: cannot read"):
        Env({"SECRET_KEY_FILE": str(tmp_path / "missing")}).str("SECRET_KEY")


def test_database_urls():
    env = Env({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal"})
    config = env.database("DATABASE_URL", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "portal" and config["HOST"] == "127.0.0.1"
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Env({"DATABASE_URL": "nosuchdb://x/y"}).database("DATABASE_URL", "sqlite:///x")


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


def _manage(env: dict, *args) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PORTAL_VAR_DIR": env.pop("PORTAL_VAR_DIR")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(("env", "message"), [
    ({"DEBUG": "maybe"}, "DEBUG: expected true/false"),
    ({}, "SECRET_KEY: required when DEBUG is off"),
    ({"SECRET_KEY": "x" * 40}, "FIELD_ENCRYPTION_KEY: required when DEBUG is off"),
    ({"DEBUG": "1", "DATABASE_URL": "bogus://"}, "DATABASE_URL"),
    ({"DEBUG": "1", "LOG_FORMAT": "xml"}, "LOG_FORMAT: expected one of text, json"),
])
def test_bad_environment_stops_startup_with_one_line(tmp_path, env, message):
    result = _manage({**env, "PORTAL_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode == 2
    assert result.stderr.startswith(f"portal: configuration error: {message}")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_off_with_real_secrets_starts(tmp_path):
    env = {"SECRET_KEY": "k" * 50, "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
           "PORTAL_VAR_DIR": str(tmp_path)}
    result = _manage(env, "check")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secret_key").exists()  # no dev secret made in production mode


def test_json_logs(tmp_path):
    code = ("import logging; logging.getLogger('portal.test').warning("
            "'job started', extra={'job_id': 42})")
    env = {"DEBUG": "1", "LOG_FORMAT": "json", "PORTAL_VAR_DIR": str(tmp_path)}
    result = _manage(env, "shell", "-c", code)
    import json

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["event"] == "job started" and line["level"] == "WARNING"
    assert line["job_id"] == 42 and "timestamp" in line


def test_text_logs_show_context(tmp_path):
    code = ("import logging; logging.getLogger('portal.test').warning("
            "'job started', extra={'job_id': 42})")
    result = _manage({"DEBUG": "1", "PORTAL_VAR_DIR": str(tmp_path)}, "shell", "-c", code)
    assert "WARNING portal.test: job started [job_id=42]" in result.stderr


def test_filesystem_broker_folder_from_the_environment(tmp_path):
    # `make test` gives each run its own folder this way, apart from a `make run` worker's.
    code = ("from django.conf import settings; "
            "print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'])")
    env = {"DEBUG": "1", "PORTAL_VAR_DIR": str(tmp_path / "var"),
           "CELERY_BROKER_DIR": str(tmp_path / "broker")}
    result = _manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "broker" / "queue")
    assert (tmp_path / "broker" / "processed").is_dir()
    assert not (tmp_path / "var" / "broker").exists()

"""Start-up configuration: a bad environment stops manage.py with one line, exit status 2.

Each case runs the real settings module (retail_crm.settings, not the test
settings) in a fresh interpreter with an environment built from scratch for
the variables the settings read, so nothing leaks in from the test run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Every variable retail_crm.settings reads; none of them is inherited by the child.
_SETTINGS_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "TIME_ZONE",
    "LANGUAGE_CODE",
    "MEDIA_ROOT",
    "LOG_LEVEL",
    "DB_CONN_MAX_AGE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "WECHAT_PROVIDER",
    "WECOM_CLIENT",
    "PAYMENT_PROVIDER",
    "ALLOW_FAKE_PROVIDERS_IN_PRODUCTION",
)


def _env(**overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _SETTINGS_VARIABLES}
    env["DJANGO_SETTINGS_MODULE"] = "retail_crm.settings"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(overrides)
    return env


def _manage_check(**overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_ROOT,
        env=_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_one_line_config_error(result: subprocess.CompletedProcess, expected_line: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [expected_line]
    assert result.stderr == expected_line + "\n"


def test_unsupported_database_scheme_stops_start_up_with_one_line():
    result = _manage_check(DATABASE_URL="mysql://u@h/db", DEBUG="1")

    _assert_one_line_config_error(
        result,
        "Configuration error: DATABASE_URL has unsupported scheme 'mysql' "
        "(use one of: sqlite, postgres, postgresql, pgsql, psql; e.g. postgres://user@host:5432/db)",
    )


def test_postgres_url_without_database_name_stops_start_up_with_one_line():
    result = _manage_check(DATABASE_URL="postgres://u@h:5432", DEBUG="1")

    _assert_one_line_config_error(
        result, "Configuration error: DATABASE_URL names no database (expected .../DBNAME at the end)"
    )


def test_missing_secret_key_with_debug_off_stops_start_up_with_one_line():
    result = _manage_check(DEBUG="0", DATABASE_URL="sqlite:////tmp/x.sqlite3")

    _assert_one_line_config_error(
        result,
        "Configuration error: SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)",
    )


def test_debug_defaults_to_off_so_a_missing_secret_key_is_refused():
    result = _manage_check(DATABASE_URL="sqlite:////tmp/x.sqlite3")

    _assert_one_line_config_error(
        result,
        "Configuration error: SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)",
    )


def test_unknown_time_zone_stops_start_up_with_one_line():
    result = _manage_check(DEBUG="1", DATABASE_URL="sqlite:////tmp/x.sqlite3", TIME_ZONE="Mars/Olympus_Mons")

    _assert_one_line_config_error(
        result, "Configuration error: TIME_ZONE='Mars/Olympus_Mons' is not a known IANA time zone"
    )


def test_redis_url_with_another_scheme_stops_start_up_with_one_line():
    result = _manage_check(DEBUG="1", DATABASE_URL="sqlite:////tmp/x.sqlite3", REDIS_URL="http://x")

    _assert_one_line_config_error(
        result, "Configuration error: REDIS_URL must start with redis:// or rediss://, got 'http'"
    )


def test_debug_that_is_not_a_boolean_stops_start_up_with_one_line():
    result = _manage_check(DEBUG="maybe", DATABASE_URL="sqlite:////tmp/x.sqlite3")

    _assert_one_line_config_error(
        result,
        "Configuration error: DEBUG='maybe' is not a boolean (use 1/0, true/false, yes/no, on/off)",
    )


def test_unsupported_language_code_stops_start_up_with_one_line():
    result = _manage_check(DEBUG="1", DATABASE_URL="sqlite:////tmp/x.sqlite3", LANGUAGE_CODE="fr")

    _assert_one_line_config_error(result, "Configuration error: LANGUAGE_CODE='fr' is not one of: zh-hans, en")


def test_debug_on_without_database_url_starts_on_the_sqlite_default():
    result = _manage_check(DEBUG="1")

    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == "System check identified no issues (0 silenced).\n"


def test_debug_off_with_secret_key_starts():
    result = _manage_check(DEBUG="0", SECRET_KEY="a-long-production-secret-key", DATABASE_URL="sqlite:////tmp/x.sqlite3")

    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == "System check identified no issues (0 silenced).\n"


_PRINT_SETTINGS = """
import json
import django
django.setup()
from django.conf import settings
print(json.dumps({
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "result_backend": settings.CELERY_RESULT_BACKEND,
    "cache_backend": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION"),
    "redis_url": settings.REDIS_URL,
}))
"""


def _settings_seen_by_a_fresh_process(**overrides: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS],
        cwd=PROJECT_ROOT,
        env=_env(DEBUG="1", DATABASE_URL="sqlite:////tmp/x.sqlite3", **overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_redis_url_tasks_run_eagerly_and_the_cache_is_local_memory():
    assert _settings_seen_by_a_fresh_process() == {
        "eager": True,
        "broker": "memory://",
        "result_backend": "cache+memory://",
        "cache_backend": "django.core.cache.backends.locmem.LocMemCache",
        "cache_location": None,
        "redis_url": None,
    }


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache.example.com:6380/1"])
def test_with_redis_url_tasks_go_to_the_broker_and_the_cache_is_redis(url):
    # Reading settings never connects, so no Redis server is needed here.
    assert _settings_seen_by_a_fresh_process(REDIS_URL=url) == {
        "eager": False,
        "broker": url,
        "result_backend": url,
        "cache_backend": "django.core.cache.backends.redis.RedisCache",
        "cache_location": url,
        "redis_url": url,
    }

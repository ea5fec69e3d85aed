"""Reading configuration from the environment, failing loudly and in one line.

Every setting that comes from the environment goes through this module so a
misconfigured deployment stops at start-up with a message an operator can act
on, instead of a traceback or, worse, a silently wrong default.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

# Only the databases this project is tested on. MySQL et al. would pass
# django-environ's parser and fail much later, on the first JSON or lock query.
SUPPORTED_DB_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql", "psql")


class ConfigError(Exception):
    """A configuration problem that must stop start-up; its text is one line."""




def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def database_config(name: str, default_url: str) -> dict:
    """Parse DATABASE_URL, refusing schemes the project does not support."""
    url = env_str(name, default_url)
    scheme = urlsplit(url).scheme
    if scheme not in SUPPORTED_DB_SCHEMES:
        raise ConfigError(
            f"{name} has unsupported scheme {scheme!r} "
            f"(use one of: {', '.join(SUPPORTED_DB_SCHEMES)}; e.g. postgres://user@host:5432/db)"
        )
    try:
        config = environ.Env.db_url_config(url)
    except (ImproperlyConfigured, ValueError) as exc:
        raise ConfigError(f"{name} could not be parsed: {exc}") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ConfigError(f"{name} names no database (expected .../DBNAME at the end)")
    return config


_RATE_PERIODS = ("s", "sec", "m", "min", "h", "hour", "d", "day")


def env_rate(name: str, default: str | None) -> str | None:
    """A request rate as DRF writes it (``"60/min"``: a whole number, then s, min, hour or day), or ``off``."""
    raw = env_str(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("off", "none"):
        return None
    count, _sep, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period in _RATE_PERIODS):
        raise ConfigError(f"{name}={raw!r} is not a rate (use e.g. 60/min, 1000/hour, 10/s, 5000/day, or off)")
    return value


def redis_url(name: str) -> str | None:
    url = env_str(name)
    if url is None:
        return None
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss"):
        raise ConfigError(f"{name} must start with redis:// or rediss://, got {scheme!r}")
    return url


def exit_on_config_error(exc: ConfigError) -> None:
    """Print the one-line message and stop; used by manage.py, wsgi, asgi and celery."""
    sys.stderr.write(f"Configuration error: {exc}\n")
    sys.exit(2)

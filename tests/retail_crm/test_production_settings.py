"""Production start-up refuses fake providers; the staging escape hatch is loud in `check --deploy`.

Like tests/retail_crm/test_config.py, each case runs manage.py with the real settings (retail_crm.settings) in a fresh
interpreter and an environment built for it, nothing inherited from the test run.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_SETTINGS_VARIABLES = (
    "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS", "TIME_ZONE", "LANGUAGE_CODE", "MEDIA_ROOT", "LOG_LEVEL", "DB_CONN_MAX_AGE",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "WECHAT_PROVIDER", "WECOM_CLIENT", "PAYMENT_PROVIDER", "SMS_PROVIDER",
    "ALLOW_FAKE_PROVIDERS_IN_PRODUCTION",
)
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "x" * 20 + "-production-like-secret-key-for-the-test-0123456789",
              "ALLOWED_HOSTS": "crm.example.com"}
HATCH = "(configure the real provider; a staging box may set ALLOW_FAKE_PROVIDERS_IN_PRODUCTION=1)"


def _manage(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in _SETTINGS_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="retail_crm.settings", PYTHONDONTWRITEBYTECODE="1", **overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("variable", ["WECHAT_PROVIDER", "WECOM_CLIENT", "PAYMENT_PROVIDER", "SMS_PROVIDER"])
def test_debug_off_with_a_fake_provider_exits_2_with_one_line(variable):
    result = _manage("check", **PRODUCTION, **{variable: "fake"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Configuration error: {variable}=fake is refused with DEBUG off {HATCH}"]


def test_every_fake_provider_is_named_in_the_one_line():
    result = _manage("migrate", "--plan", **PRODUCTION, WECHAT_PROVIDER="fake", WECOM_CLIENT="fake",
                     PAYMENT_PROVIDER="fake")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Configuration error: WECHAT_PROVIDER=fake, WECOM_CLIENT=fake, PAYMENT_PROVIDER=fake are refused with "
        f"DEBUG off {HATCH}"]


@pytest.mark.parametrize("variable, value, choices", [
    ("WECHAT_PROVIDER", "sandbox", "fake, real"),
    ("WECOM_CLIENT", "real", "fake, api"),
    ("PAYMENT_PROVIDER", "alipay", "fake, wechat"),
])
def test_an_unknown_provider_name_exits_2_with_one_line(variable, value, choices):
    result = _manage("check", **PRODUCTION, **{variable: value})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"Configuration error: {variable}={value!r} is not one of: {choices}"]


def test_debug_on_uses_the_fakes_by_default_and_starts():
    result = _manage("shell", "--no-imports", "-c", "from django.conf import settings; "
                     "print(settings.WECHAT_PROVIDER, settings.WECOM_CLIENT, settings.PAYMENT_PROVIDER)",
                     DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["fake fake fake"]


def test_debug_off_defaults_to_the_real_providers_and_check_deploy_passes_at_warning_level():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "retail_crm.W001" not in result.stdout + result.stderr
    shown = _manage("shell", "--no-imports", "-c", "from django.conf import settings; "
                    "print(settings.WECHAT_PROVIDER, settings.WECOM_CLIENT, settings.PAYMENT_PROVIDER)",
                    **PRODUCTION)
    assert shown.stdout.splitlines() == ["real api wechat"]


def test_the_allow_setting_lets_a_staging_box_start_and_check_deploy_warns():
    staging = {**PRODUCTION, "WECHAT_PROVIDER": "fake", "PAYMENT_PROVIDER": "fake",
               "ALLOW_FAKE_PROVIDERS_IN_PRODUCTION": "1"}
    started = _manage("check", **staging)
    assert started.returncode == 0, started.stderr
    assert "retail_crm.W001" not in started.stdout + started.stderr  # a deploy check only

    deploy = _manage("check", "--deploy", **staging)
    assert deploy.returncode == 0, deploy.stderr  # a warning, not an error...
    assert ("?: (retail_crm.W001) ALLOW_FAKE_PROVIDERS_IN_PRODUCTION is on (WECHAT_PROVIDER=fake, "
            "PAYMENT_PROVIDER=fake): anyone can log in as any phone and forge payment notices through a fake "
            "provider.") in deploy.stderr

    strict = _manage("check", "--deploy", "--fail-level", "WARNING", **staging)
    assert strict.returncode == 1  # ...which CI's `--fail-level WARNING` turns into a failure
    assert "retail_crm.W001" in strict.stderr


def test_deploy_check_is_an_error_when_a_settings_module_forces_a_fake_with_debug_off(settings):
    from retail_crm.checks import check_fake_providers

    settings.DEBUG = False
    settings.ALLOW_FAKE_PROVIDERS_IN_PRODUCTION = False
    settings.WECHAT_PROVIDER, settings.WECOM_CLIENT, settings.PAYMENT_PROVIDER = "real", "fake", "wechat"
    settings.SMS_PROVIDER = "tencent"
    messages = check_fake_providers()
    assert [(message.level, message.id) for message in messages] == [(checks.ERROR, "retail_crm.E001")]
    assert messages[0].msg == "WECOM_CLIENT set to 'fake' with DEBUG off."

    settings.WECOM_CLIENT = "api"
    assert check_fake_providers() == []

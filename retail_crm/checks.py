"""Deployment checks of our own, run by ``manage.py check --deploy``.

Start-up already refuses fake providers with DEBUG off (retail_crm.settings); these checks make the
escape hatch for staging boxes visible, and catch a settings module that sets a fake provider directly.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

PROVIDER_SETTINGS = ("WECHAT_PROVIDER", "WECOM_CLIENT", "PAYMENT_PROVIDER", "SMS_PROVIDER", "OFFICIAL_ACCOUNT_PROVIDER")


def fake_providers() -> list[str]:
    """The provider settings that name the fake (no-network, forgeable) implementation."""
    return [name for name in PROVIDER_SETTINGS if getattr(settings, name, None) == "fake"]


@checks.register(checks.Tags.security, deploy=True)
def check_fake_providers(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    allowed = getattr(settings, "ALLOW_FAKE_PROVIDERS_IN_PRODUCTION", False)
    fakes = fake_providers()
    if allowed:
        in_use = ", ".join(f"{name}=fake" for name in fakes) or "no fake provider at the moment"
        return [checks.Warning(
            f"ALLOW_FAKE_PROVIDERS_IN_PRODUCTION is on ({in_use}): anyone can log in as any phone and "
            "forge payment notices through a fake provider.",
            hint="Only for a staging box. Unset it and configure the real WeChat, WeCom and payment providers.",
            id="retail_crm.W001",
        )]
    if fakes and not settings.DEBUG:
        return [checks.Error(
            f"{', '.join(fakes)} set to 'fake' with DEBUG off.",
            hint="Configure the real providers (WECHAT_PROVIDER=real, WECOM_CLIENT=api, PAYMENT_PROVIDER=wechat).",
            id="retail_crm.E001",
        )]
    return []

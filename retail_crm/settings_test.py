"""Settings for the test suite: the real settings plus speed and isolation.

DATABASE_URL and REDIS_URL are honoured, so the same suite runs on the
embedded SQLite default and on PostgreSQL + Redis. Tasks still run eagerly;
the Celery-worker test switches that off for itself.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")

from retail_crm.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_ALWAYS_EAGER = True
SECURE_SSL_REDIRECT = False
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
LANGUAGE_CODE = "zh-hans"
WECHAT_PROVIDER = "fake"
WECOM_CLIENT = "fake"
PAYMENT_PROVIDER = "fake"
SMS_PROVIDER = "fake"
MARKETING_CHANNELS = {"sms": "fake", "subscribe": "fake", "official_account": "fake", "wecom": "fake",
                      "guide_task": "guides"}
# django-axes stays on in the tests (every login page and the token endpoint are guarded as in production);
# only the test client's login(), which passes no request, skips it (see tests/axes_backend.py).
AUTHENTICATION_BACKENDS = [
    "tests.axes_backend.AxesBackendAllowingTestClientLogin",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_RESET_BY_EMAIL = True
TRUSTED_PROXY_COUNT = 0

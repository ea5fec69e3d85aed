"""Django settings, read from the environment (12-factor).

DATABASE_URL   default: SQLite file db.sqlite3 in the project folder
REDIS_URL      unset: Celery runs tasks eagerly in-process, cache is local memory;
               set: real broker, result backend and cache
SECRET_KEY     required when DEBUG is off
DEBUG          default off
ALLOWED_HOSTS  comma separated, default localhost,127.0.0.1
TIME_ZONE      default Asia/Shanghai
LANGUAGE_CODE  default zh-hans (English available)
"""

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from retail_crm.env import (
    ConfigError,
    database_config,
    env_bool,
    env_int,
    env_list,
    env_str,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "retail_crm",
    "members",
    "guides",
    "mall",
    "livestream",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "retail_crm.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "retail_crm.wsgi.application"

DATABASES = {"default": database_config("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, seed, jobs) share the file: wait rather than fail on a lock.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Internationalisation: Chinese first, English available.
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
if LANGUAGE_CODE not in {code for code, _name in LANGUAGES}:
    raise ConfigError(f"LANGUAGE_CODE={LANGUAGE_CODE!r} is not one of: zh-hans, en")
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
try:
    import zoneinfo

    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ConfigError(f"TIME_ZONE={TIME_ZONE!r} is not a known IANA time zone") from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))

# Redis: broker, result backend and cache when set; eager tasks and local memory otherwise.
REDIS_URL = redis_url("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Slow set-based analytics get their own queue so they never delay order-path tasks.
CELERY_TASK_ROUTES = {
    "analytics.*": {"queue": "analytics"},
    "members.tasks.activity_*": {"queue": "analytics"},
    "members.tasks.events_purge": {"queue": "analytics"},
    "members.tasks.tags_recompute_brand": {"queue": "analytics"},
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 24 * 3600
from retail_crm.schedule import BEAT_SCHEDULE  # noqa: E402

CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated API calls then get 401 with a WWW-Authenticate challenge.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "retail_crm.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "retail_crm.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

from retail_crm.api.schema import TAGS  # noqa: E402  (plain data: the API docs' groups)

SPECTACULAR_SETTINGS = {
    "TITLE": "Retail CRM API",
    "DESCRIPTION": "Private-domain operations for multi-brand retail groups: "
    "mini-program (member) API and scoped staff API. Money is a decimal string in CNY.\n\n"
    "Operations are grouped by area (auth, mini-program, members, mall, guides, livestream, analytics, org). "
    "Errors have one shape, `{\"error\": {\"code\", \"message\", \"fields\"}}`, with a stable `code` "
    "to branch on.\n\n"
    "## Logging in during development\n\n"
    "With `DEBUG` on, WeChat is the fake provider (`WECHAT_PROVIDER=fake`, never the network):\n\n"
    "* **Members**: `POST /api/v1/mp/auth/login/` with any `code` (e.g. `{\"code\": \"alice\"}`) logs a "
    "member in; the same code is the same person every time, a new code a new member. Codes starting with "
    "`bad` are refused, as WeChat refuses expired codes. Send the token back as `Authorization: Member <token>`.\n"
    "* **Phone**: `POST /api/v1/mp/me/phone/` with `{\"phone_code\": \"phone:13912345678\"}` binds that "
    "mainland number (and joins the member with a store membership of that phone, if any).\n"
    "* **Staff**: `POST /api/v1/auth/token/` with a username and password (the demo's logins, password "
    "`demo-pass-2026`: hq, brand_wom, region_wom_east, WOM-E001-G01, WOM-E001-G02) returns a key; send "
    "`Authorization: Token <key>`. A logged-in admin session works too.\n\n"
    "In production (`DEBUG` off) the real WeChat API is used and these conventions do not apply.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets are served from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set, so components stay stable as endpoints are added.
    "ENUM_NAME_OVERRIDES": {
        "CouponKindEnum": "mall.models.CouponTemplate.Kind",
        "CouponStatusEnum": "mall.models.CouponStatus",
        "OrderStatusEnum": "mall.models.OrderStatus",
        "ChannelEnum": "mall.models.Channel",
        "RefundKindEnum": "mall.models.Refund.Kind",
        "RefundStatusEnum": "mall.models.Refund.Status",
        "SalesCreditKindEnum": "analytics.models.SalesCredit.Kind",
        "SegmentEnum": "analytics.models.Segment",
        "LifecycleStageEnum": "analytics.models.LifecycleStage",
        "CareItemKindEnum": "analytics.models.CareItem.Kind",
        "EventKindEnum": "members.models.EventKind",
        "JoinChannelEnum": "members.models.JoinChannel",
        "TagSourceEnum": "members.models.TagSource",
        "CommissionEntryKindEnum": "guides.models.CommissionEntry.Kind",
        "WithdrawalStatusEnum": "guides.models.WithdrawalRequest.Status",
        "LivePhaseEnum": "livestream.models.LivePhase",
        "CoachingAspectEnum": "livestream.models.CoachingNote.Aspect",
        "LiveMeasureEnum": "livestream.phases.MEASURE_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "retail_crm.api.schema.add_error_responses",
        "retail_crm.api.schema.tag_operations",
    ],
    # The docs' groups and their descriptions (retail_crm.api.schema.tag_operations puts each operation in one).
    "TAGS": TAGS,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Production hardening, on whenever DEBUG is off (behind a TLS-terminating proxy).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Business configuration.
MONEY_CURRENCY = "CNY"

# WeChat mini-program login (code → openid) and phone numbers. Development uses a deterministic fake;
# without DEBUG the real client is used and refuses to start a login without an app id and secret.
WECHAT_PROVIDER = env_str("WECHAT_PROVIDER", "fake" if DEBUG else "real")
WECHAT_APPID = env_str("WECHAT_APPID", "")
WECHAT_SECRET = env_str("WECHAT_SECRET", "")
WECHAT_TIMEOUT = env_int("WECHAT_TIMEOUT", 5)
WECHAT_GROUP = env_str("WECHAT_GROUP", "")  # code of the group whose mini-program this is
# The mini-program's landing URL (a WeChat URL link / H5 fallback). Guide QR codes and share links open it with
# ?token=<guide token or share code> (and &page=product|material|live|task|mall&id=<pk> for shares).
MINIPROGRAM_JOIN_URL = env_str("MINIPROGRAM_JOIN_URL", "https://mall.example.com/mp/join")

# WeCom (企业微信) customer contact: the callback and the API. A guide's WeCom userid is their Guide.code.
WECOM_CORP_ID = env_str("WECOM_CORP_ID", "")
WECOM_CORP_SECRET = env_str("WECOM_CORP_SECRET", "")  # the customer-contact (客户联系) secret
WECOM_CALLBACK_TOKEN = env_str("WECOM_CALLBACK_TOKEN", "")
WECOM_ENCODING_AES_KEY = env_str("WECOM_ENCODING_AES_KEY", "")
WECOM_CLIENT = env_str("WECOM_CLIENT", "fake" if DEBUG else "api")  # "fake": no network (development)
WECOM_TIMEOUT_SECONDS = env_int("WECOM_TIMEOUT_SECONDS", 5)

# Payments: "fake" (deterministic, no network; the default with DEBUG) or "wechat" (WeChat Pay API v3).
PAYMENT_PROVIDER = env_str("PAYMENT_PROVIDER", "fake" if DEBUG else "wechat")
WECHATPAY_MCHID = env_str("WECHATPAY_MCHID", "")
WECHATPAY_APPID = env_str("WECHATPAY_APPID", "")  # falls back to WECHAT_APPID
WECHATPAY_SERIAL_NO = env_str("WECHATPAY_SERIAL_NO", "")  # merchant certificate serial
WECHATPAY_PRIVATE_KEY_FILE = env_str("WECHATPAY_PRIVATE_KEY_FILE", "")  # PEM
WECHATPAY_PLATFORM_PUBLIC_KEY_FILE = env_str("WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", "")  # PEM
WECHATPAY_PLATFORM_SERIAL = env_str("WECHATPAY_PLATFORM_SERIAL", "")
WECHATPAY_APIV3_KEY = env_str("WECHATPAY_APIV3_KEY", "")  # 32 bytes
WECHATPAY_NOTIFY_URL = env_str("WECHATPAY_NOTIFY_URL", "")  # https://…/api/v1/pay/notify/wechat/
WECHATPAY_TIMEOUT = env_int("WECHATPAY_TIMEOUT", 5)

"""Django settings, read from the environment (12-factor).

DATABASE_URL   default: SQLite file db.sqlite3 in the project folder
REDIS_URL      unset: Celery runs tasks eagerly in-process, cache is local memory;
               set: real broker, result backend and cache
SECRET_KEY     required when DEBUG is off
DEBUG          default off
ALLOWED_HOSTS  comma separated, default localhost,127.0.0.1
TIME_ZONE      default Asia/Shanghai
LANGUAGE_CODE  default zh-hans (English available)
Logins:        AXES_FAILURE_LIMIT, AXES_COOLOFF_MINUTES, TRUSTED_PROXY_COUNT, STAFF_TOKEN_TTL_HOURS,
               EMAIL_HOST (+ EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, DEFAULT_FROM_EMAIL)
NUM_PROXIES    trusted proxies appending to X-Forwarded-For, default 0 (header ignored)
THROTTLE_*     rate limits, e.g. THROTTLE_EVENTS_BURST=60/min (README "Rate limits")
"""

import datetime as dt
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from retail_crm.env import (
    ConfigError,
    database_config,
    env_bool,
    env_int,
    env_list,
    env_rate,
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
    "csp",
    "retail_crm.apps.AxesConfig",
    "retail_crm",
    "members",
    "guides",
    "mall",
    "livestream",
    "segments",
    "attribution",
    "marketing",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # With DEBUG on only: the site's own 404 page instead of Django's technical one (in the viewer's language).
    "retail_crm.views.DebugNotFoundMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "retail_crm.passwords.PasswordChangeRequiredMiddleware",
    # Last, so it sees the flag the login attempt left on the request and answers with the lock-out page.
    "axes.middleware.AxesMiddleware",
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

CSRF_FAILURE_VIEW = "retail_crm.views.csrf_failure"
# Every password check goes through django-axes first: a locked-out username or IP is refused before the
# password is even looked at (retail_crm/login_guard.py has the rules and the lock-out answers).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Per user AND per IP: five wrong passwords for one username (from any IP), or five from one IP (for any
# usernames), lock that username / IP for the cool-off. A store whose guides share one NAT address shares
# the IP counter; a manager's password reset or an admin unlock clears it early.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = dt.timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Tries made while locked out do not push the end of the lock-out further: it ends a fixed time after it began.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A right password does not wipe the counters: an attacker's own valid login must not clear their IP's count.
AXES_RESET_ON_SUCCESS = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False  # no start-up banner in every manage.py command; lock-outs are still logged
AXES_LOCKOUT_CALLABLE = "retail_crm.login_guard.lockout_response"
AXES_CLIENT_IP_CALLABLE = "retail_crm.login_guard.client_ip"
# Behind N reverse proxies that each append to X-Forwarded-For, the client is the N-th address from the right;
# 0 (the default) trusts no header and uses the socket address. Never set it higher than the real proxy count.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Staff API tokens (DRF authtoken) expire this long after they were issued; obtaining one issues a fresh key.
STAFF_TOKEN_TTL_HOURS = env_int("STAFF_TOKEN_TTL_HOURS", 12)

# E-mail, for password reset links. Without EMAIL_HOST there is no e-mail reset in production (guides get a
# new password from their manager); with DEBUG the mails are printed to the console.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "webmaster@localhost")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
PASSWORD_RESET_BY_EMAIL = bool(EMAIL_HOST) or DEBUG
PASSWORD_RESET_TIMEOUT = 2 * 3600

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
    "members.tasks.behaviour_tags_recompute_brand": {"queue": "analytics"},
}
CELERY_TIMEZONE = TIME_ZONE
# Messages to members: the adapter per channel ("fake" records instead of sending) and each provider's rate.
# SMS: "fake" (the default with DEBUG) or "tencent" (Tencent Cloud SMS). Subscribe messages have no real
# adapter yet: without DEBUG that channel is unavailable and the gateway falls back to the next channel.
# Official-account template messages: "fake" (the default with DEBUG) or "wechat". WeCom group sends use the
# WeCom app of WECOM_CLIENT (below). Guide tasks (important members to their guide) are internal: "guides".
SMS_PROVIDER = env_str("SMS_PROVIDER", "fake" if DEBUG else "tencent")
OFFICIAL_ACCOUNT_PROVIDER = env_str("OFFICIAL_ACCOUNT_PROVIDER", "fake" if DEBUG else "wechat")
OFFICIAL_ACCOUNT_APPID = env_str("OFFICIAL_ACCOUNT_APPID", "")
OFFICIAL_ACCOUNT_SECRET = env_str("OFFICIAL_ACCOUNT_SECRET", "")
# The token (令牌) of the official account's server configuration, which signs WeChat's follow and unfollow pushes
# to /api/v1/marketing/official-account/callback/ (plaintext mode); unset, the callback answers 503. The follower
# look-up (user/info) it needs is the fake or the real one as OFFICIAL_ACCOUNT_PROVIDER says.
OFFICIAL_ACCOUNT_CALLBACK_TOKEN = env_str("OFFICIAL_ACCOUNT_CALLBACK_TOKEN", "")
MARKETING_CHANNELS = {"sms": SMS_PROVIDER, "subscribe": "fake" if DEBUG else None,
                      "official_account": OFFICIAL_ACCOUNT_PROVIDER, "guide_task": "guides"}
# Hours a guide has to send a WeCom group send; after that its unsent members are failed and the send cancelled.
MARKETING_WECOM_CONFIRM_HOURS = env_int("MARKETING_WECOM_CONFIRM_HOURS", 72)
TENCENT_SMS_SECRET_ID = env_str("TENCENT_SMS_SECRET_ID", "")
TENCENT_SMS_SECRET_KEY = env_str("TENCENT_SMS_SECRET_KEY", "")
TENCENT_SMS_SDK_APP_ID = env_str("TENCENT_SMS_SDK_APP_ID", "")
TENCENT_SMS_SIGN_NAME = env_str("TENCENT_SMS_SIGN_NAME", "")
TENCENT_SMS_CALLBACK_TOKEN = env_str("TENCENT_SMS_CALLBACK_TOKEN", "")
# Messages a second; for WeCom, group sends a second (each carries one guide's members for a step).
MARKETING_SEND_RATES = {"sms": 100, "subscribe": 100, "official_account": 50, "wecom": 10, "guide_task": 50}
# Campaign tracking links: a message carries MARKETING_LINK_BASE_URL + a short code (served at /t/<code>, which
# records the click and redirects); a campaign's link may only point to MARKETING_LINK_HOSTS (https).
MARKETING_LINK_BASE_URL = env_str("MARKETING_LINK_BASE_URL", "https://crm.example.com/t/")
MARKETING_LINK_HOSTS = env_list("MARKETING_LINK_HOSTS", ["mall.example.com"])
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Crashes. A task is acknowledged only after it ran (acks_late). When one pool process dies mid-task
# (reject_on_worker_lost) the message goes back to the queue at once. When the whole worker dies (SIGKILL,
# OOM, the host lost), its unacknowledged message sits in Redis until the visibility timeout passes; any
# worker's next restore sweep (every 10 s) then queues it again. The timeout must exceed the longest task,
# or a slow task would be handed to a second worker while it still runs: the hard time limit below keeps
# every task inside it (the longest measured, attributing 1,000,000 orders, takes about 90 s).
TASK_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_TASK_TIME_LIMIT = max(TASK_VISIBILITY_TIMEOUT - 60, 1)
CELERY_TASK_SOFT_TIME_LIMIT = max(TASK_VISIBILITY_TIMEOUT - 120, 1)
CELERY_RESULT_EXPIRES = 24 * 3600
from retail_crm.schedule import BEAT_SCHEDULE  # noqa: E402

CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated API calls then get 401 with a WWW-Authenticate challenge.
        "retail_crm.staff_tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "retail_crm.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "retail_crm.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Trusted proxies in front of the app that append to X-Forwarded-For (1 behind one nginx / load
    # balancer). 0: the header is ignored and the socket address is the client, so nobody can pick their
    # own IP for the rate limits by sending the header.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}

# Rate limits (retail_crm/throttling.py; README "Rate limits"): scope → rate, from THROTTLE_<SCOPE>.
# A real mini-program sends a batch every few seconds at most; a script sends hundreds a second.
# THROTTLE_ENABLED=0 lifts them all: only for the load benchmarks, whose few clients send what thousands would.
THROTTLE_ENABLED = env_bool("THROTTLE_ENABLED", True)
THROTTLE_RATES = {
    scope: env_rate(f"THROTTLE_{scope.upper()}", default) if THROTTLE_ENABLED else None
    for scope, default in {
        "events_burst": "60/min",  # behaviour-event batches per client (member, or IP + visitor id)
        "events_sustained": "1200/hour",
        "events_ip": "600/min",  # anonymous behaviour-event batches per IP (a shared NAT's many phones)
        "live_events_burst": "120/min",  # livestream viewer-event batches per client (member, or IP + viewer id)
        "live_events_sustained": "3600/hour",
        "live_events_ip": "1200/min",  # anonymous viewer-event batches per IP
        "mp_login": "30/min",  # mini-program logins (wx.login code exchange) per IP
        "mp_phone_bind": "10/hour",  # phone bindings per member
        "auth_token": "10/min",  # staff API token requests per IP
        "export": "30/hour",  # dashboard exports (CSV/XLSX) and audience exports per staff user
        "audience_preview": "60/min",  # live audience size previews per staff user (one COUNT each)
    }.items()
}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = THROTTLE_RATES

# Share PV: a visitor's views of one share within one clock window of this many minutes count once
# (members/share_views.py). A divisor of a day, so windows start at midnight.
SHARE_VIEW_WINDOW_MINUTES = env_int("SHARE_VIEW_WINDOW_MINUTES", 30)
if not (0 < SHARE_VIEW_WINDOW_MINUTES <= 1440 and 1440 % SHARE_VIEW_WINDOW_MINUTES == 0):
    raise ConfigError(f"SHARE_VIEW_WINDOW_MINUTES={SHARE_VIEW_WINDOW_MINUTES} must divide a day "
                      "(1440 minutes), e.g. 10, 15, 30, 60")
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
        "SalesCreditKindEnum": "attribution.models.SalesCredit.Kind",
        "SegmentEnum": "retail_crm.vocabulary.Segment",
        "LifecycleStageEnum": "retail_crm.vocabulary.LifecycleStage",
        "CareItemKindEnum": "segments.models.CareItem.Kind",
        "EventKindEnum": "members.models.EventKind",
        "JoinChannelEnum": "members.models.JoinChannel",
        "TagSourceEnum": "members.models.TagSource",
        "CommissionEntryKindEnum": "guides.models.CommissionEntry.Kind",
        "WithdrawalStatusEnum": "guides.models.WithdrawalRequest.Status",
        "LivePhaseEnum": "livestream.models.LivePhase",
        "CoachingAspectEnum": "livestream.models.CoachingNote.Aspect",
        "LiveMeasureEnum": "livestream.phases.MEASURE_CHOICES",
        "CampaignStatusEnum": "marketing.models.Campaign.Status",
        "CampaignScheduleEnum": "marketing.models.Campaign.Schedule",
        # The message channels (a delivery's channel, a campaign's channels): one name, not one per field.
        "MessageChannelEnum": "marketing.models.Channel",
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

# Content-Security-Policy (django-csp), on every response, DEBUG or not: scripts, styles, fonts and images
# come from our own origin only (ECharts, Swagger UI and the admin are served from our static files). The few
# inline <script>/<style> blocks carry the per-request nonce ({{ request.csp_nonce }}); no inline event
# handlers (static/js/site.js wires them). Style *attributes* stay allowed (style-src-attr): ECharts' tooltips,
# Swagger UI and the admin set them, and an attribute can load nothing (url() is still bound by img-src).
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-elem": [SELF, NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Permissions-Policy (django-permissions-policy): no powerful feature for anyone, except the camera for our own
# pages (the workbench may scan codes with it).
PERMISSIONS_POLICY = {
    "camera": ["self"],
    "microphone": [],
    "geolocation": [],
    "payment": [],
    "usb": [],
    "serial": [],
    "bluetooth": [],
    "hid": [],
    "midi": [],
    "accelerometer": [],
    "gyroscope": [],
    "magnetometer": [],
    "display-capture": [],
    "fullscreen": ["self"],
}

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
MARKETING_CHANNELS["wecom"] = WECOM_CLIENT  # group sends through the guides' WeCom (marketing.channels)
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

# Fake providers let anyone log in as any phone and accept payment notices signed with a key in the source:
# never in production. A staging box without real credentials may opt in, loudly; `check --deploy` then warns
# (retail_crm.W001).
_PROVIDER_CHOICES = {
    "WECHAT_PROVIDER": (WECHAT_PROVIDER, ("fake", "real")),
    "WECOM_CLIENT": (WECOM_CLIENT, ("fake", "api")),
    "PAYMENT_PROVIDER": (PAYMENT_PROVIDER, ("fake", "wechat")),
    "SMS_PROVIDER": (SMS_PROVIDER, ("fake", "tencent")),
    "OFFICIAL_ACCOUNT_PROVIDER": (OFFICIAL_ACCOUNT_PROVIDER, ("fake", "wechat")),
}
for _name, (_value, _choices) in _PROVIDER_CHOICES.items():
    if _value not in _choices:
        raise ConfigError(f"{_name}={_value!r} is not one of: {', '.join(_choices)}")
ALLOW_FAKE_PROVIDERS_IN_PRODUCTION = env_bool("ALLOW_FAKE_PROVIDERS_IN_PRODUCTION", False)
_fakes = [name for name, (value, _choices) in _PROVIDER_CHOICES.items() if value == "fake"]
if _fakes and not DEBUG and not ALLOW_FAKE_PROVIDERS_IN_PRODUCTION:
    raise ConfigError(
        f"{', '.join(f'{name}=fake' for name in _fakes)} {'is' if len(_fakes) == 1 else 'are'} refused with DEBUG off "
        "(configure the real provider; a staging box may set ALLOW_FAKE_PROVIDERS_IN_PRODUCTION=1)"
    )

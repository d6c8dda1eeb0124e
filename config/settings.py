"""Settings for the Busan digital-voucher bank.

Every value that differs between a laptop, CI and production is read from the
environment here, and only here (12-factor). Nothing else reads os.environ.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment, or set DEBUG=1 for a development default."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma on the back-office pages
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "bank.apps.LoginLockoutConfig",  # django-axes: see the "Login lockout" block below
    "bank",
    "voucher",
    "tour",
    "safety",
    "coldchain",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "bank.http.middleware.ApiEdgeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, so that it sees the view's answer to a locked login (bank.lockout).
    "axes.middleware.AxesMiddleware",
]
# bank.http.middleware.ApiEdgeMiddleware: /api/ answers in its error shape in every mode,
# 414 for a query string over API_MAX_QUERY_STRING characters (no filter needs more), and
# JSON instead of DEBUG's HTML 404.
API_MAX_QUERY_STRING = int(os.environ.get("API_MAX_QUERY_STRING", "2048"))

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# Database: PostgreSQL in CI and production, a SQLite file for a first look.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers queue for the database lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    # A covering index's INCLUDE columns are a PostgreSQL speed-up; SQLite keeps the key columns.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the Celery broker and the cache. Without it tasks run eagerly in-process.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again; every task is idempotent
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Asia/Seoul"
CELERY_BEAT_SCHEDULE = {
    "seal-blocks": {"task": "bank.tasks.seal_blocks", "schedule": 30.0},
    "expire-holds": {"task": "bank.tasks.expire_holds", "schedule": 60.0},
    "expire-wallet-holds": {"task": "voucher.tasks.expire_wallet_holds", "schedule": 60.0},
    "forget-old-nonces": {"task": "bank.tasks.forget_old_nonces", "schedule": 600.0},
    "forget-old-payload-nonces": {"task": "bank.tasks.forget_old_payload_nonces", "schedule": 600.0},
    # Lots expire at Seoul midnight; an hourly sweep is idempotent, so a missed run is caught up.
    "expire-voucher-lots": {"task": "voucher.tasks.expire_lots", "schedule": 3600.0},
    # Yesterday's settlement at 00:30 Seoul (CELERY_TIMEZONE); a re-run resumes or finds it done.
    "settle-yesterday": {"task": "voucher.tasks.settle_yesterday", "schedule": crontab(minute=30, hour=0)},
    # After 02:00 Seoul, when the day's payments are in; flags are unique per day, so a rerun adds nothing.
    "flag-fraud-patterns": {"task": "voucher.tasks.flag_fraud_patterns", "schedule": crontab(hour=2, minute=30)},
}

# A verification run with no verdict this long after it started lost its worker; starting a new
# run closes it as failed. verify_ledger checks about 200,000 entries a second.
VERIFICATION_RUN_TIMEOUT_MINUTES = int(os.environ.get("VERIFICATION_RUN_TIMEOUT_MINUTES", "60"))

# Thresholds of the nightly fraud rules (voucher.services.fraud), tunable without a release.
FRAUD_RULES = {
    "round_sum_unit": int(os.environ.get("FRAUD_ROUND_SUM_UNIT", "10000")),  # won
    "round_sum_min_count": int(os.environ.get("FRAUD_ROUND_SUM_MIN_COUNT", "3")),
    "round_sum_days": int(os.environ.get("FRAUD_ROUND_SUM_DAYS", "7")),
    "quick_refund_hours": int(os.environ.get("FRAUD_QUICK_REFUND_HOURS", "24")),
    "quick_refund_min_count": int(os.environ.get("FRAUD_QUICK_REFUND_MIN_COUNT", "3")),
    "quick_refund_days": int(os.environ.get("FRAUD_QUICK_REFUND_DAYS", "7")),
    "takings_days": int(os.environ.get("FRAUD_TAKINGS_DAYS", "30")),
    "takings_revenue_multiple": int(os.environ.get("FRAUD_TAKINGS_REVENUE_MULTIPLE", "2")),
    "takings_min": int(os.environ.get("FRAUD_TAKINGS_MIN", "1000000")),  # won in the window
    "shared_device_min_wallets": int(os.environ.get("FRAUD_SHARED_DEVICE_MIN_WALLETS", "3")),
}

# Merchant settlement fees by the merchant's annual revenue, in basis points of the
# BKRW settled (30 = 0.3%), rounded down to the won. Dated: a change is a new row with
# a later date, and a batch uses the row in force on its period. The default is
# Korea's QR-payment (Zero Pay) schedule: free up to 800 million won a year, 0.3% up
# to 1.2 billion, 0.5% above. A tier is [ceiling in won or None, rate].
VOUCHER_SETTLEMENT_FEE_SCHEDULE = [
    {"effective_from": "2019-01-01", "tiers": [[800_000_000, 0], [1_200_000_000, 30], [None, 50]]},
]
# Instant settlement (the merchant asks, instead of waiting for the nightly batch)
# may cost extra, on top of the tier rate; 0 = free.
VOUCHER_INSTANT_SETTLEMENT_FEE_BP = int(os.environ.get("VOUCHER_INSTANT_SETTLEMENT_FEE_BP", "0"))
# Merchants settled per database transaction in a batch: progress is committed (and
# visible) chunk by chunk, and a crash loses at most one chunk's work, which is re-done.
VOUCHER_SETTLEMENT_CHUNK = int(os.environ.get("VOUCHER_SETTLEMENT_CHUNK", "1000"))
# Chunks settled side by side, each on its own database connection (PostgreSQL, and
# only when settle_day runs outside a caller's transaction); 1 settles one at a time.
VOUCHER_SETTLEMENT_WORKERS = int(os.environ.get("VOUCHER_SETTLEMENT_WORKERS", "2"))
# How long a bulk writer waits for a house account it locks last (bank's
# deferred_balances) before it rolls back and retries. Must stay below PostgreSQL's
# deadlock_timeout (1 s by default), so that in a lock cycle with a payment it is
# always the bulk writer that gives way.
BANK_DEFERRED_LOCK_TIMEOUT_MS = int(os.environ.get("BANK_DEFERRED_LOCK_TIMEOUT_MS", "300"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bank.http.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: amounts are JSON integers, and a form field would turn every one into a string.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "bank.http.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    # Counted in the Django cache, which is Redis when REDIS_URL is set, so every app server shares them.
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("THROTTLE_ANON", "120/min"),
        "user": os.environ.get("THROTTLE_USER", "600/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Busan digital-voucher bank API",
    "DESCRIPTION": "Wallet and ledger API of the BKRW token. Every error body is "
    '{"error": {"code", "message", "details"}}; money-moving POSTs need an Idempotency-Key header.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bank.http.schema.add_error_responses",
    ],
}

# The ledger's consortium. Each validator's BLS12-381 secret key is a file
# <name>.key (hex) in LEDGER_VALIDATOR_KEY_DIR; `manage.py load_demo` generates
# the demo's four. A block needs LEDGER_BLOCK_QUORUM signatures to be attested.
LEDGER_VALIDATOR_KEY_DIR = Path(os.environ.get("LEDGER_VALIDATOR_KEY_DIR", BASE_DIR / "var" / "validator-keys"))
LEDGER_BLOCK_QUORUM = int(os.environ.get("LEDGER_BLOCK_QUORUM", "3"))
LEDGER_MAX_ENTRIES_PER_BLOCK = int(os.environ.get("LEDGER_MAX_ENTRIES_PER_BLOCK", "10000"))

# ---- HTTPS (hardening, issue 13) ----
# Outside development every page is HTTPS only: plain HTTP is redirected, and browsers
# are told (HSTS) never to try HTTP again. TLS ends at the proxy in front of us, which
# must set SECURE_PROXY_SSL_HEADER's header itself (and drop a client's) for Django to
# know a request came over HTTPS. DEBUG (make run, the tests) keeps plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO=https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header.split("=", 1)) if _proxy_header else None
# ---- end of HTTPS ----

# The merchant portal (/portal/): sessions in a cookie the page's scripts cannot
# read, sent only over HTTPS outside development. Its login lockout is the one of
# every login: see the "Login lockout" block below.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))  # a working day at the till
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "portal:login"
# The portal signs merchant-presented payment requests with a key derived from
# this secret and the merchant id (a "device" of the merchant the bank runs).
PORTAL_SIGNING_SECRET = os.environ.get("PORTAL_SIGNING_SECRET", "") or f"portal:{SECRET_KEY}"
PORTAL_PAYMENT_REQUEST_MINUTES = int(os.environ.get("PORTAL_PAYMENT_REQUEST_MINUTES", "10"))

# API tokens (bank.models.ApiToken): stored as a SHA-256 digest, shown once when
# issued by POST /api/v1/auth/token/, and refused with 401 token_expired this many
# hours later (30 days: a phone app logs in again about once a month). The holder
# logs a token out with DELETE /api/v1/auth/token/, a teller from the customer view.
API_TOKEN_TTL_HOURS = int(os.environ.get("API_TOKEN_TTL_HOURS", str(30 * 24)))

# Signed requests: how far a device's clock may be from ours.
SIGNED_REQUEST_WINDOW_SECONDS = int(os.environ.get("SIGNED_REQUEST_WINDOW_SECONDS", "300"))
# A holder with no usable device key enrolls one only with a one-time code a teller
# issues after an identity check (docs/SIGNING.md); it expires after this many hours.
DEVICE_ENROLLMENT_CODE_HOURS = int(os.environ.get("DEVICE_ENROLLMENT_CODE_HOURS", "24"))

# Back-office controls (maker-checker). A staff mint (grant or reward issued by
# hand) above LARGE_MINT_THRESHOLD won needs a second staff member's approval.
LARGE_MINT_THRESHOLD = int(os.environ.get("LARGE_MINT_THRESHOLD", "1000000"))
# Cash at the counter (issue 13): a cash deposit or withdrawal above
# COUNTER_CASH_APPROVAL_THRESHOLD won, or one that takes the teller's counter
# entries of the Seoul day above COUNTER_CASH_TELLER_DAILY_LIMIT won, is filed
# for an approver (maker-checker) and posted once approved.
COUNTER_CASH_APPROVAL_THRESHOLD = int(os.environ.get("COUNTER_CASH_APPROVAL_THRESHOLD", "10000000"))
COUNTER_CASH_TELLER_DAILY_LIMIT = int(os.environ.get("COUNTER_CASH_TELLER_DAILY_LIMIT", "50000000"))
# A minter (wallet_topup, program_issuance, staff_issuance) seen for the first
# time starts with this allowance; later raises go through approval. Operators
# set it to 0 to require an approved allowance before any mint.
MINTER_INITIAL_ALLOWANCE = int(os.environ.get("MINTER_INITIAL_ALLOWANCE", "100000000000"))

# ---- Content-Security-Policy (django-csp): every page, the portal, the admin and the API docs ----
# Scripts and styles only from our own static files: no inline <script>, no on*= handler,
# no <style> or style= in our templates (the Swagger page runs drf-spectacular's split
# view, its init script a separate request). data: images are Swagger UI's CSS icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# ---- end of Content-Security-Policy ----

# ---- Login lockout (django-axes): the portal, the admin and POST /api/v1/auth/token/ ----
# After LOGIN_MAX_FAILURES (AXES_FAILURE_LIMIT) failed logins of one username from one address, that pair is
# refused (the right password too) for LOGIN_LOCKOUT_SECONDS (AXES_COOLOFF_TIME); a successful login clears
# the pair's count. Usernames are counted as Django authenticates them (NFKC), so a
# full-width spelling is the same name. Counted in the database (axes' AccessAttempt,
# shared by every app server); a teller lifts a lockout by deleting its row in the admin.
# Keyed by username and address together, so a stranger guessing at a merchant's login
# from elsewhere cannot lock the merchant out of its own till. The address is REMOTE_ADDR:
# behind a proxy, set AXES_IPWARE_* (with django-ipware) or a proxy that sets it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked pair before any password check
    "bank.lockout.PasswordBackend",  # Django's ModelBackend; a right password clears the pair's count
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(seconds=int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "bank.lockout.normalised_username"
AXES_LOCKOUT_CALLABLE = "bank.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = False  # done by bank.lockout.PasswordBackend, for the token login too
# A lockout lasts its cool-off from the failure that started it; more tries do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Only failures are kept (to count them), not a row per successful login.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False  # bank.admin.lockouts registers the attempts page for tellers (no form data shown)
# ---- end of login lockout ----

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

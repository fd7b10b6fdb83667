"""Anteroom settings, read from the environment (SPEC §1).

Embedded default (no environment): a SQLite file in the project folder, the in-memory channel
layer, one process, a signing key generated once into ``.anteroom-signing-key`` (git-ignored).
Scaled out: ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` (channels_redis).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_rate(name: str, default: str) -> tuple[int, int]:
    """Parse ``"N/SECONDS"`` (e.g. ``3/300``); a malformed value is a start-up error."""
    raw = os.environ.get(name, default)
    try:
        count, _, seconds = raw.partition("/")
        parsed = (int(count), int(seconds))
    except ValueError as exc:
        raise ValueError(f"{name} must look like N/SECONDS, got {raw!r}") from exc
    if parsed[0] < 1 or parsed[1] < 1:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return parsed


# SECURITY

DEBUG = _env_bool("DEBUG", False)

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]
if "*" in ALLOWED_HOSTS:
    # A wildcard silently disables the WebSocket Origin check; refuse to start with it.
    raise ValueError("ALLOWED_HOSTS must list real host names; '*' disables the Origin check")
# Origins (scheme://host[:port], exact) whose pages may open WebSockets. Unset: only the origin
# each handshake was addressed to (its Host, in ALLOWED_HOSTS; https when secure). Sockets from
# a listed origin other than that one get no cookies (tokens only). lobby/runtime/origin.py.
ANTEROOM_ALLOWED_ORIGINS = [
    o.strip() for o in os.environ.get("ANTEROOM_ALLOWED_ORIGINS", "").split(",") if o.strip()
]
if "*" in ANTEROOM_ALLOWED_ORIGINS:
    raise ValueError("ANTEROOM_ALLOWED_ORIGINS lists exact origins; '*' is refused")

_KEY_FILE = BASE_DIR / ".anteroom-signing-key"


def _signing_key() -> str:
    key = os.environ.get("ANTEROOM_SIGNING_KEY")
    if key is not None:
        if len(key.encode()) < 32:
            raise ValueError("ANTEROOM_SIGNING_KEY must be at least 32 bytes")
        return key
    if not _KEY_FILE.exists():
        # Generated once and kept outside git (.gitignore), so tokens survive restarts.
        _KEY_FILE.write_text(secrets.token_urlsafe(48))
        _KEY_FILE.chmod(0o600)
    return _KEY_FILE.read_text().strip()


ANTEROOM_SIGNING_KEY = _signing_key()


def _django_secret_key() -> str:
    """Django's own key (sessions, CSRF, the signed guest cookie). Never derived from the token
    signing key: a backend that holds that key to mint tokens must not be able to forge these.
    Several machines must share ``DJANGO_SECRET_KEY``; one machine keeps a generated file."""
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    path = BASE_DIR / ".anteroom-django-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _django_secret_key()

CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
# Flash messages wait in the session (the database), never in a cookie: the admin's "signing
# secret (shown once)" would otherwise travel in a signed but readable "messages" cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy on every page (Django's built-in middleware): scripts and styles only
# from this origin, no inline script (page config travels in <script type="application/json">),
# sockets to this origin ('self' covers ws/wss of the same host), no framing.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if _env_bool("ANTEROOM_BEHIND_TLS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# APPLICATIONS

INSTALLED_APPS = [
    "daphne",
    "lobby.apps.AnteroomAdminConfig",  # django.contrib.admin with the throttled staff sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "lobby",
    "breakouts",
]

MIDDLEWARE = [
    "lobby.ops.middleware.RequestIdMiddleware",
    # Redis or PostgreSQL down: 503 + Retry-After, never a 500 (docs/deployment.md).
    "lobby.ops.middleware.BackendUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page language: the set_language cookie, else Accept-Language, else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "lobby.branding.context",  # ``brand``: product name, logo, accent
            ],
        },
    },
]

# DATABASE

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'anteroom.sqlite3'}"),
    )
}
# Keep connections (one per ORM thread) instead of opening one per socket action: a new
# PostgreSQL connection cost ~2-4 ms of CPU, a new SQLite one (open, PRAGMAs, functions) ~1 ms,
# more than the action itself (docs/deployment.md).
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("ANTEROOM_DB_CONN_MAX_AGE", "300"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so two
    # transactions never deadlock upgrading a read lock; the timeout waits for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file test database: in-memory SQLite breaks threads and live-server tests.
    # ANTEROOM_TEST_DB lets several test runs share one work tree.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("ANTEROOM_TEST_DB", str(BASE_DIR / "test-anteroom.sqlite3"))
    }
else:
    # A dead database host fails a connect in 3 s (a socket answers UNAVAILABLE, REST 503)
    # instead of hanging the single ORM thread of the process.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    # Health checks drop a kept connection that died in an outage before it is used, so the
    # next action reconnects. Anteroom's backend asks the socket first (no SELECT 1 round trip
    # per socket action): lobby/runtime/postgresql/base.py.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "lobby.runtime.postgresql"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# CHANNEL LAYER

REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYERS: dict[str, Any]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis' layer, its receive() waiting out outages: lobby/runtime/layers.py.
            "BACKEND": "lobby.runtime.layers.RedisChannelLayer",
            "CONFIG": {
                # As dicts, so redis-py gets a pool large enough to wait under bursts and no
                # socket timeout (its 5 s default kills idle consumers, channels_redis #422).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": 1000,
                        "socket_timeout": None,
                        "socket_connect_timeout": 2,
                        "socket_keepalive": True,
                        "health_check_interval": 10,
                        "retry_on_timeout": True,
                    }
                ],
                # The default of 100 silently dropped half of a 200-guest burst. It bounds the
                # backlog of a whole *process* (all its sockets share one Redis key), so size it
                # for the largest burst one process must absorb (admit-all of 1,000 + frames).
                "capacity": 50000,
                "expiry": 60,
                "group_expiry": 86400,
                "prefix": os.environ.get("ANTEROOM_CHANNEL_PREFIX", "anteroom"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' in-memory layer, its expiry sweep amortised: lobby/runtime/memory_layer.py.
            "BACKEND": "lobby.runtime.memory_layer.InMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "expiry": 60, "group_expiry": 86400},
        }
    }

# AUTH

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

# Staff sign-in (the admin login; lobby/staff_login.py, docs/security.md). django-axes counts
# failures per username and per client address; at the limit, further attempts are refused
# without a password check until the cool-off has passed since the last failure.
ANTEROOM_LOGIN_FAILURE_LIMIT = int(os.environ.get("ANTEROOM_LOGIN_FAILURE_LIMIT", "5"))
ANTEROOM_LOGIN_COOLOFF = int(os.environ.get("ANTEROOM_LOGIN_COOLOFF", "900"))  # seconds
# Password checks run on this many threads of their own per process; this many more may wait.
ANTEROOM_LOGIN_THREADS = int(os.environ.get("ANTEROOM_LOGIN_THREADS", "1"))
ANTEROOM_LOGIN_QUEUE = int(os.environ.get("ANTEROOM_LOGIN_QUEUE", "32"))
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in unhashed
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = ANTEROOM_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=ANTEROOM_LOGIN_COOLOFF)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
# Attempts while locked out neither count nor extend the lockout, so "try again after" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "lobby.staff_login.client_address"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the anteroom.http access log
AXES_ENABLE_ADMIN = False  # lobby/admin.py registers the failures (unlock = delete the row)
# The lockout answer is the login form itself (429, Retry-After, when to retry), rendered by
# AnteroomAdminSite.login, so axes' AxesMiddleware (axes.W002) is not installed.
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

# INTERNATIONALISATION

# Pages and page scripts are translated (docs/deployment.md: "Languages"); the protocol is not:
# error codes, frame types and field names stay as SPEC names them. LocaleMiddleware picks the
# language from the switcher's cookie, then Accept-Language; LANGUAGE_CODE is the fallback.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "anteroom_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# STATIC FILES

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

# REST API

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["lobby.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["lobby.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "lobby.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Anteroom API",
    "DESCRIPTION": "Rooms, meeting tokens, entry requests, participants and breakouts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Bodies are pydantic models (lobby.commands): a PATCH body is already all-optional.
    "COMPONENT_SPLIT_PATCH": False,
    # One name per choice set where two fields share a name ("mode", "status").
    "ENUM_NAME_OVERRIDES": {
        "RoomModeEnum": "lobby.api.schema.ROOM_MODES",
        "JoinModeEnum": "lobby.api.schema.JOIN_MODES",
        "RequestStatusEnum": "lobby.api.schema.REQUEST_STATUSES",
        "ParticipantStatusEnum": "lobby.api.schema.PARTICIPANT_STATUSES",
    },
}

# PAGES

# ``/`` links here as "Documentation" when set (e.g. where your team publishes docs/).
ANTEROOM_DOCS_URL = os.environ.get("ANTEROOM_DOCS_URL", "")

# BRANDING (lobby/branding.py; docs/deployment.md "Make it yours"). A system check validates
# them (anteroom.E101-E103), and config/asgi.py refuses to start on an error.
ANTEROOM_PRODUCT_NAME = os.environ.get("ANTEROOM_PRODUCT_NAME", "Anteroom")
# An http(s) image URL (its origin joins the CSP's img-src), a path on this server, or a file
# under static/ (e.g. ``clinic/logo.svg``). Unset: no logo, the name alone.
ANTEROOM_LOGO_URL = os.environ.get("ANTEROOM_LOGO_URL", "").strip()
ANTEROOM_ACCENT_COLOR = os.environ.get("ANTEROOM_ACCENT_COLOR", "#1f5fbf").strip()
_logo = urlsplit(ANTEROOM_LOGO_URL)
if _logo.scheme in ("http", "https") and _logo.hostname:
    SECURE_CSP["img-src"] = [
        *cast(list[str], SECURE_CSP["img-src"]),
        f"{_logo.scheme}://{_logo.netloc.rpartition('@')[2]}",
    ]

# ANTEROOM

ANTEROOM_DISCONNECT_GRACE = int(os.environ.get("ANTEROOM_DISCONNECT_GRACE", "15"))
ANTEROOM_KNOCK_LIMIT = _env_rate("ANTEROOM_KNOCK_LIMIT", "3/300")
ANTEROOM_BROWSER_KNOCK_LIMIT = _env_rate("ANTEROOM_BROWSER_KNOCK_LIMIT", "3/300")
ANTEROOM_ADDRESS_KNOCK_LIMIT = _env_rate("ANTEROOM_ADDRESS_KNOCK_LIMIT", "30/300")
# Rooms with an appointment window: how many seconds before ``opens_at`` a guest may knock and
# wait for the opening (earlier knocks are refused ROOM_NOT_OPEN). lobby/appointments.py.
ANTEROOM_APPOINTMENT_EARLY = int(os.environ.get("ANTEROOM_APPOINTMENT_EARLY", "1800"))
# Direct joins that open a fresh presence (token-less or a token without ``sub``), per client
# address and room; loopback is not limited (docs/security.md).
ANTEROOM_ADDRESS_JOIN_LIMIT = _env_rate("ANTEROOM_ADDRESS_JOIN_LIMIT", "30/300")
# Per-socket frame budget: sustained rate per second and burst (token bucket).
ANTEROOM_FRAME_RATE = (30, 60)
ANTEROOM_MAX_FRAME_BYTES = 64 * 1024
# Seconds a new socket has to send ``join`` (or ``preauth``) before it is closed with 4400.
ANTEROOM_JOIN_TIMEOUT = float(os.environ.get("ANTEROOM_JOIN_TIMEOUT", "10"))
# How often each process sweeps expired deadlines (seconds).
ANTEROOM_SWEEP_INTERVAL = float(os.environ.get("ANTEROOM_SWEEP_INTERVAL", "1.0"))
ANTEROOM_RUN_SWEEPER = _env_bool("ANTEROOM_RUN_SWEEPER", True)
# Open sockets per client address and per personal token (one with a ``sub``), per process;
# one more is answered RATE_LIMITED and closed with 4429 (docs/security.md).
ANTEROOM_MAX_SOCKETS_PER_ADDRESS = int(os.environ.get("ANTEROOM_MAX_SOCKETS_PER_ADDRESS", "50"))
ANTEROOM_MAX_SOCKETS_PER_TOKEN = int(os.environ.get("ANTEROOM_MAX_SOCKETS_PER_TOKEN", "10"))
# Seconds between re-checks of a staff socket's Django session (0 = only on actions and on
# sign-out / account changes); lobby/staff_sessions.py.
ANTEROOM_STAFF_SESSION_CHECK = float(os.environ.get("ANTEROOM_STAFF_SESSION_CHECK", "30"))
# Seconds a breakout member's help request stays pending unless a moderator answers it.
ANTEROOM_HELP_REQUEST_TTL = int(os.environ.get("ANTEROOM_HELP_REQUEST_TTL", "300"))
# ``/metrics`` is served only when set, to ``Authorization: Bearer <token>``.
ANTEROOM_METRICS_TOKEN = os.environ.get("ANTEROOM_METRICS_TOKEN", "")
# ``manage.py purge`` deletes resolved entry requests and audit rows older than this.
ANTEROOM_RETENTION_DAYS = int(os.environ.get("ANTEROOM_RETENTION_DAYS", "30"))
# Departed participants (status ``left``) are deleted by ``manage.py purge`` after this many days.
ANTEROOM_PARTICIPANT_RETENTION_DAYS = int(
    os.environ.get("ANTEROOM_PARTICIPANT_RETENTION_DAYS", str(ANTEROOM_RETENTION_DAYS))
)

# WEBHOOKS AND ALERTS (lobby/webhooks/, docs/webhooks.md, docs/security.md)


def _env_list(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


# Hosts (names, IP addresses or CIDR networks) that webhooks may reach although they are not
# public: e.g. ``127.0.0.1`` for a receiver on this machine, ``hooks.internal``, ``10.1.0.0/16``.
ANTEROOM_WEBHOOK_ALLOWED_HOSTS = _env_list("ANTEROOM_WEBHOOK_ALLOWED_HOSTS")
# Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10) are allowed too; loopback,
# link-local and this server's own names still need to be listed above.
ANTEROOM_WEBHOOK_ALLOW_PRIVATE = _env_bool("ANTEROOM_WEBHOOK_ALLOW_PRIVATE", False)
ANTEROOM_WEBHOOK_MAX_ENDPOINTS = int(os.environ.get("ANTEROOM_WEBHOOK_MAX_ENDPOINTS", "50"))
# Per attempt: seconds to connect, seconds for the whole request; the receiver's answer is read
# up to 64 KiB; request bodies are at most 256 KiB.
ANTEROOM_WEBHOOK_CONNECT_TIMEOUT = float(os.environ.get("ANTEROOM_WEBHOOK_CONNECT_TIMEOUT", "3"))
ANTEROOM_WEBHOOK_TIMEOUT = float(os.environ.get("ANTEROOM_WEBHOOK_TIMEOUT", "10"))
# Retries: base * 2^(attempt-1) seconds, at most CAP, times a random 0.5-1.0 (jitter), until
# RETRY_FOR seconds after the event; then the delivery is ``failed`` (replay it by hand).
ANTEROOM_WEBHOOK_RETRY_BASE = float(os.environ.get("ANTEROOM_WEBHOOK_RETRY_BASE", "2"))
ANTEROOM_WEBHOOK_RETRY_CAP = float(os.environ.get("ANTEROOM_WEBHOOK_RETRY_CAP", "3600"))
ANTEROOM_WEBHOOK_RETRY_FOR = float(os.environ.get("ANTEROOM_WEBHOOK_RETRY_FOR", "86400"))
# A claimed delivery is another process's to retry when its claim is this old (the holder
# died); longer than a whole attempt.
ANTEROOM_WEBHOOK_LEASE = float(os.environ.get("ANTEROOM_WEBHOOK_LEASE", "60"))
if ANTEROOM_WEBHOOK_LEASE <= ANTEROOM_WEBHOOK_TIMEOUT + ANTEROOM_WEBHOOK_CONNECT_TIMEOUT:
    raise ValueError("ANTEROOM_WEBHOOK_LEASE must be longer than a whole attempt")
# A CA bundle (PEM) to verify receivers' certificates with instead of the system's (a private
# CA); unset: the system's trust store. Certificates are always verified.
ANTEROOM_WEBHOOK_CA_FILE = os.environ.get("ANTEROOM_WEBHOOK_CA_FILE", "") or None
# Whether this process sends (off: it only writes the outbox; another process or
# ``manage.py sweep --loop`` sends).
ANTEROOM_WEBHOOK_SEND = _env_bool("ANTEROOM_WEBHOOK_SEND", True)
# Sending threads per process (deliveries and alert e-mails), and at once per endpoint.
ANTEROOM_WEBHOOK_WORKERS = int(os.environ.get("ANTEROOM_WEBHOOK_WORKERS", "8"))
ANTEROOM_WEBHOOK_PER_ENDPOINT = int(os.environ.get("ANTEROOM_WEBHOOK_PER_ENDPOINT", "4"))
# The base of links in alert e-mails (e.g. https://meet.example.org); unset: paths only.
ANTEROOM_PUBLIC_URL = os.environ.get("ANTEROOM_PUBLIC_URL", "").rstrip("/")

# E-mail (alert notices) through Django's mailers: SMTP when EMAIL_HOST is set, else the
# console (the embedded default prints notices); EMAIL_BACKEND names another backend (e.g.
# django.core.mail.backends.filebased.EmailBackend with EMAIL_FILE_PATH).
_EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
_EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if _EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
_EMAIL_OPTIONS: dict[str, Any] = {}
if _EMAIL_BACKEND.endswith(".smtp.EmailBackend"):
    _EMAIL_OPTIONS = {
        "host": _EMAIL_HOST or "localhost",
        "port": int(os.environ.get("EMAIL_PORT", "25")),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": _env_bool("EMAIL_USE_TLS", False),
        "use_ssl": _env_bool("EMAIL_USE_SSL", False),
        "timeout": int(os.environ.get("EMAIL_TIMEOUT", "10")),
    }
elif _EMAIL_BACKEND.endswith(".filebased.EmailBackend"):
    _EMAIL_OPTIONS = {"file_path": os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "sent-mail"))}
MAILERS = {"default": {"BACKEND": _EMAIL_BACKEND, "OPTIONS": _EMAIL_OPTIONS}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "anteroom@localhost")

# MEDIA (lobby/media/; docs/deployment.md "Calls"). Validated at start-up by
# lobby.media.check_settings (LobbyConfig.ready): a bad value stops the server with
# ImproperlyConfigured naming the variable.
ANTEROOM_MEDIA = os.environ.get("ANTEROOM_MEDIA", "mesh").strip().lower()
# JSON list of RTCIceServer objects, e.g. [{"urls": "stun:stun.example.org:3478"}]; default none
# (host candidates only: one machine or a LAN).
ANTEROOM_ICE_SERVERS = os.environ.get("ANTEROOM_ICE_SERVERS", "[]")
# coturn's REST scheme (use-auth-secret + static-auth-secret): each participant gets a TURN
# username "<expiry>:<participant id>" and credential base64(HMAC-SHA1(secret, username)).
ANTEROOM_TURN_SECRET = os.environ.get("ANTEROOM_TURN_SECRET", "")
ANTEROOM_TURN_URLS = os.environ.get("ANTEROOM_TURN_URLS", "")  # comma-separated turn:/turns:
ANTEROOM_TURN_TTL = os.environ.get("ANTEROOM_TURN_TTL", "3600")  # seconds
# Publishers per media room in a peer-to-peer call; later arrivals receive only.
ANTEROOM_MESH_MAX_PUBLISHERS = os.environ.get("ANTEROOM_MESH_MAX_PUBLISHERS", "6")
# Largest ``data`` of one ``signal`` frame (bytes of JSON).
ANTEROOM_SIGNAL_MAX_BYTES = 32 * 1024

# MEDIA SERVER (Janus; used when ANTEROOM_MEDIA=janus). lobby/media/janus.py validates these at
# start-up (ImproperlyConfigured names the setting); docs/deployment.md "Running Janus".
# ANTEROOM_JANUS_URL: Janus HTTP API as Anteroom reaches it; browsers use
# ANTEROOM_JANUS_PUBLIC_URL (default: the same). ANTEROOM_JANUS_ADMIN_URL: the admin API (keep
# it private). API secret: Anteroom's own requests; admin secret: tokens and sessions; room
# admin key: the VideoRoom plugin's admin_key (only Anteroom creates rooms).
ANTEROOM_JANUS_URL = os.environ.get("ANTEROOM_JANUS_URL", "").strip()
ANTEROOM_JANUS_PUBLIC_URL = os.environ.get("ANTEROOM_JANUS_PUBLIC_URL", "").strip()
ANTEROOM_JANUS_ADMIN_URL = os.environ.get("ANTEROOM_JANUS_ADMIN_URL", "").strip()
ANTEROOM_JANUS_API_SECRET = os.environ.get("ANTEROOM_JANUS_API_SECRET", "")
ANTEROOM_JANUS_ADMIN_SECRET = os.environ.get("ANTEROOM_JANUS_ADMIN_SECRET", "")
ANTEROOM_JANUS_ROOM_ADMIN_KEY = os.environ.get("ANTEROOM_JANUS_ROOM_ADMIN_KEY", "")
ANTEROOM_JANUS_TIMEOUT = float(os.environ.get("ANTEROOM_JANUS_TIMEOUT", "3"))  # per request, s
# How often each process re-applies room controls and restores rooms/tokens after a restart.
ANTEROOM_JANUS_RECONCILE_INTERVAL = float(os.environ.get("ANTEROOM_JANUS_RECONCILE_INTERVAL", "1"))
ANTEROOM_JANUS_MAX_PUBLISHERS = int(os.environ.get("ANTEROOM_JANUS_MAX_PUBLISHERS", "50"))
# Pages may fetch from Janus's public API (the SFU engine's long poll): its origin, and only it,
# joins the CSP's connect-src when ANTEROOM_MEDIA=janus.
_janus_public = urlsplit(ANTEROOM_JANUS_PUBLIC_URL or ANTEROOM_JANUS_URL)
if (
    os.environ.get("ANTEROOM_MEDIA", "mesh").strip().lower() == "janus"
    and _janus_public.scheme in ("http", "https")
    and _janus_public.netloc
):
    SECURE_CSP["connect-src"] = [
        *cast(list[str], SECURE_CSP["connect-src"]),
        f"{_janus_public.scheme}://{_janus_public.netloc}",
    ]
# LiveKit (lobby/media/livekit.py): server API URL, browsers' URL (wss://), API key and secret;
# join tokens live ANTEROOM_LIVEKIT_TOKEN_TTL seconds (LiveKit checks exp on connect only).
ANTEROOM_LIVEKIT_URL = os.environ.get("ANTEROOM_LIVEKIT_URL", "").strip()
ANTEROOM_LIVEKIT_PUBLIC_URL = os.environ.get("ANTEROOM_LIVEKIT_PUBLIC_URL", "").strip()
ANTEROOM_LIVEKIT_API_KEY = os.environ.get("ANTEROOM_LIVEKIT_API_KEY", "")
ANTEROOM_LIVEKIT_API_SECRET = os.environ.get("ANTEROOM_LIVEKIT_API_SECRET", "")
ANTEROOM_LIVEKIT_TOKEN_TTL = int(os.environ.get("ANTEROOM_LIVEKIT_TOKEN_TTL", "300"))

# LOGGING

# JSON lines in production, plain text with DEBUG (LOG_FORMAT=json|plain overrides). Every
# handler redacts tokens, API keys, resume keys and ``?t=`` values (lobby/ops/logs.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ValueError(f"LOG_FORMAT must be json or plain, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "lobby.ops.logs.RedactFilter"},
        "context": {"()": "lobby.ops.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {
            "()": "lobby.ops.logs.PlainFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "lobby.ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Through the root handler only (Django's defaults add unredacted ones of their own).
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        # Daphne's own access lines would log ``?t=`` URLs; anteroom.http logs requests.
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

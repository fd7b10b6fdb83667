"""Structured logs: JSON lines with request and connection ids, and secrets redacted.

* ``RedactFilter`` (on every configured handler) rewrites each record in place so that no meeting
  token (JWT), API key (``ak_…``), resume key, ``Bearer`` credential or ``?t=`` query value
  survives in its message, arguments, extras or traceback text.
* ``ContextFilter`` stamps ``request_id`` (set by ``RequestIdMiddleware``) and ``connection_id``
  (set by the WebSocket consumer) on each record from context variables, so lines logged by
  services on behalf of a request or a socket carry them too.
* ``JsonFormatter`` (python-json-logger's, with Anteroom's field names) writes one JSON object
  per line; ``settings.LOGGING`` uses it unless ``LOG_FORMAT=plain`` (the default when ``DEBUG``
  is on). ``PlainFormatter`` writes readable lines with the ids.

Named ``logs`` so that it never shadows the standard library's ``logging``. The request-id
middleware that sets ``request_id_var`` is in ``lobby.ops.middleware``.
"""

from __future__ import annotations

import contextvars
import logging
import re
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonLoggerFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "anteroom_request_id", default=None
)
connection_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "anteroom_connection_id", default=None
)

REDACTED = "[REDACTED]"

# Keys whose values are secrets wherever they appear (extras, dict args, JSON-ish text).
SECRET_KEYS = frozenset(
    {
        "token",
        "t",
        "resume",
        "resume_key",
        "api_key",
        "key",
        "authorization",
        "password",
        "secret",
        "signing_key",
        "cookie",
    }
)
_SECRET_KEY_ALT = "|".join(sorted((re.escape(k) for k in SECRET_KEYS), key=len, reverse=True))
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # A JWT: a base64url JSON header (``{"`` encodes as ``eyJ``), payload and signature; also
    # any three long base64url segments (hand-made headers need not start with ``{"``).
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b"), REDACTED),
    # API keys ``ak_<prefix>.<secret>``: the prefix is not secret and helps operators.
    (re.compile(r"\b(ak_[0-9a-f]{0,16})[.A-Za-z0-9_-]*"), r"\1." + REDACTED),
    # Authorization headers and cookies.
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s,;\"']+"), r"\1 " + REDACTED),
    # Query values: ``?t=…``, ``&token=…``, ``resume=…``.
    (re.compile(rf"(?i)([?&;\s]|^)({_SECRET_KEY_ALT})=[^&\s\"'#]*"), r"\1\2=" + REDACTED),
    # JSON / repr key-value pairs: ``"resume": "…"``, ``'token': '…'``.
    (
        re.compile(rf"(?i)([\"'])({_SECRET_KEY_ALT})\1(\s*:\s*)([\"'])(?:(?!\4).)*\4"),
        r"\1\2\1\3\4" + REDACTED + r"\4",
    ),
]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    | {"message", "asctime", "request_id", "connection_id", "taskName"}
)


def redact_text(text: str) -> str:
    """Remove anything that looks like a credential from a string."""
    if not _may_hold_a_secret(text):
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


_BEARER = re.compile(r"(?i)bearer|basic")


def _may_hold_a_secret(text: str) -> bool:
    """False only when no pattern above can match: each needs a ``.`` (the JWT shapes, an API
    key's ``ak_``), an ``=`` (query values), a quote (JSON / repr pairs), or the word bearer /
    basic. Most of what is logged ("ws join", a room name, a hex id) has none of them, and
    skips the six substitutions (a log line per socket event: ``docs/deployment.md``)."""
    return (
        "." in text
        or "=" in text
        or '"' in text
        or "'" in text
        or "ak_" in text
        or _BEARER.search(text) is not None
    )


def redact(value: Any, depth: int = 0) -> Any:
    """Redact strings inside ``value`` (dicts, lists, tuples); values of secret keys vanish."""
    if depth > 8:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and k.lower() in SECRET_KEYS and v
            else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = [redact(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else (exceptions, URLs, scopes) is logged as its redacted text.
    return redact_text(str(value))


class RedactFilter(logging.Filter):
    """Redact secrets from a record's message, arguments, extras and traceback, in place.

    In place, so every handler after this one (and log capture in tests) sees the clean record.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_anteroom_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string; keep what there is
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact_text(message), None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            record.__dict__[key] = (
                REDACTED if key.lower() in SECRET_KEYS and value else redact(value)
            )
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
            # Keep the redacted text: formatters would otherwise re-render the exception.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        record._anteroom_redacted = True
        return True


class ContextFilter(logging.Filter):
    """Stamp ``request_id`` and ``connection_id`` from the current context on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "connection_id", None) is None:
            record.connection_id = connection_id_var.get()
        return True


class JsonFormatter(_JsonLoggerFormatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the ids when set,
    then the record's extras, ``exc`` (traceback) and ``stack``.

    python-json-logger does the record-to-JSON work; this subclass only fixes the field names
    and the timestamp (UTC, milliseconds) that log pipelines already parse.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault(
            "rename_fields",
            {"levelname": "level", "name": "logger", "exc_info": "exc", "stack_info": "stack"},
        )
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        ts = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        head: dict[str, Any] = {"ts": ts}
        head |= {k: log_data.pop(k) for k in ("level", "logger", "message") if k in log_data}
        for key in ("request_id", "connection_id"):
            if value := log_data.pop(key, None):  # only when set
                head[key] = value
        tail = {k: log_data.pop(k) for k in ("exc", "stack") if k in log_data}
        rest = dict(log_data)
        log_data.clear()
        log_data.update(head | rest | tail)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for development, with the ids when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{k}={v}" for k in ("request_id", "connection_id") if (v := getattr(record, k, None))
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


def redact_daphne_access_log() -> None:
    """Daphne's own access log (on by default at verbosity 1) prints the full request path,
    query string included, so ``/r/<room>/dashboard/?t=<token>`` would put a token in the log.
    Redact every entry it writes. Called from ``config/asgi.py``, which Daphne imports before it
    builds its access logger."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # pragma: no cover - daphne is a dependency
        return
    if getattr(AccessLogGenerator, "_anteroom_redacted", False):
        return
    original = AccessLogGenerator.write_entry

    def write_entry(
        self: Any, host: Any, date: Any, request: str, *args: Any, **kwargs: Any
    ) -> None:
        original(self, host, date, redact_text(request), *args, **kwargs)

    AccessLogGenerator.write_entry = write_entry
    AccessLogGenerator._anteroom_redacted = True

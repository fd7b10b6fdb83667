"""Prometheus metrics in the text exposition format, at ``/metrics``.

Two kinds of numbers:

* read from the database at scrape time, so every process reports the same truth: waiting
  guests, and the sweeper's lag (how long the oldest deadline has been overdue — 0 while the
  sweepers keep up);
* counted by this process (counters, the time-to-admit histogram, open sockets): scrape every
  process, or sum them in Prometheus. Counters move on commit, so a rolled-back knock is not
  counted.

The endpoint is off (404) unless ``ANTEROOM_METRICS_TOKEN`` is set, and then needs
``Authorization: Bearer <that token>`` (401 otherwise).
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Min, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

if TYPE_CHECKING:
    from .models import EntryRequest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TIME_TO_ADMIT_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        REGISTRY.append(self)

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} needs labels {self.label_names}")
        return tuple(str(labels[n]) for n in self.label_names)

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.label_names:
            items = [((), 0.0)]
        for key, value in items:
            yield f"{self.name}{_labels(self.label_names, key)} {_num(value)}"


class Counter(Metric):
    kind = "counter"

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(Metric):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[self._key(labels)] = value

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1, **labels: str) -> None:
        self.inc(-amount, **labels)


class Histogram(Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = (*sorted(buckets), math.inf)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        with self._lock:
            self.sum += value
            self.count += 1
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self.counts[i] += 1

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            counts, total, n = list(self.counts), self.sum, self.count
        for bound, c in zip(self.buckets, counts, strict=True):
            yield f'{self.name}_bucket{{le="{_num(bound)}"}} {c}'
        yield f"{self.name}_sum {_num(total)}"
        yield f"{self.name}_count {n}"


REGISTRY: list[Metric] = []

KNOCKS = Counter("anteroom_knocks_total", "Entry requests stored (knocks) by this process.")
DECISIONS = Counter(
    "anteroom_decisions_total",
    "Entry requests admitted or denied by this process, by outcome.",
    labels=("outcome",),
)
CANCELLATIONS = Counter(
    "anteroom_entry_cancellations_total",
    "Entry requests canceled by this process, by reason (aborted, disconnected, timeout).",
    labels=("reason",),
)
TIME_TO_ADMIT = Histogram(
    "anteroom_time_to_admit_seconds",
    "Seconds from knock to admission, for admissions decided by this process.",
    TIME_TO_ADMIT_BUCKETS,
)
OPEN_SOCKETS = Gauge("anteroom_open_sockets", "WebSocket connections open in this process.")
SOCKETS_REJECTED = Counter(
    "anteroom_sockets_rejected_total",
    "WebSocket connections closed with 4429 by a per-address or per-token cap.",
    labels=("limit",),
)
SWEEPS = Counter("anteroom_sweeps_total", "Deadline sweeps completed by this process.")
LAST_SWEEP = Gauge(
    "anteroom_sweep_last_success_timestamp_seconds",
    "Unix time of this process's last completed sweep.",
)


# Hooks called by the services (tiny on purpose) ------------------------------------------------


def knocked() -> None:
    transaction.on_commit(KNOCKS.inc)


def decided(outcome: str, requests: Sequence[EntryRequest], now: Any) -> None:
    """Count decisions; observe time to admit (a clock stepped backwards counts as 0 s)."""
    waits = [max(0.0, (now - r.requested_at).total_seconds()) for r in requests]

    def record() -> None:
        DECISIONS.inc(len(waits), outcome=outcome)
        if outcome == "admitted":
            for w in waits:
                TIME_TO_ADMIT.observe(w)

    transaction.on_commit(record)


def canceled(requests: Sequence[EntryRequest]) -> None:
    reasons = [r.cancel_reason or "aborted" for r in requests]

    def record() -> None:
        for reason in reasons:
            CANCELLATIONS.inc(reason=reason)

    transaction.on_commit(record)


def swept() -> None:
    SWEEPS.inc()
    LAST_SWEEP.set(time.time())


# Database gauges -----------------------------------------------------------------------------


def database_lines() -> list[str]:
    """Gauges read from the database now; ``anteroom_database_up 0`` when it does not answer."""
    from . import clock
    from .models import EntryRequest

    now = clock.now()
    grace = timedelta(seconds=settings.ANTEROOM_DISCONNECT_GRACE)
    lines = [
        "# HELP anteroom_database_up Whether the database answered this scrape.",
        "# TYPE anteroom_database_up gauge",
    ]
    try:
        pending = EntryRequest.objects.filter(status=EntryRequest.Status.PENDING)
        waiting = pending.filter(expires_at__gt=now).count()
        overdue = pending.filter(
            Q(expires_at__lte=now) | Q(disconnected_at__lte=now - grace)
        ).aggregate(first=Min("expires_at"), gone=Min("disconnected_at"))
    except DatabaseError:
        return [*lines, "anteroom_database_up 0"]
    deadlines = [d for d in (overdue["first"],) if d is not None and d <= now]
    if overdue["gone"] is not None and overdue["gone"] + grace <= now:
        deadlines.append(overdue["gone"] + grace)
    lag = max((now - min(deadlines)).total_seconds(), 0.0) if deadlines else 0.0
    return [
        *lines,
        "anteroom_database_up 1",
        "# HELP anteroom_waiting_guests Guests waiting in a lobby now (pending, unexpired).",
        "# TYPE anteroom_waiting_guests gauge",
        f"anteroom_waiting_guests {waiting}",
        "# HELP anteroom_sweeper_lag_seconds How long the oldest lobby deadline has been"
        " overdue without a sweep (0 = sweepers keep up).",
        "# TYPE anteroom_sweeper_lag_seconds gauge",
        f"anteroom_sweeper_lag_seconds {_num(round(lag, 3))}",
    ]


def render() -> str:
    from .sweeper import SERVER_ID

    lines = [
        "# HELP anteroom_process_info This server process (counters below are per process).",
        "# TYPE anteroom_process_info gauge",
        f'anteroom_process_info{{server_id="{_escape(SERVER_ID)}"}} 1',
        *database_lines(),
    ]
    for metric in REGISTRY:
        lines.extend(metric.lines())
    return "\n".join(lines) + "\n"


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: 404 unless ``ANTEROOM_METRICS_TOKEN`` is set; 401 without it."""
    token = settings.ANTEROOM_METRICS_TOKEN
    if not token:
        raise Http404()
    if not _authorized(request, token):
        resp = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        resp["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return resp
    return HttpResponse(render(), content_type=CONTENT_TYPE)

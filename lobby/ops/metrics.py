"""Prometheus metrics on ``prometheus_client``, served at ``/metrics`` (``ops.health``).

Two kinds of numbers:

* read from the database at scrape time (``DatabaseCollector``), so every process reports the
  same truth: waiting guests, and the sweeper's lag (how long the oldest deadline has been
  overdue; 0 while the sweepers keep up);
* counted by the processes (counters, the time-to-admit histogram, open sockets). Counters move
  on commit, so a rolled-back knock is not counted. With ``PROMETHEUS_MULTIPROC_DIR`` set in
  the environment of every process of a host (prometheus_client's multiprocess mode), each
  process writes its numbers to that directory and any process's scrape reports the sum of the
  host's processes; without it, each process reports its own (scrape each, or sum in
  Prometheus). docs/deployment.md says how to set the directory up.

This module imports no service, sweeper or consumer: services call the hooks below, and the
server id comes from ``lobby.runtime.process``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import prometheus_client
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.db.models import Min, Q
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from ..runtime import process

if TYPE_CHECKING:
    from ..models import EntryRequest

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
TIME_TO_ADMIT_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)

# ``*_created`` series add nothing here and are absent in multiprocess mode anyway: one
# exposition whichever mode a host runs in.
prometheus_client.disable_created_metrics()


def multiprocess_dir() -> str | None:
    """The shared directory of prometheus_client's multiprocess mode, if this host uses it.

    Read from the environment (not settings): prometheus_client picks its value store when it is
    first imported, before Django's settings exist. Set but not a directory (even empty, which
    prometheus_client would take as the working directory) is a configuration error."""
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        if name in os.environ:
            path = os.environ[name]
            if not path or not os.path.isdir(path):
                raise ImproperlyConfigured(f"{name}={path!r} is not a directory")
            return path
    return None


multiprocess_dir()  # refuse a bad directory at start-up, not at the first scrape


class LabelledCounter(Counter):
    """A ``Counter`` that also takes its labels in ``inc``: ``SOCKETS_REJECTED.inc(limit="x")``."""

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None, **labels: str) -> None:
        if labels:
            self.labels(**labels).inc(amount, exemplar)
        else:
            super().inc(amount, exemplar)


# The metrics of this process; in multiprocess mode their values live in the shared directory.
REGISTRY = CollectorRegistry()

KNOCKS = Counter("anteroom_knocks", "Entry requests stored (knocks).", registry=REGISTRY)
DECISIONS = Counter(
    "anteroom_decisions",
    "Entry requests admitted or denied, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
CANCELLATIONS = Counter(
    "anteroom_entry_cancellations",
    "Entry requests canceled, by reason (aborted, disconnected, timeout).",
    ["reason"],
    registry=REGISTRY,
)
TIME_TO_ADMIT = Histogram(
    "anteroom_time_to_admit_seconds",
    "Seconds from knock to admission.",
    buckets=TIME_TO_ADMIT_BUCKETS,
    registry=REGISTRY,
)
OPEN_SOCKETS = Gauge(
    "anteroom_open_sockets",
    "WebSocket connections open (in multiprocess mode: in this host's live processes).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SOCKETS_REJECTED = LabelledCounter(
    "anteroom_sockets_rejected",
    "WebSocket connections closed with 4429 by a per-address or per-token cap.",
    ["limit"],
    registry=REGISTRY,
)
SWEEPS = Counter("anteroom_sweeps", "Deadline sweeps completed.", registry=REGISTRY)
LAST_SWEEP = Gauge(
    "anteroom_sweep_last_success_timestamp_seconds",
    "Unix time of the last completed sweep (in multiprocess mode: the latest of this host's"
    " live processes).",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)


# Hooks called by the services (tiny on purpose) ------------------------------------------------


def knocked() -> None:
    transaction.on_commit(KNOCKS.inc)


def decided(outcome: str, requests: Sequence[EntryRequest], now: Any) -> None:
    """Count decisions; observe time to admit (a clock stepped backwards counts as 0 s)."""
    waits = [max(0.0, (now - r.requested_at).total_seconds()) for r in requests]

    def record() -> None:
        DECISIONS.labels(outcome=outcome).inc(len(waits))
        if outcome == "admitted":
            for w in waits:
                TIME_TO_ADMIT.observe(w)

    transaction.on_commit(record)


def canceled(requests: Sequence[EntryRequest]) -> None:
    reasons = [r.cancel_reason or "aborted" for r in requests]

    def record() -> None:
        for reason in reasons:
            CANCELLATIONS.labels(reason=reason).inc()

    transaction.on_commit(record)


def swept() -> None:
    SWEEPS.inc()
    LAST_SWEEP.set(time.time())


# Collectors read at scrape time ----------------------------------------------------------------


class ProcessCollector(Collector):
    """``anteroom_process_info{server_id=…} 1``: the process that answered this scrape."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "anteroom_process_info",
            "The server process that answered this scrape.",
            labels=["server_id"],
        )
        info.add_metric([process.SERVER_ID], 1)
        yield info


class DatabaseCollector(Collector):
    """Gauges read from the database now; ``anteroom_database_up 0`` when it does not answer."""

    def collect(self) -> Iterator[Metric]:
        from .. import clock
        from ..models import EntryRequest

        now = clock.now()
        grace = timedelta(seconds=settings.ANTEROOM_DISCONNECT_GRACE)
        up = GaugeMetricFamily("anteroom_database_up", "Whether the database answered this scrape.")
        try:
            pending = EntryRequest.objects.filter(status=EntryRequest.Status.PENDING)
            waiting = pending.filter(expires_at__gt=now).count()
            overdue = pending.filter(
                Q(expires_at__lte=now) | Q(disconnected_at__lte=now - grace)
            ).aggregate(first=Min("expires_at"), gone=Min("disconnected_at"))
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        deadlines = [d for d in (overdue["first"],) if d is not None and d <= now]
        if overdue["gone"] is not None and overdue["gone"] + grace <= now:
            deadlines.append(overdue["gone"] + grace)
        lag = max((now - min(deadlines)).total_seconds(), 0.0) if deadlines else 0.0
        yield GaugeMetricFamily(
            "anteroom_waiting_guests",
            "Guests waiting in a lobby now (pending, unexpired).",
            value=waiting,
        )
        yield GaugeMetricFamily(
            "anteroom_sweeper_lag_seconds",
            "How long the oldest lobby deadline has been overdue without a sweep"
            " (0 = sweepers keep up).",
            value=round(lag, 3),
        )


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def _forget_dead_processes(path: str) -> None:
    """Drop the live gauges (open sockets, last sweep) of processes of this host that are gone.

    prometheus_client expects a ``mark_process_dead`` call from the server's child-exit hook;
    Daphne has none, and a SIGKILLed process runs no hook, so each scrape checks the pids."""
    pids = {int(m.group(1)) for name in os.listdir(path) if (m := _LIVE_GAUGE_FILE.match(name))}
    for pid in pids - {os.getpid()}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            pass  # alive, another user's


def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` reports: this process's metrics, or the host's in multiprocess mode,
    plus the process id and the database gauges."""
    path = multiprocess_dir()
    registry = CollectorRegistry()
    registry.register(ProcessCollector())
    registry.register(DatabaseCollector())
    if path:
        _forget_dead_processes(path)
        multiprocess.MultiProcessCollector(registry, path)
    else:
        registry.register(_Forward(REGISTRY))
    return registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def render() -> bytes:
    """The Prometheus text exposition (format 0.0.4) of ``scrape_registry()``."""
    return generate_latest(scrape_registry())

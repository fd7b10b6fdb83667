"""The sending threads of one process: a loop that claims due deliveries (and alert e-mails)
and hands each to a small thread pool, so no HTTP request ever runs on the event loop or on the
ORM thread of the consumers.

The loop wakes when a transaction of this process that wrote deliveries commits (``wake``), and
at least every sweep interval, to pick up rows written by other processes and retries that came
due. At most ``ANTEROOM_WEBHOOK_WORKERS`` attempts run at once, at most
``ANTEROOM_WEBHOOK_PER_ENDPOINT`` of them for one endpoint (a slow receiver cannot take every
thread).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from lobby.runtime.process import SERVER_ID

from . import doorbell
from .alerts import claim_emails, send_email
from .delivery import claim_heads, send_chain

log = logging.getLogger("anteroom.webhooks")

_wake = doorbell.bell
_lock = threading.Lock()
_thread: threading.Thread | None = None


class Dispatcher:
    def __init__(self, owner: str = SERVER_ID) -> None:
        self.owner = owner
        self.workers = max(1, settings.ANTEROOM_WEBHOOK_WORKERS)
        self.per_endpoint = max(1, settings.ANTEROOM_WEBHOOK_PER_ENDPOINT)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="anteroom-webhook")
        self.busy: Counter[Any] = Counter()
        self.emails = 0
        self.guard = threading.Lock()
        self.stopped = threading.Event()

    def in_flight(self) -> int:
        with self.guard:
            return sum(self.busy.values()) + self.emails

    def tick(self) -> None:

        close_old_connections()
        free = self.workers - self.in_flight()
        if free <= 0:
            return
        with self.guard:
            full = frozenset(e for e, n in self.busy.items() if n >= self.per_endpoint)
        for d in claim_heads(owner=self.owner, limit=free, skip_endpoints=full):
            with self.guard:
                self.busy[d.endpoint_id] += 1
            self.pool.submit(self._chain, d)
            free -= 1
        if free > 0:
            for m in claim_emails(owner=self.owner, limit=min(free, 4)):
                with self.guard:
                    self.emails += 1
                self.pool.submit(self._email, m, send_email)

    def _chain(self, d: Any) -> None:
        try:
            send_chain(d, owner=self.owner)
        except Exception:
            log.warning("webhook chain failed", exc_info=True)
        finally:
            with self.guard:
                self.busy[d.endpoint_id] -= 1
                if self.busy[d.endpoint_id] <= 0:
                    del self.busy[d.endpoint_id]
            close_old_connections()
            _wake.set()  # a thread is free: look for more

    def _email(self, m: Any, send: Any) -> None:
        try:
            send(m, owner=self.owner)
        except Exception:
            log.warning("alert e-mail failed", exc_info=True)
        finally:
            with self.guard:
                self.emails -= 1
            close_old_connections()
            _wake.set()

    def run(self) -> None:
        interval = settings.ANTEROOM_SWEEP_INTERVAL
        while not self.stopped.is_set():
            _wake.wait(interval)
            _wake.clear()
            try:
                self.tick()
            except Exception:
                log.warning("webhook dispatch failed; retrying", exc_info=True)
                self.stopped.wait(interval)

    def stop(self) -> None:
        self.stopped.set()
        _wake.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


_dispatcher: Dispatcher | None = None


def ensure_started() -> None:
    """Start this process's sending loop once (idempotent; called by the sweeper)."""
    global _thread, _dispatcher
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _dispatcher = Dispatcher()
        _thread = threading.Thread(target=_dispatcher.run, name="anteroom-webhooks", daemon=True)
        _thread.start()

"""The per-process sweeper: every server process enforces stored deadlines.

Deadlines live in rows (``expires_at``, ``disconnected_at`` + grace, breakout ``ends_at``); the
sweep is idempotent and each transition a conditional update, so several processes sweeping at
once fire each timeout exactly once. ``manage.py sweep`` runs the same function.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger("anteroom.sweeper")

SERVER_ID = f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
_task: asyncio.Task[None] | None = None


def _sweep_once() -> None:
    from .services import sweep

    close_old_connections()
    try:
        result = sweep(server_id=SERVER_ID)
        if result.timed_out or result.disconnected or result.left or result.dead_servers:
            log.info("sweep %s", result)
    finally:
        close_old_connections()


async def _run() -> None:
    interval = settings.ANTEROOM_SWEEP_INTERVAL
    while True:
        try:
            # Its own thread: the sweeper never queues behind consumers on the ORM thread.
            await sync_to_async(_sweep_once, thread_sensitive=False)()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("sweep failed; retrying", exc_info=True)
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only


def ensure_started() -> None:
    """Start this process's sweeper once, on the running loop (idempotent)."""
    global _task
    if not settings.ANTEROOM_RUN_SWEEPER:
        return
    if _task is not None and not _task.done():
        return
    _task = asyncio.get_running_loop().create_task(_run())

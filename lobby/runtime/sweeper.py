"""The per-process sweeper: every server process enforces stored deadlines.

Deadlines live in rows (``expires_at``, ``disconnected_at`` + grace, breakout ``ends_at``); the
sweep is idempotent and each transition a conditional update, so several processes sweeping at
once fire each timeout exactly once. ``manage.py sweep`` runs the same function.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from .process import SERVER_ID

log = logging.getLogger("anteroom.sweeper")


def _sweep_once(*, heartbeat_only: bool = False) -> None:
    from ..services import server_heartbeat, sweep

    close_old_connections()
    try:
        if heartbeat_only:
            server_heartbeat(server_id=SERVER_ID)
            return
        result = sweep(server_id=SERVER_ID)
        if (
            result.timed_out
            or result.disconnected
            or result.left
            or result.dead_servers
            or result.notices
        ):
            log.info("sweep %s", result)
    finally:
        close_old_connections()


def _quiet_period() -> float:
    from ..services.deadlines import SERVER_DEAD_AFTER

    return SERVER_DEAD_AFTER + 2 * settings.ANTEROOM_SWEEP_INTERVAL


async def run() -> None:
    """The sweep loop: one of ``RUNTIME``'s jobs when ``ANTEROOM_RUN_SWEEPER`` (registered by
    ``LobbyConfig.ready()``). It also starts the webhook and e-mail sending threads."""
    if settings.ANTEROOM_WEBHOOK_SEND:
        from ..webhooks import dispatcher

        dispatcher.ensure_started()  # webhook deliveries and alert e-mails, on their own threads
    interval = settings.ANTEROOM_SWEEP_INTERVAL
    # After a database outage every process's heartbeat is stale. A sweeper that came back
    # first would declare the others dead and cancel their guests' knocks as "disconnected";
    # so after a failed sweep it only heartbeats until the others had time to do the same.
    quiet_until = 0.0
    while True:
        try:
            heartbeat_only = time.monotonic() < quiet_until
            # Its own thread: the sweeper never queues behind consumers on the ORM thread.
            await sync_to_async(_sweep_once, thread_sensitive=False)(heartbeat_only=heartbeat_only)
        except asyncio.CancelledError:
            raise
        except Exception:
            quiet_until = time.monotonic() + _quiet_period()
            log.warning("sweep failed; retrying", exc_info=True)
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only

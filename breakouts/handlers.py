"""WebSocket handlers for breakout messages, registered into the room consumer at start-up.

Each handler is ``async def handler(consumer, msg) -> dict | None`` (the ack's ``data``).
"""

from __future__ import annotations

from lobby.consumers import Handler

HANDLERS: dict[str, Handler] = {}

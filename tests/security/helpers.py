"""Helpers for the security and observability tests: service-level knocks and decisions."""

from __future__ import annotations

import uuid
from typing import Any

from tests import factories


def conn(address: str = "10.0.0.1", browser: str | None = None) -> Any:
    """A guest's socket: its own browser (unless given) from ``address``."""
    return factories.conn(
        "srv-test", browser=browser if browser is not None else uuid.uuid4().hex, address=address
    )


def knock(room: Any, *, name: str = "Pat", token: str | None = None, **kw: Any):
    return factories.knock(room, name=name, token=token, c=conn(**kw))


def api_actor() -> Any:
    from lobby import services

    return services.Actor.api("ops")


def decide(room: Any, request_id: Any, outcome: str = "admitted", reason: str = ""):
    from lobby import services

    return services.entry_request_decide(
        room=room, request_id=request_id, actor=api_actor(), outcome=outcome, reason=reason
    )

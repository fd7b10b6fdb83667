"""The peer-to-peer backend: browsers send their media to each other, nothing to run.

The server's part is the signalling relay (lobby/media/relay.py) and the permissions it
computes (lobby/media/policy.py); the browsers' mesh engine (static/anteroom/media.js) obeys
them — a sender whose permission goes stops its sender (``replaceTrack(null)``). A modified
browser can ignore that: enforcement at a server needs a media server (``ANTEROOM_MEDIA=janus``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from .backend import Permissions


class MeshBackend:
    name = "mesh"

    def check(self) -> None:
        return None

    def ready(self) -> tuple[bool, str]:
        return True, "ok"

    def join_info(self, participant_id: str, media_room: UUID) -> dict[str, Any]:
        return {}

    def apply(self, media_room: UUID, permissions_by_participant: dict[str, Permissions]) -> None:
        return None

    def revoke(self, participant_id: str, media_room: UUID) -> None:
        return None

    def close_room(self, media_room: UUID) -> None:
        return None

"""The call's server→client frames (docs/protocol.md "Calls"): one typed definition and one
constructor each, like the core's (``lobby/frames.py``) and breakouts' (``breakouts/events.py``).
tests/media/test_frames.py checks each constructor against the documented examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict


class MediaBody(TypedDict):
    """``joined.media``, and a ``media-state`` without its ``type``."""

    room: str
    seq: int
    permissions: dict[str, bool]
    publisher: bool
    peers: list[str]
    states: dict[str, dict[str, bool]]
    mode: Literal["mesh", "sfu"]
    max_publishers: int
    ice_servers: list[dict[str, Any]]
    sfu: dict[str, Any]
    limit: NotRequired[str]  # "mesh-full": a late arrival in a full mesh only receives
    error: NotRequired[str]  # "UNAVAILABLE": the media server could not be reached


class MediaStateFrame(MediaBody):
    type: Literal["media-state"]


# ``from`` is a Python keyword: the functional form.
SignalFrame = TypedDict(
    "SignalFrame", {"type": Literal["signal"], "from": str, "data": dict[str, Any]}
)


class MediaUpdateFrame(TypedDict):
    type: Literal["media-update"]
    participant_id: str
    audio: bool
    video: bool
    screen: bool


def media_state(body: MediaBody) -> MediaStateFrame:
    return {"type": "media-state", **body}


def signal(sender: str, data: dict[str, Any]) -> SignalFrame:
    return {"type": "signal", "from": sender, "data": data}


def media_update(participant_id: str, effective: Mapping[str, bool]) -> MediaUpdateFrame:
    return {
        "type": "media-update",
        "participant_id": participant_id,
        "audio": effective["audio"],
        "video": effective["video"],
        "screen": effective["screen"],
    }


# Every constructor, by the frame type it builds (tests/media/test_frames.py).
CONSTRUCTORS: dict[str, str] = {
    "media-state": "media_state",
    "signal": "signal",
    "media-update": "media_update",
}

"""Event capture at the delivery seam: what the process hands to the channel layer.

The ``sent`` fixture swaps the configured channel layer for the same layer that also records
every ``group_send`` (group, message), in order, with a lock (on-commit hooks run on many
threads in the race tests). Nothing private is patched: services send through the on-commit
outbox of ``lobby/events.py`` exactly as in production, and the capture sees what leaves the
process, after the commit, queue orders filled in — a change that rolls back records nothing.
Only sync tests use it: there the delivery runs inside the on-commit hook, so the capture is
complete when the service returns.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from lobby.runtime.layers import RedisChannelLayer
from lobby.runtime.memory_layer import InMemoryChannelLayer


class Sent:
    """Every (group, message) the services sent after commit, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def record(self, group: str, message: dict[str, Any]) -> None:
        with self.lock:
            self.items.append((group, message))

    @staticmethod
    def frames_of(message: dict[str, Any]) -> list[dict[str, Any]]:
        """A message's frames, pre-encoded ones (``texts``) decoded."""
        return [*message.get("frames", []), *(json.loads(t) for t in message.get("texts", []))]

    def frames(self, group_prefix: str = "") -> list[dict[str, Any]]:
        return [f for g, m in self.items if g.startswith(group_prefix) for f in self.frames_of(m)]

    def types(self, group_prefix: str = "") -> list[str]:
        return [f["type"] for f in self.frames(group_prefix)]

    def to(self, group: str) -> list[dict[str, Any]]:
        return [m for g, m in self.items if g == group]


class _Recording:
    box: Sent | None = None  # the running test's capture (set by the ``sent`` fixture)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if _Recording.box is not None:
            _Recording.box.record(group, message)
        await super().group_send(group, message)  # type: ignore[misc]


class RecordingInMemoryLayer(_Recording, InMemoryChannelLayer):
    pass


class RecordingRedisLayer(_Recording, RedisChannelLayer):
    pass


RECORDING = {
    "lobby.runtime.memory_layer.InMemoryChannelLayer": RecordingInMemoryLayer,
    "lobby.runtime.layers.RedisChannelLayer": RecordingRedisLayer,
}


@pytest.fixture
def sent(settings):
    """The events the code under test sent, captured where they leave for the channel layer."""
    layers = settings.CHANNEL_LAYERS
    default = layers["default"]
    recording = RECORDING[default["BACKEND"]]
    settings.CHANNEL_LAYERS = {
        **layers,
        "default": {**default, "BACKEND": f"{recording.__module__}.{recording.__qualname__}"},
    }
    box = Sent()
    _Recording.box = box
    yield box
    _Recording.box = None

"""Every call frame constructor (lobby/media/frames.py) builds the frame docs/protocol.md
documents ("Calls"): ``signal`` and ``media-update`` against their ``{"type":...}`` examples,
``media-state`` against the ``joined.media`` example it carries (plus ``type``), with the same
reader as tests/lobby/test_frames.py."""

from __future__ import annotations

from typing import Any

import pytest

from lobby.media import frames
from tests.lobby.test_frames import PROTOCOL, _mismatches, _objects, _parse

# Keys of a media-state documented in prose, not in the example: protocol.md "Calls" (the mesh
# limit) and "media-state.sfu with a media server" (Janus unreachable).
PROSE = {"limit", "error"}

BODY: frames.MediaBody = {
    "room": "0b6f…",
    "seq": 41,
    "permissions": {"audio": True, "video": True, "screen": True, "receive": True},
    "publisher": True,
    "peers": ["dr-who", "g-1f"],
    "states": {"dr-who": {"audio": True, "video": True, "screen": False}},
    "mode": "mesh",
    "max_publishers": 6,
    "ice_servers": [{"urls": ["stun:stun.example.org:3478"]}],
    "sfu": {},
}
FULL: frames.MediaBody = {**BODY, "publisher": False, "limit": "mesh-full"}
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "media-state": [dict(frames.media_state(BODY)), dict(frames.media_state(FULL))],
    "signal": [
        dict(
            frames.signal(
                "g-1f", {"gen": 2, "to": 1, "description": {"type": "answer", "sdp": "v=0"}}
            )
        )
    ],
    "media-update": [
        dict(frames.media_update("g-1f", {"audio": True, "video": False, "screen": False}))
    ],
}


def documented() -> dict[str, list[dict[str, Any]]]:
    text = PROTOCOL.read_text()
    found: dict[str, list[dict[str, Any]]] = {}
    for prefix, obj in _objects(text):
        if "→" in prefix:
            continue
        try:
            frame = _parse(obj)
        except ValueError:
            continue  # the media-state.sfu sketch, with "…" between keys
        if frame.get("type") in frames.CONSTRUCTORS:
            found.setdefault(frame["type"], []).append(frame)
    start = text.index('"media":{"mode"') + len('"media":')
    depth, end = 0, start
    while True:
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
        end += 1
    found.setdefault("media-state", []).append(
        {"type": "media-state", **_parse(text[start : end + 1])}
    )
    return found


def test_every_call_frame_has_a_constructor_a_sample_and_an_example() -> None:
    assert set(SAMPLES) == set(frames.CONSTRUCTORS) == set(documented())
    for kind, samples in SAMPLES.items():
        assert all(s["type"] == kind for s in samples)


@pytest.mark.parametrize("kind", sorted(frames.CONSTRUCTORS))
def test_each_built_call_frame_has_exactly_a_documented_shape(kind: str) -> None:
    for built in SAMPLES[kind]:
        problems = []
        for doc in documented()[kind]:
            extra = sorted(set(built) - set(doc) - (PROSE if kind == "media-state" else set()))
            found = _mismatches(doc, built) + [f".{k}: not documented" for k in extra]
            if not found:
                break
            problems.append(found)
        else:
            pytest.fail(f"{kind}: {built} matches no documented example: {problems}")


def test_the_media_state_example_is_what_the_server_sends() -> None:
    """The typed frame's keys are the example's plus the two documented in prose: nothing
    documented is missing from the definition, nothing defined is undocumented."""
    (doc,) = documented()["media-state"]
    assert set(frames.MediaStateFrame.__annotations__) == set(doc) | PROSE
    assert set(BODY) | {"type"} == set(doc)

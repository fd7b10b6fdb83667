"""Every frame constructor of lobby/frames.py builds the frame docs/protocol.md documents.

The documented examples are read from docs/protocol.md itself (every ``{"type":...}`` object a
server sends; ``…`` stands for any value). A constructor's frame must have every documented key,
with a value of the documented JSON type, and no key the documentation does not list (the
few additions documented in prose are named below): so the wire stays what clients were told,
additions only.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lobby import frames
from lobby.models import EntryRequest, Participant, Room

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
ANY = object()  # a documented "…": any value

# Keys documented in prose rather than in an example (protocol.md: joined.media in "Calls",
# a moderator's joined.activity in "Activity", resync's joined.resync in the resync section).
ADDITIONS = {"joined": {"media", "activity", "resync"}, "access-state": {"reason"}}
# What an ack's ``data`` holds depends on the message it answers (documented per message).
OPAQUE = {"ack": {"data"}}


def _objects(text: str) -> list[tuple[str, str]]:
    """(line prefix, text) of every ``{"type":...}`` object in the document."""
    out = []
    i = 0
    while (i := text.find('{"type":', i)) >= 0:
        depth, j, in_str, esc = 0, i, False, False
        while j < len(text):
            c = text[j]
            if in_str:
                esc, in_str = (False, in_str) if esc else (c == "\\", c != '"')
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append((text[text.rfind("\n", 0, i) + 1 : i], text[i : j + 1]))
        i = j + 1
    return out


_HOLE = '"\\u0000any"'  # JSON for a string no example contains


def _parse(example: str) -> dict[str, Any]:
    """An example as JSON, each ``…`` (and the prose letters ``N``, ``M``) read as ``ANY``."""
    s = re.sub(r"\s+", " ", example)
    s = s.replace("{…}", _HOLE).replace("[…]", _HOLE)
    s = re.sub(r"(?<=[{,])\s*(\"[\w-]+\")\s*(?=[,}])", lambda m: m[1] + ":" + _HOLE, s)
    s = re.sub(r"(?<=[:\[,])\s*(…|[A-Z])\s*(?=[,}\]])", lambda m: _HOLE, s)
    s = re.sub(r'"[^"]*…[^"]*"', lambda m: _HOLE, s)

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {k: ANY if v == "\x00any" else v for k, v in pairs}

    return json.loads(s, object_pairs_hook=hook)


def documented() -> dict[str, list[dict[str, Any]]]:
    """Server frames documented with an example, by type (client messages, ``→``, left out)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for prefix, text in _objects(PROTOCOL.read_text()):
        if "→" in prefix:
            continue
        try:
            frame = _parse(text)
        except json.JSONDecodeError:
            continue  # a prose sketch with "…" between keys (media-state.sfu): not a frame shape
        if frame.get("type") in frames.CONSTRUCTORS:
            found.setdefault(frame["type"], []).append(_shape(frame["type"], frame))
    return found


def _shape(kind: str, frame: dict[str, Any]) -> dict[str, Any]:
    return {k: ANY if k in OPAQUE.get(kind, ()) else v for k, v in frame.items()}


def _mismatches(doc: Any, built: Any, path: str = "") -> list[str]:
    if doc is ANY or doc is None:
        return []
    if isinstance(doc, dict):
        if not isinstance(built, dict):
            return [f"{path}: {type(built).__name__}, documented an object"]
        out = [f"{path}.{k}: missing" for k in doc if k not in built]
        for k, v in doc.items():
            if k in built:
                out += _mismatches(v, built[k], f"{path}.{k}")
        return out
    if isinstance(doc, list):
        if not isinstance(built, list):
            return [f"{path}: {type(built).__name__}, documented a list"]
        return _mismatches(doc[0], built[0], f"{path}[0]") if doc and built else []
    if built is not None and type(built) is not type(doc):
        return [f"{path}: {type(built).__name__}, documented {type(doc).__name__}"]
    return []


T = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ROOM = Room(
    id=uuid.uuid4(),
    name="clinic",
    privacy="private",
    mode="group",
    enable_knocking=True,
    max_active_talkers=12,
    knock_ttl=60,
    created_at=T,
)
MOD = Participant(
    room=ROOM, participant_id="dr-who", name="Dr Who", role="moderator", status="active"
)
KNOCK = EntryRequest(
    id=uuid.uuid4(),
    room=ROOM,
    participant_id="g-1",
    name="Pat",
    metadata={"reason": "checkup"},
    requested_at=T,
    expires_at=T,
    status="admitted",
    cancel_reason="aborted",
    resolved_by="dr-who",
)
ROSTER = [frames.participant_payload(MOD)]
SAMPLES: dict[str, list[Any]] = {
    "error": [frames.error("ENTRY_DENIED", "A moderator declined your request to join.")],
    "ack": [
        frames.ack(7, {"request_id": str(KNOCK.id), "outcome": "admitted", "effective": True}),
        frames.ack_error(8, {"code": "INVALID_PERMISSIONS", "message": "No."}),
    ],
    "access-state": [frames.access_state("lobby"), frames.access_state("none", "private-room")],
    "joined": [
        frames.joined(
            participant=MOD, room=ROOM, participants=ROSTER, resume="q0x", breakouts=[], media={}
        ),
        frames.joined(
            participant=MOD, room=ROOM, participants=ROSTER, resume=None, breakouts=[], resync=True
        ),
    ],
    "waiting": [
        frames.waiting(KNOCK, resume="Zk3"),
        frames.waiting(KNOCK, resume=None, reason="sent-to-lobby"),
    ],
    "queue-position": [frames.queue_position(1, 1)],
    "canceled": [frames.canceled()],
    "lobby-message": [frames.lobby_message("Running late")],
    "host-message": [frames.host_message("Bring your forms")],
    "deadline-extended": [frames.deadline_extended(T)],
    "room-opens": [frames.room_opens(T), frames.room_opens(None)],
    "wait-estimate": [frames.wait_estimate(90.4)],
    "entry-requested": [frames.entry_requested(KNOCK)],
    "entry-updated": [frames.entry_updated(KNOCK)],
    "entry-resolved": [frames.entry_resolved(KNOCK)],
    "entry-canceled": [frames.entry_canceled(KNOCK)],
    "knock-alert": [frames.knock_alert(3, 5)],
    "activity": [
        frames.activity(
            [
                {
                    "kind": "timed-out",
                    "participant_id": "g-1",
                    "name": "Tess",
                    "at": "2026-12-01T14:02:10Z",
                    "by": "",
                    "reason": "timeout",
                }
            ]
        )
    ],
    "participant-joined": [frames.participant_event("participant-joined", MOD)],
    "participant-updated": [frames.participant_event("participant-updated", MOD)],
    "participant-left": [frames.participant_event("participant-left", MOD)],
    "room-updated": [frames.room_updated(ROOM)],
}


def test_every_constructor_has_a_sample_and_every_type_is_documented() -> None:
    assert set(SAMPLES) == set(frames.CONSTRUCTORS)
    assert set(documented()) == set(frames.CONSTRUCTORS), "a frame type lacks a protocol example"
    for kind, samples in SAMPLES.items():
        assert all(s["type"] == kind for s in samples)


@pytest.mark.parametrize("kind", sorted(frames.CONSTRUCTORS))
def test_each_built_frame_has_exactly_a_documented_shape(kind: str) -> None:
    examples = documented()[kind]
    for built in SAMPLES[kind]:
        problems = []
        for doc in examples:
            extra = set(built) - set(doc) - ADDITIONS.get(kind, set())
            found = _mismatches(doc, built) + [f".{k}: not documented" for k in sorted(extra)]
            if not found:
                break
            problems.append(found)
        else:
            pytest.fail(f"{kind}: {built} matches no documented example: {problems}")


@pytest.mark.parametrize("kind", sorted(frames.CONSTRUCTORS))
def test_each_documented_example_is_built_by_its_constructor(kind: str) -> None:
    for doc in documented()[kind]:
        assert any(not _mismatches(doc, built) for built in SAMPLES[kind]), (
            f"no constructor output carries {doc}"
        )


def test_the_shape_check_catches_a_missing_or_retyped_key() -> None:
    doc = _parse('{"type":"queue-position","position":1,"waiting":1}')
    assert _mismatches(doc, {"type": "queue-position", "position": 1}) == [".waiting: missing"]
    assert _mismatches(doc, {"type": "queue-position", "position": "1", "waiting": 1}) == [
        ".position: str, documented int"
    ]
    assert _parse('{"type":"lobby-message","text"}') == {"type": "lobby-message", "text": ANY}

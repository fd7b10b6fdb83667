"""The strict schemas of every socket message (``lobby.commands``, ``breakouts.commands``).

Each message type has a valid frame below (the table must cover every type the consumer serves).
From its schema the tests derive, field by field, a wrong type, a missing required field, an
unknown field and a duplicate key: each is ``BAD_REQUEST``, with a message that does not repeat
what was sent. Valid frames round-trip through the models unchanged.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from breakouts import commands as breakout_commands
from lobby import commands, consumers, extensions, strict_json
from lobby.commands import parse_client_frame
from lobby.errors import AnteroomError

ID = "6c1d4a0e-52b2-4a53-9c1e-3f0a55d0b6a1"
OTHER = "0b6f9d44-0d62-4a53-8f3e-1d2a33c4e5f6"
SECRET = "zz-client-text-42"  # must never come back in an error message

VALID: dict[str, dict[str, Any]] = {
    "preauth": {"token": "eyJ.x.y"},
    "join": {"token": "eyJ.x.y", "name": "Pat", "metadata": {"reason": "checkup"}, "resume": "k"},
    "cancel": {},
    "update-name": {"name": "Pat"},
    "admit": {"request_id": ID},
    "deny": {"request_id": ID, "reason": "Come back at 3"},
    "admit-all": {},
    "deny-all": {},
    "room-pause": {},
    "room-resume": {},
    "room-mute": {"audio": True, "video": False},
    "room-unmute": {"video": True},
    "leave": {},
    "participant-remove": {"participant_id": "p1"},
    "participant-to-lobby": {"participant_id": "p1"},
    "lobby-message": {"text": "Running late", "extend_minutes": 10},
    "entry-message": {"request_id": ID, "text": "Forms at the desk"},
    "signal": {"to": "p0", "data": {"gen": 1, "description": {"type": "offer", "sdp": "v=0"}}},
    "media-update": {"audio": True, "video": False, "screen": False},
    "breakout-create": {
        "participants": 3,
        "max_rooms": 2,
        "audio": True,
        "video": False,
        "canvas": False,
        "share": True,
        "duration": 900,
    },
    "breakout-create-and-invite": {"participants": 3, "max_rooms": 4, "force_join": True},
    "breakout-invite": {"room_id": ID, "clients": ["p0", "p1"], "force_join": False},
    "breakout-join": {"room_id": ID, "role": "participant"},
    "breakout-reject": {"room_id": ID},
    "breakout-leave": {},
    "breakout-clear-all": {},
    "breakout-destroy-all": {},
    "breakout-extend": {"room_id": ID, "seconds": 120},
    "breakout-broadcast": {"text": "Five minutes left."},
    "breakout-help": {},
    "breakout-help-answer": {"participant_id": "p1"},
    "breakout-help-join": {"participant_id": "p1"},
    "breakout-move": {"participant_id": "p1", "room_id": None},
}


def frame(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "rid": 7, **VALID[kind], **fields}


def refused(text: str | dict[str, Any]) -> AnteroomError:
    raw = text if isinstance(text, str) else json.dumps(text)
    with pytest.raises(AnteroomError) as info:
        parse_client_frame(raw)
    assert SECRET not in info.value.message, info.value.message
    return info.value


def code_of(text: str | dict[str, Any]) -> str:
    return refused(text).code


def test_the_table_covers_every_message_type_the_consumer_serves():
    served = {
        name[3:].replace("_", "-") for name in dir(consumers.RoomConsumer) if name[:3] == "on_"
    } | set(extensions.ws_handlers)
    assert commands.message_types() == served == set(VALID)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_frame_parses_and_round_trips(kind):
    msg = parse_client_frame(json.dumps(frame(kind)))
    assert commands.tag(type(msg)) == kind and msg.rid == 7
    assert msg.model_dump(mode="json", exclude_unset=True) == frame(kind)


# Strictness, derived from each message's schema ----------------------------------------------

WRONG: dict[str, list[Any]] = {
    "string": [5, True, ["x"]],
    "integer": ["1", True, 1.5],
    "boolean": [1, "true", None],
    "array": ["p0", {"p0": True}],
    "object": ["x", [1]],
}


def _kinds(prop: dict[str, Any]) -> tuple[set[str], bool]:
    """The JSON types a property accepts, and whether null is one of them."""
    branches = prop.get("anyOf", [prop])
    types = {b.get("type", "object" if "$ref" in b else "any") for b in branches}
    return types - {"null"}, "null" in types


def mutations() -> list[tuple[str, str, Any]]:
    """(message type, field, wrong value) for every field of every message."""
    out = []
    for kind in sorted(VALID):
        schema = commands.message_model(kind).model_json_schema()
        for field, prop in schema["properties"].items():
            if field in ("type", "rid"):
                continue
            types, nullable = _kinds(prop)
            assert len(types) == 1, (kind, field)  # one JSON type per field (rid aside)
            for value in WRONG[types.pop()]:
                if value is not None or not nullable:
                    out.append((kind, field, value))
            if not nullable and field not in schema.get("required", []):
                out.append((kind, field, None))  # may be left out, never null
    return out


@pytest.mark.parametrize(("kind", "field", "value"), mutations())
def test_a_wrong_type_is_bad_request(kind, field, value):
    assert code_of(frame(kind, **{field: value})) == "BAD_REQUEST"


def required() -> list[tuple[str, str]]:
    out = []
    for kind in sorted(VALID):
        schema = commands.message_model(kind).model_json_schema()
        out += [(kind, f) for f in schema.get("required", []) if f != "type"]
    return out


@pytest.mark.parametrize(("kind", "field"), required())
def test_a_missing_field_is_bad_request(kind, field):
    msg = frame(kind)
    del msg[field]
    err = refused(msg)
    assert err.code == "BAD_REQUEST" and err.message == f"{field} is required."


@pytest.mark.parametrize("kind", sorted(VALID))
def test_an_unknown_field_is_bad_request_and_not_named(kind):
    err = refused(frame(kind, **{SECRET: 1}))
    assert (err.code, err.message) == ("BAD_REQUEST", "Unknown fields are not accepted.")


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_duplicate_key_is_bad_request(kind):
    text = json.dumps(frame(kind))
    assert code_of(text[:-1] + f', "rid": "{SECRET}"}}') == "BAD_REQUEST"
    # Nested too: {"metadata": {"a": 1, "a": 2}}.
    assert code_of('{"type":"join","metadata":{"a":1,"a":2}}') == "BAD_REQUEST"


def test_the_schema_derived_cases_are_many():
    # The generators above found fields to break; an empty table would pass vacuously.
    assert len(mutations()) > 100 and len(required()) >= 10


# Transport checks (decode_frame) -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        '{"type": "preauth"',
        '[{"type":"preauth"}]',
        '"preauth"',
        "42",
        "null",
        '{"token": null}',
        '{"type": 7}',
        '{"type": "zz-client-text-42"}',
        '{"type":"preauth","rid":1.5}',
        '{"type":"preauth","rid":true}',
        '{"type":"preauth","rid":{"a":1}}',
        json.dumps({"type": "preauth", "rid": "r" * 65}),
        '{"type":"join","metadata":{"x":NaN}}',
        '{"type":"join","metadata":{"x":-Infinity}}',
        '{"type":"preauth","type":"join"}',
        '{"type":"join","metadata":' + "[" * 20 + "]" * 20 + "}",
        "[" * 30000 + "]" * 30000,
        json.dumps({"type": "join", "metadata": {"p": "x" * (64 * 1024)}}),
    ],
)
def test_malformed_frames_are_bad_request(text):
    assert code_of(text) == "BAD_REQUEST"


def test_rid_is_a_short_string_or_an_integer():
    assert parse_client_frame(json.dumps({"type": "cancel", "rid": "r" * 64})).rid == "r" * 64
    assert parse_client_frame(json.dumps({"type": "cancel", "rid": -3})).rid == -3
    assert parse_client_frame('{"type":"cancel","rid":null}').rid is None


def test_a_refusal_after_decoding_keeps_the_rid_for_the_ack():
    decoded = commands.decode_frame('{"type":"admit","rid":"a1","request_id":5}')
    assert decoded["rid"] == "a1"
    with pytest.raises(AnteroomError) as info:
        commands.parse_message(decoded)
    assert info.value.code == "BAD_REQUEST"


def test_strict_json_refuses_duplicates_nan_and_runaway_nesting():
    with pytest.raises(strict_json.DuplicateKey):
        strict_json.loads('{"a": {"b": 1, "b": 2}}')
    for text in ('{"a": NaN}', '{"a": Infinity}', "[" * 100000, "{", b"\xff"):
        with pytest.raises(strict_json.StrictJSONError):
            strict_json.loads(text)
    assert strict_json.loads('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


# Field rules (SPEC ranges) -----------------------------------------------------------------


def joined_name(name: str) -> str | None:
    msg = parse_client_frame(json.dumps(frame("join", name=name)))
    assert isinstance(msg, commands.Join)
    return msg.name


def test_display_names_are_trimmed_at_most_100_characters_without_control_characters():
    assert joined_name("  Pat  ") == "Pat"
    assert joined_name("é" * 100) == "é" * 100
    assert joined_name(" " * 50 + "P" * 100) == "P" * 100
    for bad in ("x" * 101, "a\u202eb", "a\x00b", "line\u2028break", "a\x85b"):
        assert code_of(frame("join", name=bad)) == "BAD_REQUEST", bad
        assert code_of(frame("deny", reason=bad)) == "BAD_REQUEST", bad
    # A name to change to must not be empty; a join may leave it out or send "".
    assert code_of(frame("update-name", name="   ")) == "BAD_REQUEST"
    assert joined_name("") == ""


def test_metadata_is_a_json_object_of_at_most_4_KiB():
    pad = 4096 - len(json.dumps({"p": ""}, separators=(",", ":")))
    assert parse_client_frame(json.dumps(frame("join", metadata={"p": "x" * pad})))
    assert code_of(frame("join", metadata={"p": "x" * (pad + 1)})) == "BAD_REQUEST"
    assert code_of(frame("join", metadata=["x"])) == "BAD_REQUEST"


def test_mute_needs_audio_or_video():
    for kind in ("room-mute", "room-unmute"):
        base = {"type": kind}
        for body in ({}, {"audio": False}, {"audio": False, "video": False}):
            err = refused(base | body)
            assert (err.code, err.message) == ("BAD_REQUEST", "Say which of audio and video.")
    mute = parse_client_frame('{"type":"room-mute","audio":true,"video":true}')
    assert isinstance(mute, commands.RoomMute)
    assert mute.changes() == {"audio_muted": True, "video_muted": True}
    unmute = parse_client_frame('{"type":"room-unmute","video":true}')
    assert isinstance(unmute, commands.RoomUnmute)
    assert unmute.changes() == {"video_muted": False}


def test_a_request_id_that_is_not_a_uuid_names_no_request():
    for kind in ("admit", "deny"):
        assert code_of(frame(kind, request_id=f"{SECRET}")) == "REQUEST_NOT_FOUND"
        assert code_of(frame(kind, request_id="")) == "REQUEST_NOT_FOUND"
        assert code_of(frame(kind, request_id=5)) == "BAD_REQUEST"
        # A malformed frame is told as such, even when its id also names nothing.
        assert code_of(frame(kind, request_id="x", reason=5)) == "BAD_REQUEST"
    admit = parse_client_frame(json.dumps(frame("admit", request_id=ID.upper())))
    assert isinstance(admit, commands.Admit)
    assert admit.request_id == uuid.UUID(ID) and admit.outcome == "admitted"


def test_the_python_types_a_service_receives():
    deny = parse_client_frame(json.dumps(frame("deny")))
    assert isinstance(deny, commands.Deny)
    assert isinstance(deny.request_id, uuid.UUID) and deny.reason == "Come back at 3"
    create = parse_client_frame(json.dumps(frame("breakout-create")))
    assert isinstance(create, breakout_commands.BreakoutCreate)
    assert create.options() == {
        "participants": 3,
        "audio": True,
        "video": False,
        "canvas": False,
        "share": True,
        "max_rooms": 2,
        "duration": 900,
    }
    move = parse_client_frame(json.dumps(frame("breakout-move", room_id=OTHER)))
    assert isinstance(move, breakout_commands.BreakoutMove)
    assert move.room_id == uuid.UUID(OTHER) and move.participant_id == "p1"


def test_a_message_type_is_registered_once():
    commands.register(commands.Join)  # the same model again is a no-op

    class Impostor(commands.Message):
        type: str = "join"

    with pytest.raises(ValueError, match="twice"):
        commands.register(Impostor)
    assert commands.message_model("join") is commands.Join

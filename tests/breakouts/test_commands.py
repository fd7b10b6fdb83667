"""Breakout messages and bodies (``breakouts.commands``): the SPEC ranges that are field rules,
room ids that name nothing, and the REST create body. Strictness in general (wrong types,
unknown, missing and duplicate fields) is tested for every message in tests/lobby/test_commands.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from breakouts.commands import (
    FLAGS,
    BreakoutCreate,
    BreakoutCreateAndInvite,
    BreakoutCreateBody,
    BreakoutInvite,
)
from lobby.commands import parse_client_frame
from lobby.errors import AnteroomError

ID = "6c1d4a0e-52b2-4a53-9c1e-3f0a55d0b6a1"


def parse(kind: str, **fields: Any) -> Any:
    return parse_client_frame(json.dumps({"type": kind, **fields}))


def code(kind: str, **fields: Any) -> str:
    with pytest.raises(AnteroomError) as info:
        parse(kind, **fields)
    return info.value.code


@pytest.mark.parametrize("kind", ["breakout-create", "breakout-create-and-invite"])
def test_create_fields_and_their_defaults(kind):
    msg = parse(kind, participants=3)
    assert isinstance(msg, BreakoutCreate | BreakoutCreateAndInvite)
    assert msg.options() == {"participants": 3, "max_rooms": 1, "duration": None, **FLAGS}
    assert FLAGS == {"audio": True, "video": True, "canvas": False, "share": False}
    # The timer is 60 s to 4 h (SPEC); max_rooms at least 1 (more than 10 is BREAKOUT_LIMIT,
    # and the capacity range depends on the parent: both are the services' to check).
    assert parse(kind, participants=3, duration=60).duration == 60
    assert parse(kind, participants=3, duration=14_400).duration == 14_400
    for bad in (59, 14_401, 0, -60):
        assert code(kind, participants=3, duration=bad) == "BAD_REQUEST", bad
    assert code(kind, participants=3, max_rooms=0) == "BAD_REQUEST"
    assert parse(kind, participants=1, max_rooms=11).options()["max_rooms"] == 11


def test_invite_clients_are_1_to_1000_ids_without_duplicates():
    msg = parse("breakout-invite", room_id=ID, clients=["p1", "p0", "p1"])
    assert isinstance(msg, BreakoutInvite) and msg.clients == ["p1", "p0"]
    assert len(parse("breakout-invite", room_id=ID, clients=[f"p{i}" for i in range(1000)]).clients)
    for bad in ([], [f"p{i}" for i in range(1001)], [""], ["p0", 7], "p0"):
        assert code("breakout-invite", room_id=ID, clients=bad) == "BAD_REQUEST"


def test_broadcast_text_is_1_to_1000_characters_not_only_spaces():
    assert parse("breakout-broadcast", text="x" * 1000).text == "x" * 1000
    assert parse("breakout-broadcast", text="  hi  ").text == "  hi  "  # sent as written
    for bad in ("", "   ", "x" * 1001, None):
        assert code("breakout-broadcast", text=bad) == "BAD_REQUEST"


def test_extend_seconds_are_1_to_14400_for_one_room_or_all():
    assert parse("breakout-extend", seconds=1).room_id is None
    assert parse("breakout-extend", seconds=14_400, room_id=ID).room_id == uuid.UUID(ID)
    for bad in (0, 14_401, "60"):
        assert code("breakout-extend", seconds=bad) == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("breakout-invite", {"clients": ["p0"]}),
        ("breakout-join", {}),
        ("breakout-reject", {}),
        ("breakout-extend", {"seconds": 60}),
        ("breakout-move", {"participant_id": "p0"}),
    ],
)
def test_a_room_id_that_is_not_a_uuid_names_no_breakout_room(kind, fields):
    for junk in ("x", "", "6c1d4a0e", "../" + ID):
        assert code(kind, room_id=junk, **fields) == "BREAKOUT_NOT_FOUND", junk
    for wrong in (5, ["x"], {"id": ID}, True):
        assert code(kind, room_id=wrong, **fields) == "BAD_REQUEST", wrong


def test_join_role_is_one_of_the_three_roles():
    assert parse("breakout-join", room_id=ID, role="viewer").role == "viewer"
    assert parse("breakout-join", room_id=ID).role is None
    for bad in ("owner", "Moderator", 1):
        assert code("breakout-join", room_id=ID, role=bad) == "BAD_REQUEST"


def test_move_back_to_the_parent_is_an_explicit_null():
    assert parse("breakout-move", participant_id="p0", room_id=None).room_id is None
    assert code("breakout-move", participant_id="p0") == "BAD_REQUEST"
    assert code("breakout-move", participant_id="", room_id=None) == "BAD_REQUEST"


def test_the_rest_create_body_is_create_or_create_and_invite():
    plain = BreakoutCreateBody.parse({"participants": 2, "max_rooms": 3}).command()
    assert isinstance(plain, BreakoutCreate) and plain.max_rooms == 3
    invite = BreakoutCreateBody.parse({"participants": 2, "invite": True}).command()
    assert isinstance(invite, BreakoutCreateAndInvite) and invite.force_join is False
    forced = BreakoutCreateBody.parse({"participants": 2, "invite": True, "force_join": True})
    command = forced.command()
    assert isinstance(command, BreakoutCreateAndInvite) and command.force_join is True
    for body in (
        {"participants": 2, "force_join": True},
        {"participants": 2, "force_join": False},  # sent at all without invite
        {"participants": 2, "invite": True, "force_join": None},
        {"participants": 2, "invite": "yes"},
    ):
        with pytest.raises(AnteroomError) as info:
            BreakoutCreateBody.parse(body)
        assert info.value.code == "BAD_REQUEST", body

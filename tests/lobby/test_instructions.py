"""What a group tells its consumers is a closed set of typed instructions (lobby/instructions.py):
each goes over the channel layer as a plain message and comes back as itself; anything else
fails loudly."""

from __future__ import annotations

import uuid

import msgpack  # type: ignore[import-untyped]
import pytest

from lobby import instructions as ins

EVERY = [
    ins.Deliver(frames=[{"type": "participant-left", "participant": {}}]),
    ins.Deliver(frames=[{"type": "x"}], except_connection="c-1", except_participant="p-1"),
    ins.Deliver(frames=[{"type": "waiting-room-message"}], to_waiting=True),
    ins.Admit(frames=[{"type": "joined"}], participant_id="g-1", role="participant", room_id="r"),
    ins.Cancel(frames=[{"type": "canceled", "reason": "aborted"}]),
    ins.ToLobby(frames=[{"type": "waiting"}], request_id="q", position=2, waiting=3),
    ins.Regroup(frames=[], add=["members.a"], discard=["members.b"], breakout_id="a"),
    ins.Regroup(frames=[], discard=["members.b"], breakout_id=None),
    ins.Close(frames=[{"type": "error"}], close_code=4409, except_connection="c-2"),
    ins.Queue(room_id="r"),
    ins.Queue(room_id="r", order=["q1", "q2"]),
    ins.StaffCheck(ended_session="abc"),
]


def test_every_kind_is_covered() -> None:
    assert {type(i) for i in EVERY} == set(ins.KINDS.values())


@pytest.mark.parametrize("instruction", EVERY, ids=lambda i: type(i).__name__)
def test_an_instruction_survives_the_channel_layer_as_itself(instruction: ins.Instruction) -> None:
    message = ins.to_message(instruction)
    # Redis carries msgpack: plain types only.
    wire = msgpack.unpackb(msgpack.packb(message))
    back = ins.parse(wire)
    assert type(back) is type(instruction)
    assert ins.to_message(back) == message


def test_a_relay_to_a_waiting_audience_is_marked_by_its_group() -> None:
    from lobby import events

    frame = {"type": "waiting-room-message"}
    for group in (events.lobby_group(uuid.uuid4()), events.request_group(uuid.uuid4())):
        assert events._message(group, ins.Deliver(frames=[frame]))["to_waiting"] is True
    for group in (events.members_group(uuid.uuid4()), events.mods_group(uuid.uuid4())):
        assert "to_waiting" not in events._message(group, ins.Deliver(frames=[frame]))


def test_a_plain_relay_stays_the_three_keys_the_delivery_engine_merges() -> None:
    assert ins.to_message(ins.Deliver(frames=[{"type": "a"}])) == {
        "type": "anteroom.event",
        "action": "",
        "frames": [{"type": "a"}],
    }


@pytest.mark.parametrize(
    "message",
    [
        {"type": "anteroom.event", "action": "explode", "frames": []},  # unknown kind
        {"type": "anteroom.event", "frames": []},  # no kind
        {"type": "anteroom.event", "action": 1},  # not a kind
        {"type": "anteroom.event", "action": "close", "frames": [], "closecode": 4400},  # typo
        {"type": "anteroom.event", "action": "queue", "room_id": "r", "frames": []},  # not queue's
        {"type": "anteroom.event", "action": "close", "close_code": "4400"},  # wrong type
        {"type": "anteroom.event", "action": "", "frames": "joined"},  # frames not a list
        {"type": "anteroom.event", "action": "", "frames": [], "to_waiting": 1},  # not a bool
        {"type": "anteroom.event", "action": "groups", "add": "members.a"},
        {"type": "anteroom.other", "action": ""},  # not ours
    ],
)
def test_anything_else_fails_loudly(message: dict) -> None:
    with pytest.raises(ins.UnknownInstruction):
        ins.parse(message)


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_given_an_unknown_instruction_fails_loudly(clients) -> None:
    from channels.layers import get_channel_layer

    from lobby import events
    from lobby.models import Room
    from tests.lobby.helpers import adb, aroom

    await aroom(name="clinic", privacy="public")
    c = await clients()
    await c.send(type="join", name="Pat")
    await c.expect("joined")
    room = await adb(Room.objects.get)(name="clinic")
    layer = get_channel_layer()
    assert layer is not None
    # A well-formed instruction is relayed...
    await layer.group_send(
        events.members_group(room.pk), ins.to_message(ins.Deliver(frames=[{"type": "probe"}]))
    )
    assert (await c.expect("probe"))["type"] == "probe"
    # ...a kind no instruction has is not skipped: the consumer raises and ends.
    await layer.group_send(
        events.members_group(room.pk), {"type": "anteroom.event", "action": "explode"}
    )
    with pytest.raises(ins.UnknownInstruction, match="explode"):
        await c.comm.receive_output(2)

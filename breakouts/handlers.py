"""WebSocket handlers for breakout messages, registered into the room consumer at start-up.

Each handler is ``async def handler(consumer, msg) -> dict | None`` (the ack's ``data``). They
translate only: parse the message with its strict model (``breakouts.commands``: a wrong type, a
missing or unknown field or a value out of its SPEC range is ``BAD_REQUEST``, a ``room_id`` that
is not a UUID ``BREAKOUT_NOT_FOUND``, as over REST), call one service with the parsed values,
shape the ack. The rules that need the database stay in the services, which REST shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lobby import events as lobby_events
from lobby.errors import NotJoined

from . import commands, services
from .selectors import breakout_room_payload, breakout_room_with_members, breakout_rooms_payload

if TYPE_CHECKING:
    from lobby.consumers import Handler, RoomConsumer


def _me(consumer: RoomConsumer) -> str:
    if consumer.participant_id is None:
        raise NotJoined()
    return consumer.participant_id


async def on_create(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutCreate.parse(msg)
    rooms = await consumer.call(
        services.breakout_rooms_create, parent=room, actor=actor, **m.options()
    )
    return {"rooms": [breakout_room_payload(r, []) for r in rooms]}


async def on_create_and_invite(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutCreateAndInvite.parse(msg)

    def create() -> dict[str, Any]:
        rooms, assignments = services.breakout_rooms_create_and_invite(
            parent=room, actor=actor, force_join=m.force_join, **m.options()
        )
        ids = {str(r.pk) for r in rooms}
        return {
            "rooms": [r for r in breakout_rooms_payload(parent=room) if r["id"] in ids],
            "assignments": assignments,
        }

    data: dict[str, Any] = await consumer.call(create)
    return data


async def on_invite(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutInvite.parse(msg)
    invited = await consumer.call(
        services.breakout_invite,
        parent=room,
        actor=actor,
        room_id=m.room_id,
        clients=m.clients,
        force_join=m.force_join,
    )
    return {
        "room_id": str(invited.room.pk),
        "clients": invited.clients,
        "force_join": invited.force_join,
    }


async def on_join(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    m = commands.BreakoutJoin.parse(msg)

    def join() -> dict[str, Any]:
        breakout = services.breakout_join(
            parent=room, participant_id=_me(consumer), room_id=m.room_id, role=m.role
        )
        return {"room": breakout_room_with_members(room=breakout)}

    # No subscription before the service has checked the invitation, the capacity and that
    # the room belongs to this parent: the service adds the group (``action: groups``) after
    # commit. Subscribing first would let anyone listen to any breakout while it refuses them.
    data: dict[str, Any] = await consumer.call(join)
    return data


async def on_reject(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    m = commands.BreakoutReject.parse(msg)
    inv = await consumer.call(
        services.breakout_reject, parent=room, participant_id=_me(consumer), room_id=m.room_id
    )
    return {"room_id": str(inv.breakout_id)}


async def on_leave(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    commands.BreakoutLeave.parse(msg)
    left = await consumer.call(services.breakout_leave, parent=room, participant_id=_me(consumer))
    return {"room_id": str(left)}


async def on_clear_all(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    commands.BreakoutClearAll.parse(msg)
    done = await consumer.call(services.breakout_rooms_clear_all, parent=room, actor=actor)
    return {"count": len(done.returned), "rooms": done.rooms}


async def on_destroy_all(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    commands.BreakoutDestroyAll.parse(msg)
    done = await consumer.call(services.breakout_rooms_destroy_all, parent=room, actor=actor)
    consumer.room = done.parent
    return {
        "count": len(done.returned),
        "rooms": done.rooms,
        "room": lobby_events.room_payload(done.parent),
    }


async def on_extend(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutExtend.parse(msg)

    def extend() -> dict[str, Any]:
        rooms = services.breakout_extend(
            parent=room, actor=actor, room_id=m.room_id, seconds=m.seconds
        )
        return {"rooms": [breakout_room_with_members(room=r) for r in rooms]}

    data: dict[str, Any] = await consumer.call(extend)
    return data


async def on_broadcast(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutBroadcast.parse(msg)
    n = await consumer.call(services.breakout_broadcast, parent=room, actor=actor, text=m.text)
    return {"rooms": n}


async def on_help(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    commands.BreakoutHelp.parse(msg)
    h = await consumer.call(services.breakout_help, parent=room, participant_id=_me(consumer))
    return {
        "room_id": str(h.breakout_id),
        "id": str(h.id),
        "expires_at": lobby_events._ts(h.expires_at),
    }


async def on_help_answer(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutHelpAnswer.parse(msg)
    answer = await consumer.call(
        services.breakout_help_answer, parent=room, actor=actor, participant_id=m.participant_id
    )
    return {
        "id": str(answer.request.id),
        "outcome": answer.request.status,
        "effective": answer.effective,
    }


async def on_help_join(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutHelpJoin.parse(msg)

    def join() -> dict[str, Any]:
        j = services.breakout_help_join(parent=room, actor=actor, participant_id=m.participant_id)
        return {
            "id": str(j.request.id),
            "outcome": j.request.status,
            "effective": j.effective,
            "room": breakout_room_with_members(room=j.room) if j.room is not None else None,
        }

    # As for breakout-join: the service adds the room's group (``action: groups``) after commit.
    data: dict[str, Any] = await consumer.call(join)
    return data


async def on_move(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    m = commands.BreakoutMove.parse(msg)
    p = await consumer.call(
        services.breakout_move,
        parent=room,
        actor=actor,
        participant_id=m.participant_id,
        room_id=m.room_id,
    )
    return {"participant": lobby_events.participant_payload(p)}


HANDLERS: dict[str, Handler] = {
    "breakout-create": on_create,
    "breakout-create-and-invite": on_create_and_invite,
    "breakout-invite": on_invite,
    "breakout-join": on_join,
    "breakout-reject": on_reject,
    "breakout-leave": on_leave,
    "breakout-clear-all": on_clear_all,
    "breakout-destroy-all": on_destroy_all,
    "breakout-extend": on_extend,
    "breakout-broadcast": on_broadcast,
    "breakout-help": on_help,
    "breakout-help-answer": on_help_answer,
    "breakout-help-join": on_help_join,
    "breakout-move": on_move,
}

"""WebSocket handlers for breakout messages, registered into the room consumer at start-up.

Each handler is ``async def handler(consumer, msg) -> dict | None`` (the ack's ``data``). They
translate only: pick the allow-listed fields, call one service, shape the ack. Field types are
checked here (``BAD_REQUEST``) and again by the services, which REST shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lobby import events as lobby_events
from lobby.errors import BadRequest, NotJoined

from . import services
from .selectors import breakout_room_payload, breakout_room_with_members, breakout_rooms_payload

if TYPE_CHECKING:
    from lobby.consumers import Handler, RoomConsumer

FLAGS = {"audio": True, "video": True, "canvas": False, "share": False}


def _field(msg: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """``msg[key]`` if it has the right type (``bool`` is not an ``int`` here), else
    ``BAD_REQUEST``; ``default`` when absent (``...`` = required)."""
    if key not in msg:
        if default is ...:
            raise BadRequest(f"{key} is required.")
        return default
    value = msg[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None and type(None) in kinds:
        return None
    if type(value) not in kinds:
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise BadRequest(f"{key} must be {names}.")
    return value


def _create_fields(msg: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "participants": _field(msg, "participants", int, ...),
        "max_rooms": _field(msg, "max_rooms", int, 1),
        "duration": _field(msg, "duration", (int, type(None)), None),
    }
    for flag, default in FLAGS.items():
        fields[flag] = _field(msg, flag, bool, default)
    return fields


def _me(consumer: RoomConsumer) -> str:
    if consumer.participant_id is None:
        raise NotJoined()
    return consumer.participant_id


async def on_create(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    rooms = await consumer.call(
        services.breakout_rooms_create, parent=room, actor=actor, **_create_fields(msg)
    )
    return {"rooms": [breakout_room_payload(r, []) for r in rooms]}


async def on_create_and_invite(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    force_join = _field(msg, "force_join", bool, False)
    fields = _create_fields(msg)

    def create() -> dict[str, Any]:
        rooms, assignments = services.breakout_rooms_create_and_invite(
            parent=room, actor=actor, force_join=force_join, **fields
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
    invited = await consumer.call(
        services.breakout_invite,
        parent=room,
        actor=actor,
        room_id=_field(msg, "room_id", str, ...),
        clients=_field(msg, "clients", list, ...),
        force_join=_field(msg, "force_join", bool, False),
    )
    return {
        "room_id": str(invited.room.pk),
        "clients": invited.clients,
        "force_join": invited.force_join,
    }


async def on_join(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    room_id = _field(msg, "room_id", str, ...)
    role = _field(msg, "role", (str, type(None)), None)

    def join() -> dict[str, Any]:
        breakout = services.breakout_join(
            parent=room, participant_id=_me(consumer), room_id=room_id, role=role
        )
        return {"room": breakout_room_with_members(room=breakout)}

    # No subscription before the service has checked the invitation, the capacity and that
    # the room belongs to this parent: the service adds the group (``action: groups``) after
    # commit. Subscribing first would let anyone listen to any breakout while it refuses them.
    data: dict[str, Any] = await consumer.call(join)
    return data


async def on_reject(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    inv = await consumer.call(
        services.breakout_reject,
        parent=room,
        participant_id=_me(consumer),
        room_id=_field(msg, "room_id", str, ...),
    )
    return {"room_id": str(inv.breakout_id)}


async def on_leave(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    left = await consumer.call(services.breakout_leave, parent=room, participant_id=_me(consumer))
    return {"room_id": str(left)}


async def on_clear_all(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    done = await consumer.call(services.breakout_rooms_clear_all, parent=room, actor=actor)
    return {"count": len(done.returned), "rooms": done.rooms}


async def on_destroy_all(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    done = await consumer.call(services.breakout_rooms_destroy_all, parent=room, actor=actor)
    consumer.room = done.parent
    return {
        "count": len(done.returned),
        "rooms": done.rooms,
        "room": lobby_events.room_payload(done.parent),
    }


async def on_extend(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    room_id = _field(msg, "room_id", (str, type(None)), None)
    seconds = _field(msg, "seconds", int, ...)

    def extend() -> dict[str, Any]:
        rooms = services.breakout_extend(parent=room, actor=actor, room_id=room_id, seconds=seconds)
        return {"rooms": [breakout_room_with_members(room=r) for r in rooms]}

    data: dict[str, Any] = await consumer.call(extend)
    return data


async def on_broadcast(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    n = await consumer.call(
        services.breakout_broadcast, parent=room, actor=actor, text=_field(msg, "text", str, ...)
    )
    return {"rooms": n}


async def on_help(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, _ = consumer.require_joined()
    h = await consumer.call(services.breakout_help, parent=room, participant_id=_me(consumer))
    return {
        "room_id": str(h.breakout_id),
        "id": str(h.id),
        "expires_at": lobby_events._ts(h.expires_at),
    }


async def on_help_answer(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()
    answer = await consumer.call(
        services.breakout_help_answer,
        parent=room,
        actor=actor,
        participant_id=_field(msg, "participant_id", str, ...),
    )
    return {
        "id": str(answer.request.id),
        "outcome": answer.request.status,
        "effective": answer.effective,
    }


async def on_help_join(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any]:
    room, actor = consumer.require_joined()

    def join() -> dict[str, Any]:
        j = services.breakout_help_join(
            parent=room, actor=actor, participant_id=_field(msg, "participant_id", str, ...)
        )
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
    p = await consumer.call(
        services.breakout_move,
        parent=room,
        actor=actor,
        participant_id=_field(msg, "participant_id", str, ...),
        room_id=_field(msg, "room_id", (str, type(None)), ...),
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

"""Socket handlers for ``signal`` and ``media-update`` (registered into the room consumer by
``LobbyConfig.ready``). They translate only; the rules are in :mod:`.relay` and :mod:`.policy`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import events
from ..errors import InvalidPermissions
from . import relay

if TYPE_CHECKING:
    from ..consumers import Handler, RoomConsumer


def _sender(consumer: RoomConsumer) -> str:
    # A waiting, denied, canceled or departed socket has no media: refused, relayed nowhere.
    if consumer.state != "joined" or consumer.room is None or not consumer.participant_id:
        raise InvalidPermissions("Only admitted participants have media.")
    return consumer.participant_id


async def on_signal(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any] | None:
    sender = _sender(consumer)
    assert consumer.room is not None
    group, frame = await consumer.call(relay.signal, parent=consumer.room, sender=sender, raw=msg)
    await events.relay_now(group, frame)
    return {}


async def on_media_update(consumer: RoomConsumer, msg: dict[str, Any]) -> dict[str, Any] | None:
    sender = _sender(consumer)
    assert consumer.room is not None
    effective: dict[str, Any] = await consumer.call(
        relay.media_update, parent=consumer.room, participant_id=sender, raw=msg
    )
    return effective


HANDLERS: dict[str, Handler] = {"signal": on_signal, "media-update": on_media_update}

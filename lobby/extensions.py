"""The room core's extension points: how an app builds on the lobby without the lobby knowing it.

Dependencies point one way (docs/architecture.md): ``breakouts`` (and media, and whatever comes
next) import ``lobby``; ``lobby`` never imports them, not even inside a function, and a test
(tests/lobby/test_import_graph.py) checks the whole import graph for that and for cycles. Where
the core must let an app act - a socket message it does not know, a participant who leaves the
room, the sweeper's tick, the ``joined`` snapshot, the moderator dashboard - it calls the
registries below, which the app fills once in its ``AppConfig.ready()``::

    from lobby import extensions
    extensions.ws_handlers.update(HANDLERS)
    extensions.on_left.append(my_hook)

Every hook is synchronous and runs where the core calls it (the service hooks inside the
core's transaction, on the ORM thread), so an app's writes commit or roll back with the change
that caused them and its events go out through the same on-commit outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .consumers import RoomConsumer
    from .models import Participant, Room

#: ``async def handler(consumer, msg) -> dict | None`` (the ack's ``data``), by message ``type``.
#: The message's strict model is registered with :func:`lobby.commands.register`.
Handler = Callable[["RoomConsumer", dict[str, Any]], Awaitable[dict[str, Any] | None]]
ws_handlers: dict[str, Handler] = {}

#: ``hook(participant=, breakout_id=)``: the core took a participant out of the breakout room
#: it was in (it left the whole room, or joined again from a new connection without its resume
#: key). The participant row is already updated.
LeftHook = Callable[..., None]
on_left: list[LeftHook] = []

#: ``sweeper(now=) -> int`` (how many things it acted on), run by every process's sweeper tick
#: after the core's own work, by name (``manage.py sweep`` prints each count).
sweepers: dict[str, Callable[..., int]] = {}

#: ``frames(parent=, participant_id=) -> list[frame]`` sent to a socket right after its
#: ``joined`` (e.g. pending breakout invitations replayed after a reconnect). ORM thread.
join_frames: list[Callable[..., Sequence[Mapping[str, Any]]]] = []

#: ``field(room=, moderator=, breakout_id=) -> value`` for a key of the ``joined`` snapshot and
#: the resync snapshot that an app owns (SPEC §3: ``breakouts``; ``breakout_id`` is the breakout
#: room the reader is in, or None). A key nobody registered is ``[]``.
snapshot_fields: dict[str, Callable[..., Any]] = {}


@dataclass(frozen=True)
class DashboardPanel:
    """A section of the moderator dashboard that an app renders and acts on.

    ``template`` is included in ``lobby/dashboard.html`` with the page's context plus
    ``context(room=, now=, participants=)``; a plain POST whose ``action`` is in ``actions`` goes
    to ``act(room=, mod=, action=, data=)``, which validates ``data`` (the POST) itself, calls
    its services and returns the success message (or raises an ``AnteroomError``, whose message
    the page shows, or :class:`FormProblem`)."""

    name: str
    template: str
    actions: frozenset[str]
    context: Callable[..., Mapping[str, Any]]
    act: Callable[..., str]


dashboard_panels: list[DashboardPanel] = []


class FormProblem(ValueError):
    """A panel's POST did not validate; the message says why (the page adds "Nothing was
    changed.")."""


def snapshot(key: str, *, room: Room, moderator: bool, **reader: Any) -> Any:
    """The value of an app-owned snapshot key (``[]`` when no app provides it). ``reader``
    says more about who reads it (``breakout_id``: the breakout room it is in)."""
    field = snapshot_fields.get(key)
    return field(room=room, moderator=moderator, **reader) if field is not None else []


def left_breakout(*, participant: Participant, breakout_id: Any) -> None:
    for hook in on_left:
        hook(participant=participant, breakout_id=breakout_id)


def run_sweepers(*, now: datetime) -> dict[str, int]:
    return {name: sweeper(now=now) for name, sweeper in sweepers.items()}


def frames_after_join(*, parent: Room, participant_id: str) -> list[Mapping[str, Any]]:
    return [
        frame
        for frames in join_frames
        for frame in frames(parent=parent, participant_id=participant_id)
    ]


def panel_for(action: str) -> DashboardPanel | None:
    return next((p for p in dashboard_panels if action in p.actions), None)


def panel_actions() -> list[str]:
    return [a for p in dashboard_panels for a in sorted(p.actions)]


__all__ = [
    "DashboardPanel",
    "FormProblem",
    "Handler",
    "dashboard_panels",
    "frames_after_join",
    "join_frames",
    "left_breakout",
    "on_left",
    "panel_actions",
    "panel_for",
    "run_sweepers",
    "snapshot",
    "snapshot_fields",
    "sweepers",
    "ws_handlers",
]

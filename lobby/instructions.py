"""What a group tells the consumers in it: a closed set of typed instructions.

Services (through ``events``: ``send_on_commit``, ``send_many_on_commit``, breakouts'
``Outbox``) build one of the classes below; the channel layer carries it as a plain message
(``to_message``: msgpack for Redis, so no objects on the wire); each consumer turns the message
back into its instruction with ``parse`` and handles it with one ``match`` over the closed
union ``Instruction``. A message that is none of them raises ``UnknownInstruction``: it is a
bug (or a process of another version), never something to skip quietly.

The wire form keeps the key names the delivery engine reads (``events``: ``action`` tags the
kind, ``""`` for a plain relay; ``frames``, or ``texts`` once pre-encoded; ``order`` of a queue
broadcast), so what reaches a browser is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from . import frames as _frames

if TYPE_CHECKING:
    from .errors import AnteroomError

# The consumer method that handles every instruction (``RoomConsumer.anteroom_event``).
EVENT = "anteroom.event"

# A frame as sent to the browser (a ``lobby.frames`` TypedDict, or a breakout / media frame).
Frame = Mapping[str, Any]


class UnknownInstruction(ValueError):
    """A channel-layer message that is not one of this module's instructions."""


@dataclass(frozen=True)
class _Frames:
    """Frames the consumer relays to its socket, in order: ``frames`` as dicts, or ``texts``
    already JSON-encoded (``events`` pre-encodes big snapshots shared by many sockets)."""

    frames: Sequence[Frame] = ()
    texts: Sequence[str] = ()


@dataclass(frozen=True)
class Deliver(_Frames):
    """Relay the frames. A socket of ``except_connection``, or of ``except_participant``, skips
    them (the joiner learns of its own arrival from ``joined``). ``to_waiting`` marks a relay
    to a waiting audience (the lobby, one knock: set by ``events`` from the group); a socket
    that waits relays no other, not even one queued for it before it left the room."""

    kind: ClassVar[str] = ""
    except_connection: str | None = None
    except_participant: str | None = None
    to_waiting: bool = False


@dataclass(frozen=True)
class Admit(_Frames):
    """A waiting guest was admitted: relay its ``joined``, leave the waiting groups, join the
    member groups as ``participant_id`` with ``role``."""

    kind: ClassVar[str] = "admitted"
    participant_id: str = ""
    role: str = ""
    room_id: str = ""


@dataclass(frozen=True)
class Cancel(_Frames):
    """The guest's own knock was canceled (its ``cancel``): relay ``canceled``, leave the
    waiting groups; the socket stays open and may knock again."""

    kind: ClassVar[str] = "canceled"


@dataclass(frozen=True)
class ToLobby(_Frames):
    """A participant was sent back to the waiting room: relay ``waiting``, leave every group,
    wait as ``request_id`` at ``position`` of ``waiting``."""

    kind: ClassVar[str] = "to-lobby"
    request_id: str = ""
    position: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class Regroup(_Frames):
    """A breakout move: relay the frames, leave the groups ``discard``, join ``add``; the socket
    is now in breakout ``breakout_id`` (``None``: the parent)."""

    kind: ClassVar[str] = "groups"
    add: Sequence[str] = ()
    discard: Sequence[str] = ()
    breakout_id: str | None = None


@dataclass(frozen=True)
class Close(_Frames):
    """Relay the frames (the error), leave every group and close with ``close_code``; a socket
    of ``except_connection`` (the one that replaced the others) stays."""

    kind: ClassVar[str] = "close"
    close_code: int = 4400
    except_connection: str | None = None

    @classmethod
    def for_error(cls, err: AnteroomError, *, except_connection: str | None = None) -> Close:
        """The envelope of every socket-ending outcome (denied, timed out, replaced, revoked,
        removed, room deleted): its ``error`` frame, then its close code."""
        return cls(
            frames=[_frames.error(err.code, err.message)],
            close_code=err.close_code or 4400,
            except_connection=except_connection,
        )


@dataclass(frozen=True)
class Queue:
    """A lobby's queue changed: each waiting socket works out its own ``queue-position`` from
    ``order`` (request ids, oldest first). ``order`` is ``None`` until the delivery engine reads
    it, once per broadcast (``events.queue_changed``)."""

    kind: ClassVar[str] = "queue"
    room_id: str = ""
    order: Sequence[str] | None = None


@dataclass(frozen=True)
class StaffCheck:
    """A staff user's sessions changed: each socket re-checks its session; a socket of
    ``ended_session`` (a digest) closes at once."""

    kind: ClassVar[str] = "staff-check"
    ended_session: str = ""


Instruction = Deliver | Admit | Cancel | ToLobby | Regroup | Close | Queue | StaffCheck

KINDS: dict[str, type[Instruction]] = {
    cls.kind: cls for cls in (Deliver, Admit, Cancel, ToLobby, Regroup, Close, Queue, StaffCheck)
}
_FIELDS: dict[type[Any], frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls)) for cls in KINDS.values()
}
# Optional fields left out of the wire form when unset, so a plain relay stays
# ``{"type", "frames", "action"}`` (``events`` merges consecutive plain relays to one group).
_OMIT_UNSET = {
    "texts": (),
    "except_connection": None,
    "except_participant": None,
    "to_waiting": False,
}


def to_message(instruction: Instruction) -> dict[str, Any]:
    """The channel-layer message of an instruction (plain JSON / msgpack types only)."""
    message: dict[str, Any] = {"type": EVENT, "action": instruction.kind}
    for name in _FIELDS[type(instruction)]:
        value = getattr(instruction, name)
        if name in _OMIT_UNSET and value == _OMIT_UNSET[name]:
            continue
        if name == "order" and value is None:
            continue
        message[name] = list(value) if isinstance(value, tuple) else value
    return message


def parse(message: Mapping[str, Any]) -> Instruction:
    """The instruction a channel-layer message carries. Raises ``UnknownInstruction`` for an
    unknown kind, a missing kind, a key no instruction of that kind has, or a wrong type."""
    if message.get("type") != EVENT:
        raise UnknownInstruction(f"not an instruction message: type {message.get('type')!r}")
    kind = message.get("action")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UnknownInstruction(f"unknown instruction {kind!r}")
    values = {k: v for k, v in message.items() if k not in ("type", "action")}
    extra = set(values) - _FIELDS[cls]
    if extra:
        raise UnknownInstruction(f"{cls.__name__} has no field(s) {sorted(extra)}")
    instruction = cls(**values)
    _check_types(instruction)
    return instruction


def _check_types(i: Instruction) -> None:
    ok = True
    if isinstance(i, (Deliver, Admit, Cancel, ToLobby, Regroup, Close)):
        ok = _list_of(i.frames, dict) and _list_of(i.texts, str)
    match i:
        case Deliver():
            ok = ok and _opt_str(i.except_connection) and _opt_str(i.except_participant)
            ok = ok and type(i.to_waiting) is bool
        case Admit():
            ok = ok and all(isinstance(v, str) for v in (i.participant_id, i.role, i.room_id))
        case ToLobby():
            ok = ok and isinstance(i.request_id, str)
            ok = ok and all(type(v) is int for v in (i.position, i.waiting))
        case Regroup():
            ok = ok and _list_of(i.add, str) and _list_of(i.discard, str)
            ok = ok and _opt_str(i.breakout_id)
        case Close():
            ok = ok and type(i.close_code) is int and _opt_str(i.except_connection)
        case Queue():
            ok = isinstance(i.room_id, str) and (i.order is None or _list_of(i.order, str))
        case StaffCheck():
            ok = isinstance(i.ended_session, str)
        case Cancel():
            pass
    if not ok:
        raise UnknownInstruction(f"{type(i).__name__} with a field of the wrong type")


def _list_of(value: Any, item: type) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, item) for v in value)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


__all__ = [
    "EVENT",
    "KINDS",
    "Admit",
    "Cancel",
    "Close",
    "Deliver",
    "Instruction",
    "Queue",
    "Regroup",
    "StaffCheck",
    "ToLobby",
    "UnknownInstruction",
    "parse",
    "to_message",
]

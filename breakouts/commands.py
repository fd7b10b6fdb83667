"""Strict schemas of the breakout messages (SPEC §3) and of breakouts' REST bodies (SPEC §4).

The same rules as :mod:`lobby.commands` (strict types, unknown fields refused, ``BAD_REQUEST``).
A ``room_id`` that is not a UUID names no breakout room: ``BREAKOUT_NOT_FOUND``, as for a UUID
of no room. Capacity (``participants``: 2 … parent ``max_active_talkers`` - 1,
``BREAKOUT_INVALID_SIZE``) and the 10-room limit (``max_rooms``, ``BREAKOUT_LIMIT``) depend on
the parent room, so the services check them. :func:`lobby.commands.register` adds the messages
to the socket's union at start-up (``BreakoutsConfig.ready``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from lobby.commands import Command, Message, Role, reference, uuid_schema
from lobby.errors import BreakoutNotFound

MAX_BREAKOUTS = 10
DURATION_MIN, DURATION_MAX = 60, 14_400
MAX_EXTEND = 14_400
MAX_BROADCAST = 1000
MAX_CLIENTS = 1000


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))  # duplicates are dropped, first place kept


BreakoutRef = Annotated[
    uuid.UUID,
    BeforeValidator(reference(BreakoutNotFound)),
    uuid_schema("A breakout room's id."),
]
ParticipantId = Annotated[str, Field(min_length=1)]
ParticipantIds = Annotated[
    list[ParticipantId], Field(min_length=1, max_length=MAX_CLIENTS), AfterValidator(_unique)
]
Duration = Annotated[int, Field(ge=DURATION_MIN, le=DURATION_MAX)]
ExtendSeconds = Annotated[int, Field(ge=1, le=MAX_EXTEND)]
BroadcastText = Annotated[str, Field(max_length=MAX_BROADCAST), AfterValidator(_not_blank)]


# Bodies (REST) that the socket messages share -----------------------------------------------


class BreakoutOptions(Command):
    """The rooms to create: ``participants`` per room, up to ``max_rooms``, the four flags and
    an optional timer."""

    participants: int = Field(
        description="Capacity of each room: 2 to the parent's max_active_talkers - 1."
    )
    audio: bool = True
    video: bool = True
    canvas: bool = False
    share: bool = False
    max_rooms: Annotated[int, Field(ge=1)] = Field(
        default=1, description=f"At most {MAX_BREAKOUTS} breakout rooms per room at once."
    )
    duration: Duration | None = Field(
        default=None, description="Seconds until everyone returns to the parent (a timer)."
    )

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``breakout_rooms_create`` (and of create-and-invite)."""
        return {name: getattr(self, name) for name in BreakoutOptions.model_fields}


# The flags of a breakout room and their defaults.
FLAGS: dict[str, bool] = {
    name: BreakoutOptions.model_fields[name].default
    for name in ("audio", "video", "canvas", "share")
}


class BreakoutCreateBody(BreakoutOptions):
    """``POST /rooms/{name}/breakouts``: create rooms; with ``invite: true`` create and spread
    the parent's participants over them (``force_join`` moves them at once)."""

    invite: bool = False
    force_join: bool = Field(default=False, description="Only with invite: true.")

    @model_validator(mode="after")
    def _force_join_needs_invite(self) -> Self:
        if "force_join" in self.model_fields_set and not self.invite:
            raise ValueError("force_join needs invite: true")
        return self

    def command(self) -> BreakoutCreate | BreakoutCreateAndInvite:
        """The socket message that does the same."""
        options = self.options()
        if self.invite:
            return BreakoutCreateAndInvite(force_join=self.force_join, **options)
        return BreakoutCreate(**options)


class BreakoutInviteBody(Command):
    """Invite present participants of the parent into one room (``force_join``: move them)."""

    room_id: BreakoutRef
    clients: ParticipantIds = Field(description="1 to 1000 participant ids.")
    force_join: bool = False


class BreakoutMoveBody(Command):
    """Move a participant into a breakout room, or back to the parent (``room_id`` null)."""

    participant_id: ParticipantId
    room_id: BreakoutRef | None


class BreakoutExtendBody(Command):
    """Push back the timer of one room, or (``room_id`` left out or null) of every timed one."""

    room_id: BreakoutRef | None = None
    seconds: ExtendSeconds


class BreakoutBroadcastBody(Command):
    """A message to the members of every breakout room."""

    text: BroadcastText = Field(description="1 to 1000 characters, not only spaces.")


# Socket messages -----------------------------------------------------------------------------


class BreakoutCreate(BreakoutOptions, Message):
    type: Literal["breakout-create"] = "breakout-create"


class BreakoutCreateAndInvite(BreakoutOptions, Message):
    type: Literal["breakout-create-and-invite"] = "breakout-create-and-invite"
    force_join: bool = False


class BreakoutInvite(BreakoutInviteBody, Message):
    type: Literal["breakout-invite"] = "breakout-invite"


class BreakoutJoin(Message):
    type: Literal["breakout-join"] = "breakout-join"
    room_id: BreakoutRef
    role: Role | None = None  # checked against the participant's own role


class BreakoutReject(Message):
    type: Literal["breakout-reject"] = "breakout-reject"
    room_id: BreakoutRef


class BreakoutLeave(Message):
    type: Literal["breakout-leave"] = "breakout-leave"


class BreakoutClearAll(Message):
    type: Literal["breakout-clear-all"] = "breakout-clear-all"


class BreakoutDestroyAll(Message):
    type: Literal["breakout-destroy-all"] = "breakout-destroy-all"


class BreakoutExtend(BreakoutExtendBody, Message):
    type: Literal["breakout-extend"] = "breakout-extend"


class BreakoutBroadcast(BreakoutBroadcastBody, Message):
    type: Literal["breakout-broadcast"] = "breakout-broadcast"


class BreakoutHelp(Message):
    type: Literal["breakout-help"] = "breakout-help"


class BreakoutHelpAnswer(Message):
    """A moderator answers a breakout member's pending help request."""

    type: Literal["breakout-help-answer"] = "breakout-help-answer"
    participant_id: Annotated[str, Field(min_length=1, max_length=128)]


class BreakoutHelpJoin(Message):
    """A moderator answers a breakout member's pending help request by joining its room."""

    type: Literal["breakout-help-join"] = "breakout-help-join"
    participant_id: Annotated[str, Field(min_length=1, max_length=128)]


class BreakoutMove(BreakoutMoveBody, Message):
    type: Literal["breakout-move"] = "breakout-move"


BreakoutMessage = Annotated[
    BreakoutCreate
    | BreakoutCreateAndInvite
    | BreakoutInvite
    | BreakoutJoin
    | BreakoutReject
    | BreakoutLeave
    | BreakoutClearAll
    | BreakoutDestroyAll
    | BreakoutExtend
    | BreakoutBroadcast
    | BreakoutHelp
    | BreakoutHelpAnswer
    | BreakoutHelpJoin
    | BreakoutMove,
    Field(discriminator="type"),
]
BREAKOUT_MESSAGES: tuple[type[Message], ...] = (
    BreakoutCreate,
    BreakoutCreateAndInvite,
    BreakoutInvite,
    BreakoutJoin,
    BreakoutReject,
    BreakoutLeave,
    BreakoutClearAll,
    BreakoutDestroyAll,
    BreakoutExtend,
    BreakoutBroadcast,
    BreakoutHelp,
    BreakoutHelpAnswer,
    BreakoutHelpJoin,
    BreakoutMove,
)

"""One copy of each test factory: rooms, tokens, connections, knocks, joins, moderators, groups.

Every factory goes through the services (never ``objects.create``), as a client would, so a
factory cannot build a state the product could not reach. Import from here
(``from tests.factories import make_room, knock``); ``tests.conftest`` keeps only fixtures.
Django-dependent imports are inside the functions: conftest modules import this module before
Django is set up.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lobby import services
    from lobby.models import Participant, Room

_unique = itertools.count(1)


# Rooms and tokens ----------------------------------------------------------------------------


def make_room(name: str = "clinic", **fields: Any) -> Any:
    """A room, created by the service (typed ``Any`` so tests read optional fields freely)."""
    from lobby.services import Actor, room_create

    return room_create(actor=Actor.command("tests"), name=name, **fields)


def make_token(room: str | None = "clinic", **claims: Any) -> str:
    from lobby.tokens import mint_token

    return mint_token(room=room, **claims)


def forge(
    payload: dict[str, Any], key: str | bytes | None = None, alg: str = "HS256", headers=None
) -> str:
    """A hand-made JWT (tests only; the project mints through lobby.tokens)."""
    import jwt
    from django.conf import settings

    base = {"aud": "anteroom", "exp": int(time.time()) + 3600}
    return jwt.encode(
        {**base, **payload},
        key if key is not None else settings.ANTEROOM_SIGNING_KEY,
        algorithm=alg,
        headers=headers,
    )


# Connections, knocks and joins (no socket: the services the consumer calls) ------------------


def conn(server: str = "srv", *, browser: str = "", address: str = "") -> services.Connection:
    """A socket's identity: a fresh connection id on ``server``. No browser key and no address
    by default (so no per-browser or per-address limit applies)."""
    from lobby import services

    return services.Connection(
        server_id=server,
        connection_id=uuid.uuid4().hex,
        browser_key=browser,
        client_address=address,
    )


def distinct_conn(server: str = "srv") -> services.Connection:
    """A connection from a browser and an address of its own (never two alike in a test run):
    a knock from it shares no rate limit with any other."""
    n = next(_unique)
    return conn(server, browser=f"browser-{n}", address=f"10.7.{n // 250 % 250}.{n % 250}")


def knock(
    room: Room | str,
    *,
    name: str = "Pat",
    token: str | None = None,
    metadata: Any = None,
    c: services.Connection | None = None,
    resume: str | None = None,
) -> services.Waiting:
    """A guest knocks (through ``join_plan``, which must send it to the lobby)."""
    from lobby import services

    room_name = room if isinstance(room, str) else room.name
    plan = services.join_plan(room_name=room_name, token=token, name=name, resume=resume)
    assert plan.level == "lobby", plan.level
    return services.entry_request_knock(plan=plan, conn=c or conn(), metadata=metadata)


def join(
    room: Room | str, token: str | None = None, c: services.Connection | None = None, **plan: Any
) -> services.Joined:
    """Someone with full access joins (``join_plan`` must let them in)."""
    from lobby import services

    room_name = room if isinstance(room, str) else room.name
    p = services.join_plan(room_name=room_name, token=token, **plan)
    assert p.level == "full", p.level
    return services.participant_join(plan=p, conn=c or conn())


def present(
    room: Room, sub: str, *, name: str | None = None, c: services.Connection | None = None, **claims
) -> Participant:
    """``sub`` holds a personal token for ``room`` and is in it (named ``Sub`` unless given)."""
    token = make_token(room=room.name, sub=sub, name=name or sub.title(), **claims)
    return join(room, token, c).participant


def moderator(room: Room, sub: str = "dr", name: str = "Dr") -> services.Actor:
    """An owner present in ``room``, as the actor moderator services take."""
    from lobby import services

    return services.Actor.participant(present(room, sub, name=name, owner=True))


# Groups and what was sent to them ------------------------------------------------------------


def _pk(room: Room | Any) -> Any:
    from lobby.models import Room

    return room.pk if isinstance(room, Room) else room


def mods(room: Room | Any) -> str:
    from lobby import events

    return events.mods_group(_pk(room))


def members(room: Room | Any) -> str:
    """The member group of a room (a Room, or a room id)."""
    from lobby import events

    return events.members_group(_pk(room))


def lobby(room: Room | Any) -> str:
    from lobby import events

    return events.lobby_group(_pk(room))


def frames_to(sent: Any, group: str) -> list[dict[str, Any]]:
    """Every frame the ``sent`` capture saw go to ``group``, in order."""
    return [f for m in sent.to(group) for f in sent.frames_of(m)]

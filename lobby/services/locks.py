"""The locks that serialise a room's knocks, joins and bulk decisions, and what they guard."""

from __future__ import annotations

import hashlib
import uuid

from django.db import connection

from ..models import Participant, Room


def lock_lobby(room_id: uuid.UUID) -> None:
    """Serialise the knocks and bulk decisions of one room (on SQLite, BEGIN IMMEDIATE already
    serialises every writer and this is a no-op).

    FOR NO KEY UPDATE, not FOR UPDATE: inserting a row that references the room (a participant,
    an audit event) takes FOR KEY SHARE on it, which FOR UPDATE blocks. A single admit holding its
    request row would wait for the room while admit-all, holding the room, waits for that row:
    a deadlock on PostgreSQL.
    """
    if connection.vendor == "sqlite":
        return  # the transaction's BEGIN IMMEDIATE holds the database's only write lock
    with connection.cursor() as cursor:
        cursor.execute(_ROOM_LOCK_SQL, [room_id])


def lock_knock(room_id: uuid.UUID, limit_key: tuple[str, str] | None) -> None:
    """``lock_lobby``, then ``lock_limit_key`` for ``limit_key`` (``(kind, key)``; None: no
    limit spans rooms) — in that order, as one statement on PostgreSQL: the advisory lock is
    taken above the row lock (a subquery with ``FOR NO KEY UPDATE`` is never flattened), so
    only a knock holding the room asks for the key, as ``lock_limit_key`` requires. What the
    knock reads under the locks must be a *later* statement: under READ COMMITTED a statement
    sees the snapshot taken when it began, before any wait for a lock."""
    if connection.vendor != "postgresql":
        return  # BEGIN IMMEDIATE already serialises every writer
    if limit_key is None:
        lock_lobby(room_id)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _ROOM_AND_KEY_LOCK_SQL, [LIMIT_LOCK_CLASS, _key_lock_id(*limit_key), room_id]
        )


def present_ids(room_id: uuid.UUID) -> set[str]:
    return set(
        Participant.objects.filter(room_id=room_id)
        .exclude(status=Participant.Status.LEFT)
        .values_list("participant_id", flat=True)
    )


def free_places(room: Room) -> int | None:
    """How many more may enter ``room`` (None: no cap), for a caller holding ``lock_lobby``.
    The cap and the count are read under the lock (on SQLite the writer lock), so two joins
    cannot both take the last place. An uncapped room (as read before the lock) costs nothing."""
    if room.max_participants is None:
        return None
    cap = Room.objects.filter(pk=room.pk).values_list("max_participants", flat=True).first()
    if cap is None:
        return None
    present = Participant.objects.filter(room=room).exclude(status=Participant.Status.LEFT)
    return max(0, cap - present.count())


def lock_limit_key(kind: str, key: str) -> None:
    """Serialise the knocks counted under one rate-limit key across *rooms* (a token, a browser):
    the room lock only serialises one room's knocks, so on PostgreSQL two knocks with one token
    in two rooms could both read "2 of 3" and both insert. A transaction-scoped advisory lock on
    a hash of the key (released at commit) makes the count and the insert one step. Advisory,
    not a row lock: a hand-made token (or a browser) has no row to lock, and making one per key
    would fill a table with lock rows. On SQLite, BEGIN IMMEDIATE already serialises writers.
    Taken after the room lock, always in this order, so two knocks cannot deadlock."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [LIMIT_LOCK_CLASS, _key_lock_id(kind, key)]
        )


def _key_lock_id(kind: str, key: str) -> int:
    digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


# pg_advisory_xact_lock(int4, int4)'s first half: Anteroom's knock-limit keys.
LIMIT_LOCK_CLASS = 0x414E_4B4C  # "ANKL"

_ROOM = Room._meta.db_table
_ROOM_LOCK_SQL = f'SELECT 1 FROM "{_ROOM}" WHERE "id" = %s FOR NO KEY UPDATE'  # noqa: S608
_ROOM_AND_KEY_LOCK_SQL = f"SELECT pg_advisory_xact_lock(%s, %s) FROM ({_ROOM_LOCK_SQL}) AS r"  # noqa: S608

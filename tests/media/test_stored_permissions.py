"""``lobby.media.stored_permissions``: what a media server's periodic re-enforcement (the Janus
reconcile) re-applies. It is the database's word, so a participant removed by any process is
gone from it at once."""

from __future__ import annotations

import uuid

import pytest

from lobby.media import stored_permissions
from lobby.services import moderation
from tests.factories import make_room, moderator, present

pytestmark = pytest.mark.django_db

FULL = {"audio": True, "video": True, "screen": True, "receive": True}


def test_a_removed_participant_is_gone_from_the_stored_permissions():
    room = make_room("clinic")
    actor = moderator(room)
    present(room, "a")
    present(room, "b")
    key = str(room.pk)
    assert set(stored_permissions([key])[key] or {}) == {"dr", "a", "b"}

    moderation.participant_remove(room=room, actor=actor, participant_id="b")

    now = stored_permissions([key])[key]
    assert now is not None and set(now) == {"dr", "a"}
    assert now["dr"] == FULL


def test_a_paused_room_receives_nothing_and_unknown_rooms_are_gone():
    room = make_room("clinic")
    actor = moderator(room)
    present(room, "a")
    from lobby import services

    services.room_set_state(room=room, actor=actor, paused=True)
    key = str(room.pk)
    assert stored_permissions([key])[key]["a"]["receive"] is False  # type: ignore[index]
    missing, garbage = str(uuid.uuid4()), "room-x"
    assert stored_permissions([missing, garbage]) == {missing: None, garbage: None}

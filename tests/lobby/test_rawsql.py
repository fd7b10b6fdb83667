"""lobby/rawsql.py writes the row the ORM would write (the knock and its audit row use it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.forms.models import model_to_dict

from lobby import rawsql
from lobby.models import AuditEvent, EntryRequest
from tests.factories import make_room

pytestmark = pytest.mark.django_db


def _knock(room, participant_id: str, **fields):
    return EntryRequest(
        id=uuid.uuid4(),
        room=room,
        participant_id=participant_id,
        name="Zoë «quoted» 'name'",
        metadata={"plan": "ünïcode", "n": [1, 2.5, None, True]},
        requested_at=datetime(2026, 12, 1, 20, 0, 0, 0, tzinfo=UTC),
        expires_at=datetime(2026, 12, 1, 20, 5, 0, 123456, tzinfo=UTC),
        token_expires_at=None,
        resume_hash="h" * 64,
        **fields,
    )


def _stored(model, pk):
    row = model_to_dict(model.objects.get(pk=pk))
    row.pop("id", None)
    return row


def test_a_plain_sql_row_is_the_row_save_writes():
    room = make_room("clinic", privacy="private", enable_knocking=True)
    by_orm = _knock(room, "a", token_key="k", client_address="10.0.0.1")
    by_orm.save(force_insert=True)
    by_sql = _knock(room, "b", token_key="k", client_address="10.0.0.1")
    rawsql.insert(by_sql)
    assert not by_sql._state.adding
    got, want = _stored(EntryRequest, by_sql.pk), _stored(EntryRequest, by_orm.pk)
    assert got.pop("participant_id") == "b" and want.pop("participant_id") == "a"
    assert got == want
    assert EntryRequest.objects.get(pk=by_sql.pk).expires_at == by_sql.expires_at


def test_an_audit_row_without_a_room_and_with_data():
    made = AuditEvent(room=None, at=datetime(2026, 12, 1, tzinfo=UTC), actor="x", action="knock")
    made.data = {"reason": "ä"}
    rawsql.insert(made)
    (row,) = AuditEvent.objects.all()
    assert (row.room_id, row.action, row.data, row.at) == (None, "knock", {"reason": "ä"}, made.at)

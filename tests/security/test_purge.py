"""``manage.py purge``: retention of resolved entry requests and audit rows."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from lobby import clock, services
from lobby.models import AuditEvent, EntryRequest
from tests.factories import make_room
from tests.security.helpers import decide, knock

pytestmark = pytest.mark.django_db

DAY = 86400


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(db):
    """40 days ago: one admitted, one denied, one canceled. Today: one admitted, one waiting."""
    room = make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=600)
    clock.advance(-40 * DAY)
    old = [knock(room, name=f"old{i}", address=f"10.0.0.{i}") for i in range(3)]
    decide(room, old[0].request.id)
    decide(room, old[1].request.id, "denied")
    services.entry_request_cancel(room=room, request_id=old[2].request.id)
    clock.reset()
    recent = knock(room, name="recent", address="10.0.1.1")
    decide(room, recent.request.id)
    waiting = knock(room, name="waiting", address="10.0.1.2")
    return {"old": old, "recent": recent, "waiting": waiting}


def test_dry_run_counts_and_deletes_nothing(history):
    out = purge("--dry-run")
    assert "entry requests would delete: 3" in out
    assert "audit events would delete: 6" in out  # 3 knocks + 3 resolutions
    assert EntryRequest.objects.count() == 5
    assert AuditEvent.objects.count() == 10  # and today's room-create


def test_purge_removes_only_old_resolved_rows(history):
    out = purge()
    assert "Retention 30 days" in out
    assert "entry requests deleted: 3" in out
    assert "audit events deleted: 6" in out
    left = set(EntryRequest.objects.values_list("name", flat=True))
    assert left == {"recent", "waiting"}
    assert AuditEvent.objects.count() == 4  # room-create (today), recent knock + admit, waiting
    # Running it again finds nothing more.
    assert "entry requests deleted: 0" in purge()


def test_pending_requests_are_never_purged(history):
    clock.advance(400 * DAY)  # the waiting one is long past its deadline, but not swept
    out = purge("--days", "1")
    assert "entry requests deleted: 4" in out
    assert list(EntryRequest.objects.values_list("name", "status")) == [("waiting", "pending")]


def test_retention_setting_and_days_option(history):
    with override_settings(ANTEROOM_RETENTION_DAYS=60):
        assert "entry requests deleted: 0" in purge()
    assert "entry requests deleted: 3" in purge("--days", "39")
    with pytest.raises(CommandError):
        purge("--days", "-1")

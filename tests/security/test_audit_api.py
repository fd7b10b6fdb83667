"""The audit trail as operators read it: REST JSON and CSV export, and lobby analytics."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from lobby import clock, services
from lobby.analytics import percentile, room_analytics
from lobby.models import AuditEvent
from tests.factories import make_room, make_token
from tests.security.helpers import decide, knock

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=600)


def _story(room):
    """Five guests: three admitted after 10, 20 and 40 s, one denied, one gives up. The denied
    one's participant id (from its token) is a spreadsheet formula."""
    w = [knock(room, name=f"guest{i}", address=f"10.0.0.{i}") for i in range(3)]
    formula = make_token(room="clinic", sub="=2+5", join_policy={"mode": "ask"})
    w.append(knock(room, name="guest3", token=formula))
    w.append(knock(room, name="guest4", address="10.0.0.4"))
    clock.advance(10)
    decide(room, w[0].request.id)
    clock.advance(10)
    decide(room, w[1].request.id)
    decide(room, w[3].request.id, "denied", reason="=HYPERLINK(evil)")
    services.entry_request_cancel(room=room, request_id=w[4].request.id)
    clock.advance(20)
    decide(room, w[2].request.id)
    return w


def test_audit_json_lists_every_decision_with_who_and_outcome(api, clinic):
    w = _story(clinic)
    body = api.get("/api/v1/rooms/clinic/audit").json()
    assert body["total_count"] == 11 == len(body["data"])
    actions = [(e["action"], e["request_id"]) for e in body["data"]]
    # The trail starts with the room's creation (by the test's command actor), then the knocks.
    assert actions[0] == ("room-create", None)
    assert body["data"][0]["actor"] == "command:tests"
    assert actions[1:6] == [("knock", str(x.request.id)) for x in w]
    denied = next(e for e in body["data"] if e["action"] == "denied")
    assert denied["actor"] == "api:ops"
    assert denied["subject"] == w[3].request.participant_id == "=2+5"
    assert denied["data"] == {"reason": "=HYPERLINK(evil)"}
    cancel = next(e for e in body["data"] if e["action"] == "cancel")
    assert cancel["data"] == {"reason": "aborted"}
    assert [e["at"] for e in body["data"]] == sorted(e["at"] for e in body["data"])


def test_audit_since_limit_and_offset(api, clinic):
    _story(clinic)
    start = AuditEvent.objects.order_by("at")[0].at
    since = (start + timedelta(seconds=15)).isoformat().replace("+00:00", "Z")
    body = api.get("/api/v1/rooms/clinic/audit", {"since": since}).json()
    # Only what happened after 15 s: admit (20 s), deny, cancel, admit (40 s).
    assert [e["action"] for e in body["data"]] == ["admitted", "denied", "cancel", "admitted"]
    page = api.get("/api/v1/rooms/clinic/audit", {"limit": 3, "offset": 3})
    assert page.json()["total_count"] == 11  # room-create, 5 knocks, 5 outcomes
    assert len(page.json()["data"]) == 3
    assert page["X-Total-Count"] == "11"
    # An unencoded "+00:00" arrives as a space; it still parses.
    plus = (start + timedelta(seconds=15)).isoformat()
    assert api.get(f"/api/v1/rooms/clinic/audit?since={plus}").json()["total_count"] == 4


@pytest.mark.parametrize("how", ["query", "accept"])
def test_audit_csv_export_has_a_header_and_defuses_formulas(api, clinic, how):
    _story(clinic)
    if how == "query":
        resp = api.get("/api/v1/rooms/clinic/audit?format=csv")
    else:
        resp = api.get("/api/v1/rooms/clinic/audit", HTTP_ACCEPT="text/csv")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/csv")
    assert "attachment" in resp["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.content.decode())))
    assert rows[0] == ["at", "room", "actor", "action", "request_id", "subject", "data"]
    assert len(rows) == 12  # header, room-create, 5 knocks, 5 outcomes
    denied = next(r for r in rows if r[3] == "denied")
    assert denied[2] == "api:ops"
    # The guest's id starts with "=": a spreadsheet must not run it as a formula.
    assert denied[5] == "'=2+5"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "HYPERLINK(evil)" in denied[6]


def test_audit_errors(api, client, clinic):
    assert api.get("/api/v1/rooms/clinic/audit", {"since": "yesterday"}).status_code == 400
    assert api.get("/api/v1/rooms/clinic/audit", {"limit": "-1"}).status_code == 400
    assert api.get("/api/v1/rooms/nope/audit").json()["error"]["code"] == "ROOM_NOT_FOUND"
    csv_err = api.get("/api/v1/rooms/nope/audit?format=csv")
    assert csv_err.status_code == 404
    # Errors are JSON on every endpoint, also when CSV was asked for.
    assert csv_err["Content-Type"].startswith("application/json")
    assert csv_err.json()["error"]["code"] == "ROOM_NOT_FOUND"
    client.defaults.pop("HTTP_AUTHORIZATION")
    assert client.get("/api/v1/rooms/clinic/audit").status_code == 401
    assert client.get("/api/v1/rooms/clinic/analytics").status_code == 401


@pytest.fixture
def still_wall_clock(monkeypatch):
    """The project clock without the wall clock's own progress: only ``clock.advance`` moves
    it, so the story's 10/20/40 s are exact however slowly a loaded machine runs it."""
    from types import SimpleNamespace

    from django.utils import timezone

    start = timezone.now()
    monkeypatch.setattr(clock, "timezone", SimpleNamespace(now=lambda: start))


def test_analytics_time_to_admit_abandonment_and_peak_queue(api, clinic, still_wall_clock):
    _story(clinic)
    data = api.get("/api/v1/rooms/clinic/analytics").json()
    assert data["knocks"] == 5
    assert (data["admitted"], data["denied"], data["canceled"]) == (3, 1, 1)
    assert data["time_to_admit"]["count"] == 3
    assert data["time_to_admit"]["p50"] == pytest.approx(20, abs=0.5)
    assert data["time_to_admit"]["p90"] == pytest.approx(40, abs=0.5)
    assert data["time_to_admit"]["max"] == pytest.approx(40, abs=0.5)
    assert data["abandonment_rate"] == pytest.approx(1 / 5)
    assert data["cancel_reasons"] == {"aborted": 1}
    assert data["peak_queue"] == 5
    assert data["waiting"] == 0


def test_analytics_since_counts_guests_already_waiting(clinic):
    w = [knock(clinic, name=f"g{i}", address=f"10.0.1.{i}") for i in range(3)]
    clock.advance(30)
    since = clock.now()
    clock.advance(5)
    decide(clinic, w[0].request.id)
    knock(clinic, name="late", address="10.0.1.9")
    data = room_analytics(room=clinic, since=since)
    assert data["knocks"] == 1  # only the late one knocked inside the window
    assert data["admitted"] == 1
    assert data["time_to_admit"]["p50"] == pytest.approx(35, abs=0.5)  # knocked before `since`
    assert data["peak_queue"] == 3  # 3 waiting at `since`; one admitted, one more knocked
    assert data["waiting"] == 3
    assert data["abandonment_rate"] == 0


def test_analytics_timeouts_count_as_abandonment(clinic):
    knock(clinic, name="a", address="10.0.2.1")
    w = knock(clinic, name="b", address="10.0.2.2")
    decide(clinic, w.request.id)
    clock.advance(601)
    services.sweep()
    data = room_analytics(room=clinic)
    assert data["cancel_reasons"] == {"timeout": 1}
    assert data["abandonment_rate"] == 0.5
    assert room_analytics(room=make_room("empty"))["abandonment_rate"] is None


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 90)) == (5.0, 9.0)

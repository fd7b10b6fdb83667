"""Unattended knocks on a frozen clock (``lobby.clock``): the notice after N seconds with no
moderator connected anywhere, the escalation M seconds later, each once per knock, cancelled by a
moderator arriving or the knock ending; the dashboard shows that a notice went out."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client as HttpClient

from lobby import clock, services
from lobby.models import AlertEmail, KnockAlert, ServerProcess, WebhookEvent
from lobby.runtime.process import SERVER_ID
from lobby.webhooks import services as hooks
from lobby.webhooks.alerts import send_pending_emails
from tests.factories import make_room, make_token
from tests.webhooks.helpers import endpoint, knock, mod_actor, moderator_joins

N, M = 60, 120


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    """Time stands still except when a test moves ``lobby.clock``."""
    from types import SimpleNamespace

    from django.utils import timezone

    start = timezone.now()
    monkeypatch.setattr(clock, "timezone", SimpleNamespace(now=lambda: start))


@pytest.fixture
def room(db, settings):
    settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    room = make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=600)
    hooks.room_alerts_set(
        room=room,
        unattended_after=N,
        escalate_after=M,
        contacts=["desk@clinic.example", "nurse@clinic.example"],
        escalation_contacts=["head@clinic.example"],
    )
    endpoint("http://127.0.0.1:9/hook", ["knock.unattended"])
    return room


def at(seconds: float, start) -> None:
    """Move the clock to ``start + seconds`` and sweep, as every process's sweeper does."""
    target = start + timedelta(seconds=seconds)
    clock.advance((target - clock.now()).total_seconds())
    services.sweep()


def notices() -> list[tuple[str, int]]:
    """(guest name, level) of every unattended notice sent, from the webhook events."""
    out = []
    for body in WebhookEvent.objects.filter(type="knock.unattended").values_list("body", flat=True):
        data = json.loads(body)["data"]
        out.append((data["request"]["name"], data["notice"]["level"]))
    return out


def emails() -> list[tuple[str, list[str]]]:
    send_pending_emails(owner=SERVER_ID)
    return [(str(m.subject), sorted(m.to)) for m in mail.outbox]


def test_notice_after_n_seconds_then_escalation_after_m_more_each_once(room):
    r = knock(name="Ada")
    t0 = r.requested_at
    at(N - 1, t0)
    assert notices() == [] and emails() == []
    at(N, t0)
    assert notices() == [("Ada", "unattended")]
    sent = emails()
    assert sent == [
        (
            "[Anteroom] A guest is waiting in clinic and no moderator is connected",
            ["desk@clinic.example", "nurse@clinic.example"],
        )
    ]
    body = mail.outbox[0].body
    assert "Ada has been waiting 60 seconds" in body and "/r/clinic/dashboard/" in body
    assert r.resume_hash not in body
    at(N + M - 1, t0)
    assert len(notices()) == 1
    at(N + M, t0)
    assert notices() == [("Ada", "unattended"), ("Ada", "escalated")]
    assert emails()[1] == (
        "[Anteroom] Escalation: a guest is still waiting in clinic",
        ["head@clinic.example"],
    )
    for later in (N + M + 1, N + M + 60, 500):
        at(later, t0)
    assert len(notices()) == 2 and len(emails()) == 2  # each notice once
    alert = KnockAlert.objects.get()
    assert alert.level == 2 and alert.due_at is None


def test_a_connected_moderator_means_no_notice_and_the_clock_restarts_when_they_leave(room):
    mod, _ = moderator_joins()
    r = knock(name="Bo")
    t0 = r.requested_at
    at(N, t0)
    at(N + 30, t0)
    assert notices() == []
    # The moderator leaves at t0+100: the room is unattended from then on.
    at(100, t0)
    services.participant_leave(room=room, participant_id=mod.participant_id)
    at(100 + N - 1, t0)
    assert notices() == []
    at(100 + N, t0)
    assert notices() == [("Bo", "unattended")]


def test_a_moderator_arriving_cancels_the_escalation(room):
    r = knock(name="Cy")
    t0 = r.requested_at
    at(N, t0)
    assert notices() == [("Cy", "unattended")]
    at(N + 10, t0)
    moderator_joins()
    for later in (N + M, N + M + 1, 590):
        at(later, t0)
    assert notices() == [("Cy", "unattended")]
    assert [s for s, _ in emails()] == [
        "[Anteroom] A guest is waiting in clinic and no moderator is connected"
    ]


def test_a_moderator_arriving_before_the_deadline_cancels_the_notice(room):
    r = knock(name="Di")
    t0 = r.requested_at
    at(N - 10, t0)
    moderator_joins()
    for later in (N, N + M, 590):
        at(later, t0)
    assert notices() == [] and emails() == []


def test_the_knock_ending_cancels_everything(room):
    a = knock(name="Ed")
    b = knock(name="Flo")
    t0 = a.requested_at
    at(10, t0)
    services.entry_request_decide(room=room, request_id=a.id, actor=mod_actor(), outcome="admitted")
    services.entry_request_cancel(room=room, request_id=b.id)
    for later in (N, N + M, 590):
        at(later, t0)
    assert notices() == [] and emails() == []


def test_a_moderator_whose_socket_dropped_counts_as_gone_from_that_moment(room, settings):
    settings.ANTEROOM_DISCONNECT_GRACE = 300
    mod, c = moderator_joins()
    r = knock(name="Gus")
    t0 = r.requested_at
    at(20, t0)
    services.participant_disconnected(
        room=room, participant_id=mod.participant_id, connection_id=c.connection_id
    )
    at(20 + N - 1, t0)
    assert notices() == []
    at(20 + N, t0)
    assert notices() == [("Gus", "unattended")]  # still within its grace: not connected


def test_a_moderator_on_a_dead_process_does_not_count(room):
    """The moderator's socket is held by a process that was SIGKILLed: its heartbeat stops, the
    sweep marks its sockets disconnected from that heartbeat, and the clock runs from there."""
    now = clock.now()
    ServerProcess.objects.create(server_id="dead-proc", started_at=now, heartbeat_at=now)
    token = make_token(room="clinic", sub="olga", owner=True)
    plan = services.join_plan(room_name="clinic", token=token)
    services.participant_join(
        plan=plan, conn=services.Connection(server_id="dead-proc", connection_id=uuid.uuid4().hex)
    )
    r = knock(name="Hal")
    t0 = r.requested_at
    at(N - 1, t0)  # the dead process was declared dead at +10 s, from its heartbeat at t0
    assert notices() == []
    at(N, t0)
    assert notices() == [("Hal", "unattended")]


def test_rooms_without_alerts_and_alerts_turned_off(room):
    make_room("quiet", privacy="private", enable_knocking=True, knock_ttl=600)
    r = knock("quiet", name="Ivy")
    knock("clinic", name="Jo")
    hooks.room_alerts_set(room=room, unattended_after=None)
    for later in (N, N + M):
        at(later, r.requested_at)
    assert notices() == [] and not AlertEmail.objects.exists()


def test_two_sweepers_at_once_send_one_notice(room):
    r = knock(name="Kim")
    at(N - 1, r.requested_at)
    clock.advance(1)
    services.sweep()
    services.sweep(server_id="another-process")
    assert notices() == [("Kim", "unattended")]
    assert AlertEmail.objects.count() == 1


def test_the_dashboard_shows_that_a_notice_went_out(room, django_user_model):
    r = knock(name="Lou")
    knock(name="Max")
    at(N, r.requested_at)
    staff = django_user_model.objects.create_user("desk", password="x", is_staff=True)
    http = HttpClient()
    http.force_login(staff)
    page = http.get("/r/clinic/dashboard/").content.decode()
    assert page.count("contacts notified") == 2
    at(N + M, r.requested_at)
    page = http.get("/r/clinic/dashboard/").content.decode()
    assert page.count("escalated to the second contacts") == 2


def test_two_sweepers_that_read_the_deadline_at_once_send_one_notice(room):
    """Both sweepers read the alert before either moved its level (the race the conditional
    update on the level settles)."""
    from lobby.webhooks import alerts

    r = knock(name="Nia")
    at(1, r.requested_at)  # the alert row exists
    clock.advance(N)
    first = KnockAlert.objects.select_related("request", "room").get()
    second = KnockAlert.objects.select_related("request", "room").get()
    cfg = room.alerts
    presence = alerts.moderator_presence(room.pk)
    now = clock.now()
    assert alerts._evaluate(first, cfg, presence, now) == 1
    assert alerts._evaluate(second, cfg, presence, now) == 0
    assert notices() == [("Nia", "unattended")] and AlertEmail.objects.count() == 1

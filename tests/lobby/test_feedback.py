"""Feedback that tells the truth: when a rate-limited guest may knock again, what Admit all /
Deny all say with nobody waiting, and plurals."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from lobby import clock, services
from lobby.errors import EntryRateLimited
from lobby.models import EntryRequest
from tests.factories import conn, knock, make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True)


def test_too_many_knocks_says_when_to_try_again(clinic):
    browser = conn(browser="same-browser")
    for _ in range(3):
        w = knock(clinic, c=browser)
        services.entry_request_cancel(room=clinic, request_id=w.request.id)
        clock.advance(40)
    # The first of the three was 120 s ago: it leaves the 300 s window in 180 s.
    with pytest.raises(EntryRateLimited) as exc:
        knock(clinic, c=browser)
    assert exc.value.as_dict() == {
        "code": "ENTRY_RATE_LIMITED",
        "message": "Too many requests to join. Try again in 3 minutes.",
        "retry_after": 180,
    }
    assert EntryRequest.objects.count() == 3  # nothing stored for the refused knock
    clock.advance(179)
    with pytest.raises(EntryRateLimited) as exc:
        knock(clinic, c=browser)
    assert exc.value.extra["retry_after"] == 1
    assert exc.value.message == "Too many requests to join. Try again in 1 second."
    clock.advance(1)
    knock(clinic, c=browser)  # allowed again, as promised


def test_a_token_s_limit_says_when_too(clinic):
    token = make_token(room="clinic", join_policy={"mode": "ask"})
    for i in range(3):
        plan = services.join_plan(room_name="clinic", token=token, name=f"T{i}")
        services.entry_request_knock(plan=plan, conn=conn(browser=f"b{i}"))
        clock.advance(10)
    plan = services.join_plan(room_name="clinic", token=token, name="again")
    with pytest.raises(EntryRateLimited) as exc:
        services.entry_request_knock(plan=plan, conn=conn(browser="b9"))
    assert exc.value.extra["retry_after"] == 270


def owner_client(room_name: str = "clinic") -> Client:
    client = Client()
    token = make_token(room=room_name, sub="dr", name="Dr", owner=True)
    client.get(f"/r/{room_name}/dashboard/?t={token}")
    return client


@pytest.mark.parametrize("action", ["admit-all", "deny-all"])
def test_bulk_decisions_with_nobody_waiting_say_so(clinic, action):
    client = owner_client()
    data = {"action": action, "confirm": "on"}
    page = client.post("/r/clinic/dashboard/", data, follow=True).content.decode()
    done = "admitted" if action == "admit-all" else "denied"
    assert f"Nobody is waiting; nobody was {done}." in page
    assert f"0 guests {done}" not in page


def test_bulk_decisions_count_in_words(clinic):
    client = owner_client()
    knock(clinic, name="One", c=conn(browser="b1"))
    page = client.post("/r/clinic/dashboard/", {"action": "admit-all"}, follow=True)
    assert "1 guest admitted." in page.content.decode()
    knock(clinic, name="Two", c=conn(browser="b2"))
    knock(clinic, name="Three", c=conn(browser="b3"))
    page = client.post("/r/clinic/dashboard/", {"action": "deny-all", "confirm": "on"}, follow=True)
    assert "2 guests denied." in page.content.decode()


def test_deny_all_without_confirm_asks_and_denies_nobody(clinic):
    client = owner_client()
    knock(clinic, name="Una", c=conn(browser="b1"))
    resp = client.post("/r/clinic/dashboard/", {"action": "deny-all"})
    assert resp.status_code == 302 and resp["Location"].endswith("?confirm=deny-all")
    page = re.sub(r"<[^>]+>", "", client.get(resp["Location"]).content.decode())
    assert "Deny all 1 guest waiting?" in page
    assert EntryRequest.objects.get().status == "pending"

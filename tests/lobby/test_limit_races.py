"""Knock limits that span rooms are exact under real concurrency.

The per-token limit (3 knocks per token per 5 minutes) and the per-browser one count knocks in
every room. The room lock serialises one room's knocks only, so on PostgreSQL eight knocks with
one token into eight rooms at once all read "0 of 3" and all insert. These tests release real
threads together against the file database (SQLite in the first pass of the test command, where
BEGIN IMMEDIATE serialises writers; PostgreSQL in the second, where they interleave — checked to
fail there with the key lock removed).
"""

from __future__ import annotations

import uuid

import pytest

from lobby import services
from lobby.errors import EntryRateLimited
from lobby.models import EntryRequest
from tests.factories import make_room, make_token
from tests.support.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True)

ROOMS = 8


@pytest.fixture
def rooms(db) -> list[str]:
    names = [f"room{i}" for i in range(ROOMS)]
    for name in names:
        make_room(name, privacy="private", enable_knocking=True)
    return names


def _knock(room: str, *, token: str | None = None, browser: str = "") -> services.Waiting:
    plan = services.join_plan(room_name=room, token=token, name="Pat")
    conn = services.Connection(
        server_id="s",
        connection_id=uuid.uuid4().hex,
        browser_key=browser,
        client_address=f"10.5.0.{uuid.uuid4().int % 250}",
    )
    return services.entry_request_knock(plan=plan, conn=conn)


@pytest.mark.parametrize("round_", range(3))
def test_one_token_knocking_in_eight_rooms_at_once_gets_exactly_three(rooms, round_):
    # A token without a room claim is valid for every room (as Daily allows).
    token = make_token(room=None, sub=f"pat-{round_}", join_policy={"mode": "ask"})
    results = at_once(ROOMS, lambda i: _knock(rooms[i], token=token))
    stored = [r for r in results if isinstance(r, services.Waiting)]
    refused = [r for r in results if isinstance(r, EntryRateLimited)]
    assert (len(stored), len(refused)) == (3, ROOMS - 3), results
    assert EntryRequest.objects.count() == 3
    assert len(set(EntryRequest.objects.values_list("room_id", flat=True))) == 3


@pytest.mark.parametrize("round_", range(3))
def test_one_browser_knocking_in_eight_rooms_at_once_gets_exactly_three(rooms, round_):
    browser = uuid.uuid4().hex
    results = at_once(ROOMS, lambda i: _knock(rooms[i], browser=browser))
    stored = [r for r in results if isinstance(r, services.Waiting)]
    assert len(stored) == 3, results
    assert all(isinstance(r, EntryRateLimited) for r in results if r not in stored)
    assert EntryRequest.objects.filter(browser_key=browser).count() == 3

"""Names with no visible character are empty names, wherever a name is accepted.

A knock named with zero-width spaces, Hangul fillers or blank braille cells shows as a blank row
on the dashboard: moderators cannot tell who is waiting. Such a name is treated exactly as an
empty one — the knock is listed as "Guest", a rename is refused, a token is not minted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as HttpClient

from lobby import services, tokens
from lobby.api.auth import api_key_create
from lobby.errors import BadRequest, InvalidEntryClaim, InvalidToken
from lobby.models import EntryRequest, MeetingToken, Participant
from lobby.text import is_blank
from tests.factories import conn, forge, make_room, make_token
from tests.lobby.helpers import aroom, atoken, stored

pytestmark = pytest.mark.django_db(transaction=True)

INVISIBLE = {
    "zero-width-space": "\u200b",
    "zero-width-joiners": "\u200b\u200c\u200d\u2060",
    "byte-order-mark": "\ufeff",
    "hangul-filler": "\u3164",
    "hangul-choseong-jungseong-fillers": "\u115f\u1160",
    "halfwidth-hangul-filler": "\uffa0\uffa0",
    "braille-blank": "\u2800\u2800\u2800",
    "ideographic-space-and-nbsp": "\u3000\u00a0\u3000",
    "combining-marks-alone": "\u0301\u0308",
    "grapheme-joiner": "\u034f",
    "mongolian-vowel-separator": "\u180e",
    "invisible-operators": "\u2061\u2062\u2063\u2064",
    "tag-characters": "\U000e0041\U000e0042",
    "variation-selectors": "\ufe0f\U000e0100",
    "private-use": "\ue000",
    "mixed": " \u200b\u3164\u2800\u2060 ",
}
VISIBLE = {
    "latin": "Pat",
    "accented": "Zoë",
    "hangul-syllables": "김민수",
    "devanagari-with-marks": "नमस्ते",
    "arabic": "سارة",
    "emoji-zwj-sequence": "👩\u200d⚕️",
    "a-zero-width-space-inside": "Pa\u200bt",
}


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True)


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_nothing_visible_is_blank(name):
    assert is_blank(name)


@pytest.mark.parametrize("name", VISIBLE.values(), ids=VISIBLE.keys())
def test_a_name_with_something_visible_is_kept(clinic, name):
    assert not is_blank(name)
    plan = services.join_plan(room_name="clinic", token=None, name=name)
    w = services.entry_request_knock(plan=plan, conn=conn())
    assert EntryRequest.objects.get(pk=w.request.pk).name == name.strip()


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_knock_with_an_invisible_name_is_listed_like_one_with_no_name(clinic, name):
    plan = services.join_plan(room_name="clinic", token=None, name=name)
    w = services.entry_request_knock(plan=plan, conn=conn())
    empty = services.join_plan(room_name="clinic", token=None, name="")
    assert EntryRequest.objects.get(pk=w.request.pk).name == empty.name == "Guest"


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_renaming_to_an_invisible_name_is_refused_like_an_empty_one(clinic, name):
    plan = services.join_plan(room_name="clinic", token=None, name="Pat")
    w = services.entry_request_knock(plan=plan, conn=conn())
    with pytest.raises(BadRequest) as empty:
        services.entry_request_rename(request_id=w.request.pk, name="")
    before = stored(EntryRequest)
    with pytest.raises(BadRequest) as exc:
        services.entry_request_rename(request_id=w.request.pk, name=name)
    assert exc.value.as_dict() == empty.value.as_dict()
    assert stored(EntryRequest) == before


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_participant_cannot_rename_itself_to_an_invisible_name(name):
    room = make_room("hall")
    plan = services.join_plan(room_name="hall", token=None, name="Pat")
    j = services.participant_join(plan=plan, conn=conn())
    before = stored(Participant)
    with pytest.raises(BadRequest) as exc:
        services.participant_rename(
            room=room, participant_id=j.participant.participant_id, name=name
        )
    assert exc.value.message == "name must not be empty."
    assert stored(Participant) == before


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_token_with_an_invisible_name_is_not_minted(db, name):
    with pytest.raises(InvalidEntryClaim) as empty:
        tokens.mint_token(room="clinic", name="")
    with pytest.raises(InvalidEntryClaim) as exc:
        tokens.mint_token(room="clinic", name=name)
    assert exc.value.as_dict() == empty.value.as_dict()
    assert MeetingToken.objects.count() == 0


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_hand_made_token_with_an_invisible_name_is_refused_like_an_empty_one(clinic, name):
    with pytest.raises(InvalidToken) as empty:
        tokens.verify_token(forge({"room": "clinic", "name": ""}), room_name="clinic")
    with pytest.raises(InvalidToken) as exc:
        tokens.verify_token(forge({"room": "clinic", "name": name}), room_name="clinic")
    assert exc.value.as_dict() == empty.value.as_dict()


def _mint(http: HttpClient, user_name: str) -> Any:
    body = {"properties": {"room_name": "clinic", "user_name": user_name}}
    return http.post("/api/v1/meeting-tokens", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_rest_refuses_an_invisible_user_name_like_an_empty_one(clinic, name):
    _, key = api_key_create(name="backend")
    http = HttpClient(headers={"authorization": f"Bearer {key}"})
    empty = _mint(http, "")
    resp = _mint(http, name)
    assert resp.status_code == empty.status_code == 400
    assert resp.json() == empty.json()
    assert resp.json()["error"]["code"] == "INVALID_ENTRY_CLAIM"
    assert MeetingToken.objects.count() == 0
    assert _mint(http, "Dr Pat").status_code == 200


async def test_over_the_socket_an_invisible_name_knocks_as_guest_and_cannot_rename(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    await host.expect("joined")
    guest = await clients(client=("10.0.0.5", 4000))
    await guest.send(type="join", name="\u3164\u200b")
    await guest.expect("waiting")
    assert (await host.expect("entry-requested"))["request"]["name"] == "Guest"
    empty = await guest.request("update-name", rid="e", name="")
    ack = await guest.request("update-name", rid="i", name="\u2800\u2800")
    assert ack["ok"] is False
    assert ack["error"] == empty["error"]
    assert ack["error"]["code"] == "BAD_REQUEST"
    while not await host.nothing(0.3):
        await host.recv()
    assert "entry-updated" not in [f["type"] for f in host.seen]  # the stored name is unchanged


def test_a_moderator_token_name_of_only_fillers_cannot_be_minted_through_the_helpers(db):
    # make_token is the tests' minting helper: it goes through tokens.mint_token too.
    with pytest.raises(InvalidEntryClaim):
        make_token(room="clinic", sub="dr", owner=True, name="\u3164")

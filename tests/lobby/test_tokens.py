"""Meeting tokens under attack: ``verify_token`` directly and over the socket's ``join``.

Every attack is refused with its SPEC §2 code, and over the socket the guest sees that code in an
``error`` frame and the matching close code (4401 bad token, 4400 bad joinPolicy), and nothing
is stored: no presence, no knock. The rooms are *public*, so a server that ignored a bad token
and let the caller in as an anonymous guest would fail these tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient

from lobby import clock, tokens
from lobby.errors import InvalidEntryClaim, InvalidToken, TokenExpired, TokenRevoked
from lobby.models import EntryRequest, MeetingToken, Participant
from tests.factories import forge, make_room, make_token
from tests.lobby.helpers import adb, aroom, atoken, b64url, closed_with, count, craft, future
from tests.support import ROOT

OTHER_KEY = "another-deployment-key-that-is-long-enough-0123456789"


def _exp() -> int:
    return future(3600)


def _base(**claims: Any) -> dict[str, Any]:
    return {"aud": "anteroom", "exp": _exp(), "room": "clinic", "sub": "mallory", **claims}


def _alg_none() -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(_base(owner=True)).encode())
    return f"{header}.{payload}."


def _alg_none_signed() -> str:
    # "none" in the header but an HMAC signature anyway.
    return craft(_base(owner=True), header={"alg": "none", "typ": "JWT"})


def _rs256_shaped() -> str:
    # Algorithm confusion: the header claims RS256, the signature is HMAC with our key.
    return craft(_base(owner=True), header={"alg": "RS256", "typ": "JWT"})


def _tampered() -> str:
    # A valid token whose payload was edited to make the bearer the owner.
    good = forge(_base())
    header, _, sig = good.split(".")
    return f"{header}.{b64url(json.dumps(_base(owner=True)).encode())}.{sig}"


def _oversize() -> str:
    return forge(_base(pad="x" * 4200))


def _duplicate_payload_key() -> str:
    # PyJWT lets the last "owner" win; a lenient server would make this bearer an owner.
    exp = _exp()
    return craft(
        f'{{"aud":"anteroom","exp":{exp},"room":"clinic","sub":"m","owner":false,"owner":true}}'
    )


def _duplicate_header_key() -> str:
    return craft(_base(), header='{"alg":"none","alg":"HS256","typ":"JWT"}')


# (id, token builder, expected error class, code)
ATTACKS: list[tuple[str, Callable[[], str], type[Exception], str]] = [
    ("alg-none-unsigned", _alg_none, InvalidToken, "INVALID_TOKEN"),
    ("alg-none-signed", _alg_none_signed, InvalidToken, "INVALID_TOKEN"),
    ("hs384", lambda: forge(_base(owner=True), alg="HS384"), InvalidToken, "INVALID_TOKEN"),
    ("hs512", lambda: forge(_base(owner=True), alg="HS512"), InvalidToken, "INVALID_TOKEN"),
    (
        "hs512-by-hand",
        lambda: craft(_base(owner=True), header={"alg": "HS512"}, digest=hashlib.sha512),
        InvalidToken,
        "INVALID_TOKEN",
    ),
    ("rs256-shaped", _rs256_shaped, InvalidToken, "INVALID_TOKEN"),
    ("wrong-key", lambda: forge(_base(owner=True), key=OTHER_KEY), InvalidToken, "INVALID_TOKEN"),
    ("short-key", lambda: craft(_base(owner=True), key=b"k"), InvalidToken, "INVALID_TOKEN"),
    ("empty-key", lambda: craft(_base(owner=True), key=b""), InvalidToken, "INVALID_TOKEN"),
    ("tampered-payload", _tampered, InvalidToken, "INVALID_TOKEN"),
    ("expired", lambda: forge(_base(exp=int(time.time()) - 60)), TokenExpired, "TOKEN_EXPIRED"),
    ("nbf-in-future", lambda: forge(_base(nbf=future(3600))), InvalidToken, "INVALID_TOKEN"),
    ("iat-far-future", lambda: forge(_base(iat=future(86400))), InvalidToken, "INVALID_TOKEN"),
    (
        "missing-exp",
        lambda: craft({"aud": "anteroom", "room": "clinic"}),
        InvalidToken,
        "INVALID_TOKEN",
    ),
    (
        "missing-aud",
        lambda: craft({"exp": _exp(), "room": "clinic"}),
        InvalidToken,
        "INVALID_TOKEN",
    ),
    ("wrong-aud", lambda: forge(_base(aud="daily")), InvalidToken, "INVALID_TOKEN"),
    ("string-exp", lambda: craft(_base(exp="9999999999")), InvalidToken, "INVALID_TOKEN"),
    # A wrongly typed exp is INVALID_TOKEN even when, read as a number, it is in the past.
    ("string-exp-past", lambda: craft(_base(exp="1")), InvalidToken, "INVALID_TOKEN"),
    ("boolean-exp", lambda: craft(_base(exp=True)), InvalidToken, "INVALID_TOKEN"),
    ("float-exp", lambda: craft(_base(exp=_exp() + 0.5)), InvalidToken, "INVALID_TOKEN"),
    ("string-owner", lambda: craft(_base(owner="true")), InvalidToken, "INVALID_TOKEN"),
    ("integer-viewer", lambda: craft(_base(viewer=1)), InvalidToken, "INVALID_TOKEN"),
    (
        "string-canModerate",
        lambda: craft(_base(grant={"canModerate": "false"})),
        InvalidToken,
        "INVALID_TOKEN",
    ),
    (
        "unknown-grant",
        lambda: craft(_base(grant={"isAdmin": True})),
        InvalidToken,
        "INVALID_TOKEN",
    ),
    ("integer-room", lambda: craft(_base(room=123)), InvalidToken, "INVALID_TOKEN"),
    ("integer-sub", lambda: craft(_base(sub=42)), InvalidToken, "INVALID_TOKEN"),
    (
        "ttl-too-small",
        lambda: forge(_base(joinPolicy={"mode": "ask", "ttl": 9})),
        InvalidEntryClaim,
        "INVALID_ENTRY_CLAIM",
    ),
    (
        "ttl-too-large",
        lambda: forge(_base(joinPolicy={"mode": "ask", "ttl": 601})),
        InvalidEntryClaim,
        "INVALID_ENTRY_CLAIM",
    ),
    (
        "ttl-as-string",
        lambda: forge(_base(joinPolicy={"mode": "ask", "ttl": "60"})),
        InvalidEntryClaim,
        "INVALID_ENTRY_CLAIM",
    ),
    (
        "unknown-join-mode",
        lambda: forge(_base(joinPolicy={"mode": "knock"})),
        InvalidEntryClaim,
        "INVALID_ENTRY_CLAIM",
    ),
    (
        "owner-with-ask",
        lambda: forge(_base(owner=True, joinPolicy={"mode": "ask"})),
        InvalidEntryClaim,
        "INVALID_ENTRY_CLAIM",
    ),
    (
        "moderator-with-ask",
        lambda: forge(_base(grant={"canModerate": True}, joinPolicy={"mode": "ask", "ttl": 30})),
        InvalidEntryClaim,
        "INVALID_ENTRY_CLAIM",
    ),
    ("oversize", _oversize, InvalidToken, "INVALID_TOKEN"),
    ("duplicate-payload-key", _duplicate_payload_key, InvalidToken, "INVALID_TOKEN"),
    ("duplicate-header-key", _duplicate_header_key, InvalidToken, "INVALID_TOKEN"),
    ("another-room", lambda: forge(_base(room="other")), InvalidToken, "INVALID_TOKEN"),
    (
        "two-segments",
        lambda: ".".join(forge(_base()).split(".")[:2]),
        InvalidToken,
        "INVALID_TOKEN",
    ),
    ("four-segments", lambda: forge(_base()) + ".x", InvalidToken, "INVALID_TOKEN"),
    ("not-base64", lambda: "!!!.???.***", InvalidToken, "INVALID_TOKEN"),
    (
        "payload-is-array",
        lambda: craft('["anteroom", 9999999999]'),
        InvalidToken,
        "INVALID_TOKEN",
    ),
]
IDS = [a[0] for a in ATTACKS]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "build", "error", "code"), ATTACKS, ids=IDS)
def test_verify_token_refuses(name, build, error, code):
    make_room("clinic")
    token = build()
    with pytest.raises(error) as info:
        tokens.verify_token(token, room_name="clinic")
    assert info.value.code == code


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("name", "build", "error", "code"), ATTACKS, ids=IDS)
async def test_join_with_a_bad_token_is_refused_and_closed(clients, name, build, error, code):
    await aroom(name="clinic")  # public: no token at all would get in
    token = await adb(build)()
    c = await clients()
    await c.send(type="join", rid="j", token=token)
    ack = await c.expect("ack")
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert await closed_with(c) == (4400 if code == "INVALID_ENTRY_CLAIM" else 4401)
    assert await count(Participant) == 0
    assert await count(EntryRequest) == 0


@pytest.mark.django_db(transaction=True)
async def test_same_hand_made_token_without_the_attack_gets_in(clients):
    """The control for the table above: the harness tells a good forged token from a bad one."""
    await aroom(name="clinic", privacy="private")
    c = await clients()
    await c.send(type="join", token=await adb(forge)(_base(owner=True)))
    joined = await c.expect("joined")
    assert joined["participant"]["role"] == "moderator"
    assert joined["participant"]["participant_id"] == "mallory"


@pytest.mark.django_db
def test_a_token_just_under_the_size_cap_is_accepted():
    make_room("clinic")
    token = forge(_base(pad="x" * 2800))
    assert len(token) <= tokens.MAX_TOKEN_BYTES
    assert tokens.verify_token(token, room_name="clinic").sub == "mallory"
    assert len(_oversize()) > tokens.MAX_TOKEN_BYTES


@pytest.mark.django_db
def test_a_token_without_room_is_valid_for_every_room():
    make_room("clinic")
    make_room("other")
    token = make_token(room=None, sub="roamer")
    for name in ("clinic", "other"):
        assert tokens.verify_token(token, room_name=name).sub == "roamer"


@pytest.mark.django_db
def test_a_minted_token_expires_on_the_server_clock():
    make_room("clinic")
    token = make_token(sub="pat")
    assert tokens.verify_token(token, room_name="clinic").sub == "pat"
    clock.advance(24 * 3600 + 10)
    with pytest.raises(TokenExpired):
        tokens.verify_token(token, room_name="clinic")


def test_the_server_refuses_to_start_with_a_short_signing_key(tmp_path):
    env = {**os.environ, "ANTEROOM_SIGNING_KEY": "too-short", "DJANGO_SETTINGS_MODULE": ""}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "at least 32 bytes" in out.stderr


# Revocation ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_revoke_token_revokes_minted_and_hand_made_tokens_idempotently():
    make_room("clinic")
    minted = make_token(sub="pat")
    jti = tokens.verify_token(minted).jti
    assert jti is not None
    assert tokens.revoke_token(jti=jti) is True
    assert tokens.revoke_token(jti=jti) is False  # already revoked
    with pytest.raises(TokenRevoked) as info:
        tokens.verify_token(minted, room_name="clinic")
    assert info.value.code == "TOKEN_REVOKED"
    # A hand-made token with its own jti, never minted here, can be revoked too.
    hand_made = forge(_base(jti="hand-made-1"))
    assert tokens.verify_token(hand_made).sub == "mallory"
    assert tokens.revoke_token(jti="hand-made-1") is True
    with pytest.raises(TokenRevoked):
        tokens.verify_token(hand_made)
    # Other tokens are untouched.
    assert tokens.verify_token(make_token(sub="other")).sub == "other"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["service", "rest"])
async def test_join_with_a_revoked_token(clients, how):
    from lobby.api.auth import api_key_create

    await aroom(name="clinic")
    token = await atoken(room="clinic", sub="pat", name="Pat")
    jti = (await adb(tokens.verify_token)(token)).jti
    # It works before revocation.
    first = await clients()
    assert (await first.request("join", token=token))["ok"]
    await first.expect("joined")
    if how == "service":
        assert await adb(tokens.revoke_token)(jti=jti)
    else:

        def revoke_over_rest() -> Any:
            _, key = api_key_create(name="backend")
            return HttpClient().post(
                "/api/v1/meeting-tokens/revoke",
                {"jti": jti},
                content_type="application/json",
                headers={"authorization": f"Bearer {key}"},
            )

        resp = await adb(revoke_over_rest)()
        assert resp.status_code == 200
        assert resp.json() == {"jti": jti, "revoked": True, "effective": True}
    again = await clients()
    await again.send(type="join", token=token)
    err = await again.expect("error")
    assert err["error"]["code"] == "TOKEN_REVOKED"
    assert await closed_with(again) == 4401


# Permissions carried by tokens ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "claims",
    [
        {"viewer": True, "grant": {"canPublish": False}},
        {},  # an ordinary participant token
        {"grant": {"canModerate": False}},
    ],
    ids=["viewer", "participant", "canModerate-false"],
)
async def test_a_non_moderator_token_cannot_admit(clients, claims):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    intruder = await clients()
    assert (await intruder.request("join", token=await atoken(sub="eve", **claims)))["ok"]
    guest = await clients(client=("10.1.1.1", 5000))
    await guest.send(type="join", name="Pat")
    waiting = await guest.expect("waiting")
    request_id = waiting["request"]["id"]
    for kind in ("admit", "deny"):
        ack = await intruder.request(kind, rid=kind, request_id=request_id)
        assert ack["ok"] is False and ack["error"]["code"] == "INVALID_PERMISSIONS"
    ack = await intruder.request("admit-all", rid="all")
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    # The knock is still pending; the guest heard nothing; the intruder never saw the knock.
    assert await count(EntryRequest, status="pending") == 1
    while not await guest.nothing(0.2):
        assert (await guest.recv())["type"] == "queue-position"
    assert "entry-requested" not in {f["type"] for f in intruder.seen}
    # The real moderator still decides.
    ack = await host.request("admit", rid="ok", request_id=request_id)
    assert ack["data"]["effective"] is True
    await guest.expect("joined")


@pytest.mark.django_db(transaction=True)
async def test_a_valid_ask_token_knocks_even_in_a_public_room(clients):
    await aroom(name="clinic")
    token = await atoken(sub="panel", join_policy={"mode": "ask"})
    c = await clients()
    await c.send(type="join", token=token)
    w = await c.expect("waiting")
    from datetime import datetime

    span = datetime.fromisoformat(w["request"]["expires_at"]) - datetime.fromisoformat(
        w["request"]["requested_at"]
    )
    assert span.total_seconds() == 60  # the default ttl with "ask"


# Minting -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_minted_token_carries_the_always_set_claims():
    make_room("clinic")
    before = int(time.time())
    token = make_token(sub="dr", name="Dr", owner=True)
    claims = tokens.verify_token(token, room_name="clinic")
    assert claims.owner and claims.can_moderate and claims.sub == "dr" and claims.name == "Dr"
    assert claims.jti and claims.iat is not None and before - 1 <= claims.iat <= before + 5
    assert claims.exp == claims.iat + 24 * 3600
    assert claims.as_dict()["aud"] == "anteroom"
    row = MeetingToken.objects.get(jti=claims.jti)
    assert (row.room_name, row.subject, row.is_owner, row.revoked_at) == (
        "clinic",
        "dr",
        True,
        None,
    )
    # Every mint gets its own jti.
    assert tokens.verify_token(make_token(sub="dr")).jti != claims.jti


@pytest.mark.django_db
def test_mint_ask_defaults_ttl_to_60_and_keeps_a_given_ttl():
    make_room("clinic")
    assert tokens.verify_token(make_token(join_policy={"mode": "ask"})).ttl == 60
    assert tokens.verify_token(make_token(join_policy={"mode": "ask", "ttl": 600})).ttl == 600
    assert tokens.verify_token(make_token(join_policy={"mode": "direct"})).ttl is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "claims",
    [
        {"owner": True, "join_policy": {"mode": "ask"}},
        {"grant": {"canModerate": True}, "join_policy": {"mode": "ask", "ttl": 60}},
        {"join_policy": {"mode": "direct", "ttl": 60}},
        {"join_policy": {"mode": "ask", "ttl": 9}},
        {"join_policy": {"mode": "ask", "ttl": 601}},
        {"join_policy": {"mode": "ask", "ttl": 60.0}},
        {"join_policy": {"mode": "maybe"}},
        {"join_policy": {"mode": "ask", "when": "now"}},
        {"owner": "true"},
        {"viewer": 1},
        {"grant": {"canModerate": "false"}},
        {"grant": {"superuser": True}},
        {"exp": 1},
        {"exp": "9999999999"},
        {"exp": 10**20},  # beyond any calendar: refused, not a crash
        {"exp": 253402300800},  # year 10000
        {"name": ""},
        {"sub": 7},
    ],
)
def test_mint_refuses_nonsense_claims_before_signing(claims):
    with pytest.raises(InvalidEntryClaim) as info:
        make_token(**claims)
    assert info.value.code == "INVALID_ENTRY_CLAIM"
    assert MeetingToken.objects.count() == 0


@pytest.mark.django_db
def test_manage_mint_token_prints_a_working_token_on_its_last_line():
    make_room("clinic")
    out = io.StringIO()
    call_command(
        "mint_token", "--room", "clinic", "--sub", "dr", "--name", "Dr", "--owner", stdout=out
    )
    last = out.getvalue().strip().splitlines()[-1]
    claims = tokens.verify_token(last, room_name="clinic")
    assert (claims.sub, claims.name, claims.owner) == ("dr", "Dr", True)
    out = io.StringIO()
    call_command("mint_token", "--room", "clinic", "--ask", "--ttl", "120", stdout=out)
    claims = tokens.verify_token(out.getvalue().strip().splitlines()[-1])
    assert (claims.join_mode, claims.ttl) == ("ask", 120)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [["--owner", "--ask"], ["--moderator", "--ask"], ["--ttl", "30"], ["--ask", "--ttl", "5"]],
)
def test_manage_mint_token_refuses_bad_claims(args):
    with pytest.raises(CommandError, match="INVALID_ENTRY_CLAIM"):
        call_command("mint_token", "--room", "clinic", *args, stdout=io.StringIO())
    assert MeetingToken.objects.count() == 0

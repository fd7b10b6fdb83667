"""The connect path's token check (issue 13): ``services.preauth`` / ``join_plan`` read the room
and the token's revocation in one statement when neither is cached, and answer exactly what
``get_room`` then ``verify_token`` answered, errors in the same order. PyJWT is used through
one verifier built once (lobby/tokens.py): its segment check and key preparation are pinned to
PyJWT's own here. Runs on both back ends (the PostgreSQL pass too)."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from jwt.api_jws import PyJWS

from lobby import cache, clock, services, tokens
from lobby.errors import InvalidToken, RoomNotFound, TokenExpired, TokenRevoked
from tests.factories import forge, make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


@pytest.fixture(params=["cached", "uncached"])
def caching(request, monkeypatch):
    """Both paths: the caches on (the embedded default) and off (a shared layer: Redis)."""
    cache.clear()
    if request.param == "uncached":
        monkeypatch.setattr(cache, "enabled", lambda: False)
    yield request.param
    cache.clear()


def statements(fn, *args, **kwargs):
    with CaptureQueriesContext(connection) as ctx:
        out = fn(*args, **kwargs)
    return out, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("service", ["preauth", "join_plan"])
def test_an_uncached_check_reads_room_and_revocation_in_one_statement(clinic, service):
    token = make_token(sub="pat", join_policy={"mode": "ask"})
    cache.clear()
    _, sql = statements(getattr(services, service), room_name="clinic", token=token)
    assert len(sql) == 1, sql
    assert "lobby_meetingtoken" in sql[0] and "EXISTS" in sql[0].upper()


def test_a_revoked_token_is_refused_by_the_one_statement(clinic, caching):
    token = make_token(sub="pat")
    services.preauth(room_name="clinic", token=token)
    assert tokens.revoke_token(jti=tokens.verify_token(token).jti or "") is True
    cache.clear()  # cold: the statement itself must see the revocation
    with pytest.raises(TokenRevoked):
        services.preauth(room_name="clinic", token=token)
    with pytest.raises(TokenRevoked):  # and again (cached as revoked, or read again)
        services.join_plan(room_name="clinic", token=token)


def test_a_missing_room_is_room_not_found_whatever_the_token(db, caching):
    revoked = make_token(room=None, sub="x")
    tokens.revoke_token(jti=tokens.verify_token(revoked).jti or "")
    for token in ("not-a-jwt", forge({"room": "nope"}, key="k" * 40), revoked, make_token()):
        with pytest.raises(RoomNotFound):
            services.preauth(room_name="nope", token=token)
        with pytest.raises(RoomNotFound):
            services.join_plan(room_name="nope", token=token)


def test_token_errors_come_after_the_room_and_before_the_revocation(clinic, caching):
    expired = forge({"room": "clinic", "exp": int(clock.now().timestamp()) - 60})
    other = make_token(room="elsewhere")
    with pytest.raises(InvalidToken) as bad:
        services.preauth(room_name="clinic", token="x.y.z")
    assert type(bad.value) is InvalidToken
    with pytest.raises(TokenExpired):
        services.preauth(room_name="clinic", token=expired)
    with pytest.raises(InvalidToken, match="another room"):
        services.join_plan(room_name="clinic", token=other)
    # an expired token that is also revoked: expired, as verify_token says
    expired_revoked = forge({"room": "clinic", "jti": "j-exp", "exp": 1})
    tokens.revoke_token(jti="j-exp")
    with pytest.raises(TokenExpired):
        services.preauth(room_name="clinic", token=expired_revoked)
    assert services.preauth(room_name="clinic", token=None).level == "lobby"
    assert services.preauth(room_name="clinic", token=make_token()).level == "full"


def test_the_room_is_a_plain_room_without_the_revocation_annotation(clinic, caching):
    plan = services.join_plan(room_name="clinic", token=make_token(sub="p"))
    assert "anteroom_revoked" not in plan.room.__dict__
    again = services.join_plan(room_name="clinic", token=make_token(sub="q"))
    assert "anteroom_revoked" not in again.room.__dict__
    assert again.room.pk == clinic.pk and again.room.name == "clinic"


SEGMENTS = [
    b"",
    b"eyJhbGciOiJIUzI1NiJ9",
    b"eyJhbGciOiJIUzI1NiJ9=",  # padding on a length that is not a multiple of 4
    b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    b"YQ==",
    b"YQ=",
    b"YQ===",
    b"YR",  # not canonical (the last character carries bits that decode drops)
    b"Y",  # a length of 1 mod 4
    b"!!!!",
    b"YWJj!",
    b"YW Jj",
    b"YW\nJj",
    b"YWJj+/",
    b"\xff\xfe",
    base64.urlsafe_b64encode(bytes(range(256))).rstrip(b"="),
]


@pytest.mark.parametrize("segment", SEGMENTS)
def test_the_segment_check_is_pyjwts_own(segment):
    def outcome(fn):
        try:
            return ("ok", fn(segment, "header"))
        except Exception as exc:
            return (type(exc), str(exc))

    assert outcome(tokens._JWS._decode_base64url_segment) == outcome(
        PyJWS._decode_base64url_segment
    )


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
        b"-----END PUBLIC KEY-----\n",
        b"ssh-rsa AAAAB3NzaC1yc2E",
        b'{"kty": "oct", "k": "c2VjcmV0"}',
    ],
)
def test_a_key_pyjwt_refuses_is_refused_every_time_not_only_the_first(key):
    from jwt.exceptions import InvalidKeyError

    alg = tokens._HS256()
    for _ in range(2):
        with pytest.raises(InvalidKeyError):
            alg.prepare_key(key)
    assert alg.prepare_key(b"k" * 40) == b"k" * 40 == alg.prepare_key("k" * 40)


def test_only_hs256_is_known_to_the_verifier(clinic):
    assert tokens._VERIFIER.get_algorithms() == ["HS256"]
    for alg in ("HS384", "HS512", "none"):
        token = forge({"room": "clinic"}, alg=alg) if alg != "none" else forge_none()
        with pytest.raises(InvalidToken):
            tokens.verify_token(token)


def forge_none() -> str:
    def seg(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    exp = int(clock.now().timestamp()) + 60
    return f"{seg(b'{"alg":"none"}')}.{seg(f'{{"aud":"anteroom","exp":{exp}}}'.encode())}."

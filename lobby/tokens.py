"""Meeting tokens: the only module that imports ``jwt``.

Minting validates the claims *before* signing (``INVALID_ENTRY_CLAIM``). Verification is
strict: HS256 only, ``exp`` and ``aud`` required, a size cap, no duplicate JSON keys, exact claim
types (PyJWT itself accepts ``"exp": "999"`` and passes ``"owner": "true"`` through), the
``joinPolicy`` rules again (the server is the safety net for hand-made JWTs), the room, and
revocation by ``jti``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import jwt
from django.conf import settings
from django.utils.translation import gettext_noop
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_decode, base64url_encode

from . import clock, strict_json
from .errors import InvalidEntryClaim, InvalidToken, TokenExpired, TokenRevoked
from .text import is_blank

AUDIENCE = "anteroom"
ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 4096
DEFAULT_EXP_SECONDS = 24 * 3600
LEEWAY_SECONDS = 5
DEFAULT_ASK_TTL = 60
TTL_MIN, TTL_MAX = 10, 600
GRANT_KEYS = ("canPublish", "canSubscribe", "canPublishData", "canSubscribeData", "canModerate")
MAX_ROOM_LEN = 64
MAX_ID_LEN = 128
MAX_NAME_LEN = 200
# The last second of year 9999: a later exp cannot be stored (or shown) as a date.
MAX_EXP = 253402300799


@dataclass(frozen=True)
class Grant:
    canPublish: bool = True
    canSubscribe: bool = True
    canPublishData: bool = True
    canSubscribeData: bool = True
    canModerate: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in GRANT_KEYS}


@dataclass(frozen=True)
class Claims:
    """The validated claims of a meeting token."""

    exp: int
    room: str | None = None
    sub: str | None = None
    name: str | None = None
    owner: bool = False
    viewer: bool = False
    grant: Grant = field(default_factory=Grant)
    join_mode: Literal["direct", "ask"] = "direct"
    ttl: int | None = None
    jti: str | None = None
    iat: int | None = None
    # A hash identifying this token for rate limits (the jti, or a digest of the token).
    key: str = ""

    @property
    def can_moderate(self) -> bool:
        return self.owner or self.grant.canModerate

    @property
    def can_publish(self) -> bool:
        return not self.viewer and self.grant.canPublish

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "room": self.room,
            "sub": self.sub,
            "name": self.name,
            "owner": self.owner,
            "viewer": self.viewer,
            "grant": self.grant.as_dict(),
            "joinPolicy": {"mode": self.join_mode}
            | ({"ttl": self.ttl} if self.ttl is not None else {}),
            "jti": self.jti,
            "iat": self.iat,
            "exp": self.exp,
            "aud": AUDIENCE,
        }
        return out


def _key() -> bytes:
    return str(settings.ANTEROOM_SIGNING_KEY).encode()


def _check_entry_policy(
    policy: Any, *, can_moderate: bool
) -> tuple[Literal["direct", "ask"], int | None]:
    """Apply SPEC §2's joinPolicy rules; return (mode, ttl)."""
    if policy is None:
        return "direct", None
    if not isinstance(policy, dict) or set(policy) - {"mode", "ttl"}:
        raise InvalidEntryClaim("joinPolicy must be an object with mode and ttl.")
    mode = policy.get("mode", "direct")
    if mode not in ("direct", "ask"):
        raise InvalidEntryClaim('joinPolicy.mode must be "direct" or "ask".')
    ttl = policy.get("ttl")
    if ttl is not None and (type(ttl) is not int):
        raise InvalidEntryClaim("joinPolicy.ttl must be an integer number of seconds.")
    if mode == "ask" and can_moderate:
        raise InvalidEntryClaim('A moderator or owner cannot have joinPolicy.mode "ask".')
    if mode == "direct" and ttl is not None:
        raise InvalidEntryClaim('joinPolicy.ttl only applies to mode "ask".')
    if ttl is not None and not TTL_MIN <= ttl <= TTL_MAX:
        raise InvalidEntryClaim(f"joinPolicy.ttl must be between {TTL_MIN} and {TTL_MAX}.")
    if mode == "ask" and ttl is None:
        ttl = DEFAULT_ASK_TTL
    return mode, ttl


def _check_grant(raw: Any, error: type[Exception]) -> Grant:
    if raw is None:
        return Grant()
    if not isinstance(raw, dict) or set(raw) - set(GRANT_KEYS):
        raise error("grant must be an object of known booleans.")
    for k, v in raw.items():
        if type(v) is not bool:
            raise error(f"grant.{k} must be a boolean.")
    return Grant(**raw)


def _opt_str(payload: dict[str, Any], name: str, max_len: int) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise InvalidToken(f"Claim {name} must be a non-empty string.")
    if name == "name" and is_blank(value):  # nothing visible is an empty name (lobby/text.py)
        raise InvalidToken(f"Claim {name} must be a non-empty string.")
    return value


def _opt_bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if type(value) is not bool:
        raise InvalidToken(f"Claim {name} must be a boolean.")
    return value


def _opt_int(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidToken(f"Claim {name} must be an integer.")
    return value


def mint_token(
    *,
    room: str | None = None,
    sub: str | None = None,
    name: str | None = None,
    owner: bool = False,
    viewer: bool = False,
    grant: dict[str, bool] | None = None,
    join_policy: dict[str, Any] | None = None,
    exp: int | None = None,
    issued_by: str = "",
) -> str:
    """Validate the claims, sign a token and record its ``jti``.

    ``exp`` is an absolute Unix time (default: 24 h from now). Raises ``InvalidEntryClaim``
    before anything is signed.
    """
    g = _check_grant(grant, InvalidEntryClaim)
    if type(owner) is not bool or type(viewer) is not bool:
        raise InvalidEntryClaim("owner and viewer must be booleans.")
    mode, ttl = _check_entry_policy(join_policy, can_moderate=owner or g.canModerate)
    now = int(clock.now().timestamp())
    if exp is None:
        exp = now + DEFAULT_EXP_SECONDS
    if type(exp) is not int or not now < exp <= MAX_EXP:
        raise InvalidEntryClaim("exp must be a future Unix time.")
    jti = secrets.token_urlsafe(16)
    payload: dict[str, Any] = {"jti": jti, "iat": now, "exp": exp, "aud": AUDIENCE}
    # The same limits as verification: a minted token always verifies.
    for claim, value, limit in (
        ("room", room, MAX_ROOM_LEN),
        ("sub", sub, MAX_ID_LEN),
        ("name", name, MAX_NAME_LEN),
    ):
        if value is not None:
            if not isinstance(value, str) or not value or len(value) > limit:
                raise InvalidEntryClaim(f"{claim} must be a non-empty string.")
            if claim == "name" and is_blank(value):  # nothing visible: empty (lobby/text.py)
                raise InvalidEntryClaim(f"{claim} must be a non-empty string.")
            payload[claim] = value
    if owner:
        payload["owner"] = True
    if viewer:
        payload["viewer"] = True
    if grant is not None:
        payload["grant"] = g.as_dict()
    if join_policy is not None:
        payload["joinPolicy"] = {"mode": mode} | ({"ttl": ttl} if ttl is not None else {})
    token = jwt.encode(payload, _key(), algorithm=ALGORITHM)
    from .models import MeetingToken

    MeetingToken.objects.create(
        jti=jti,
        room_name=room or "",
        subject=sub or "",
        user_name=name or "",
        is_owner=owner,
        issued_by=issued_by,
        issued_at=datetime.fromtimestamp(now, tz=UTC),
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
    )
    return token


class _HS256(HMACAlgorithm):
    """PyJWT's HS256 with its key checks (not empty; not a PEM, SSH, DER or JWK key) run once per
    key instead of on every decode, where they were a fifth of a token check (``load_der_*``,
    a JSON parse of the key). The checks and the signature comparison are PyJWT's own."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        raw = key.encode() if isinstance(key, str) else bytes(key)
        prepared = self._prepared.get(raw)
        if prepared is None:
            prepared = super().prepare_key(raw)  # raises InvalidKeyError for a bad key, each time
            if len(self._prepared) >= 8:  # a few keys at most (rotation, tests)
                self._prepared.clear()
            self._prepared[raw] = prepared
        return prepared


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


class _JWS(PyJWS):
    """PyJWS whose segment check tests the base64url alphabet with one regular expression
    instead of a Python generator over every byte (a quarter of a token check). The rest of
    the check is PyJWT's own, unchanged: padding, length, canonical re-encoding.
    ``tests/lobby/test_tokens.py`` pins it to PyJWT's on good and bad segments."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        # PyJWT 2.15's ``PyJWS._decode_base64url_segment``, line for line, but the alphabet
        # test (GHSA-hxm8-2xgr-2p9m: no junk such as ``!!!!``).
        padding = 0
        stripped = segment
        while stripped.endswith(b"="):
            stripped = stripped[:-1]
            padding += 1
            if padding > 2:
                raise jwt.DecodeError(f"Invalid {name} padding")
        if padding and len(segment) % 4 != 0:
            raise jwt.DecodeError(f"Invalid {name} padding")
        if len(stripped) % 4 == 1 or _BASE64URL.fullmatch(stripped) is None:
            raise jwt.DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64url_decode(stripped)
        except (TypeError, binascii.Error) as err:
            raise jwt.DecodeError(f"Invalid {name} padding") from err
        if base64url_encode(decoded) != stripped:
            raise jwt.DecodeError(f"Invalid {name} padding")
        return decoded


# One signature verifier, built once: it knows HS256 only (no other algorithm is registered, so
# ``alg`` confusion has nothing to switch to) and verifies the signature, the segments' strict
# base64url and the ``kid`` / ``crit`` headers. The claims are checked below, on their exact
# types and on the project clock (PyJWT coerces ``exp``, ``nbf`` and ``iat`` first, so
# ``"exp": "1"`` or ``true`` would come out as TOKEN_EXPIRED instead of INVALID_TOKEN).
_VERIFIER = _JWS(algorithms=[])
_VERIFIER.register_algorithm(ALGORITHM, _HS256())
_ALGORITHMS = [ALGORITHM]
_SIG_OPTIONS: Any = {"verify_signature": True}


def _strict_segment(part: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return strict_json.loads(raw)
    except strict_json.DuplicateKey as exc:
        raise InvalidToken("Duplicate claim.") from exc
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken() from exc


def _check_segments(token: str) -> Any:
    """Refuse duplicate keys in header or payload (PyJWT lets the last one win); return the
    payload as strict JSON read it."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken()
    _strict_segment(parts[0])
    return _strict_segment(parts[1])


def verify_token(token: Any, *, room_name: str | None = None) -> Claims:
    """Verify a meeting token strictly and return its claims.

    Raises ``InvalidToken``, ``TokenExpired``, ``TokenRevoked`` or ``InvalidEntryClaim``.
    With ``room_name``, a token for another room is ``InvalidToken``. Reads the revocation
    table (sync ORM).
    """
    claims = verify_token_claims(token, room_name=room_name)
    if claims.jti is not None and is_revoked(claims.jti):
        raise TokenRevoked()
    return claims


def verify_token_claims(token: Any, *, room_name: str | None = None) -> Claims:
    """``verify_token`` without the revocation check (no database): for a caller that reads
    the revocation with another query (``services.access``) and must then call
    ``check_revoked``."""
    if not isinstance(token, str) or not token or len(token.encode()) > MAX_TOKEN_BYTES:
        raise InvalidToken()
    payload = _check_segments(token)
    try:
        header = _VERIFIER.decode_complete(token, _key(), _ALGORITHMS, _SIG_OPTIONS)["header"]
    except jwt.PyJWTError as exc:
        raise InvalidToken() from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken()
    if not isinstance(payload, dict):
        raise InvalidToken()
    return _claims_from_payload(payload, token, room_name=room_name)


def _claims_from_payload(payload: dict[str, Any], token: str, *, room_name: str | None) -> Claims:
    exp = _opt_int(payload, "exp")
    iat = _opt_int(payload, "iat")
    nbf = _opt_int(payload, "nbf")
    if exp is None or payload.get("aud") != AUDIENCE:
        raise InvalidToken()
    now = int(clock.now().timestamp())
    if exp + LEEWAY_SECONDS <= now:
        raise TokenExpired()
    if iat is not None and iat > now + LEEWAY_SECONDS:
        raise InvalidToken(gettext_noop("The token was issued in the future."))
    if nbf is not None and nbf > now + LEEWAY_SECONDS:
        raise InvalidToken(gettext_noop("The token is not valid yet."))
    room = _opt_str(payload, "room", MAX_ROOM_LEN)
    sub = _opt_str(payload, "sub", MAX_ID_LEN)
    name = _opt_str(payload, "name", MAX_NAME_LEN)
    jti = _opt_str(payload, "jti", 64)
    owner = _opt_bool(payload, "owner")
    viewer = _opt_bool(payload, "viewer")
    grant = _check_grant(payload.get("grant"), InvalidToken)
    mode, ttl = _check_entry_policy(
        payload.get("joinPolicy"), can_moderate=owner or grant.canModerate
    )
    if room_name is not None and room is not None and room != room_name:
        raise InvalidToken(gettext_noop("The token is for another room."))
    key = jti or hashlib.sha256(token.encode()).hexdigest()
    return Claims(
        exp=exp,
        room=room,
        sub=sub,
        name=name,
        owner=owner,
        viewer=viewer,
        grant=grant,
        join_mode=mode,
        ttl=ttl,
        jti=jti,
        iat=iat,
        key=hashlib.sha256(key.encode()).hexdigest(),
    )


def revoked_tokens(jti: str) -> Any:
    """The revocation of ``jti`` as a queryset (empty: not revoked), for ``is_revoked`` and for
    a statement that reads it together with something else (``services.rooms``)."""
    from .models import MeetingToken

    return MeetingToken.objects.filter(jti=jti, revoked_at__isnull=False)


def is_revoked(jti: str) -> bool:
    """Whether ``jti`` is revoked (``lobby.cache`` answers on the embedded default)."""
    from . import cache

    hit = cache.is_revoked(jti)
    if hit is not None:
        return hit
    revoked: bool = revoked_tokens(jti).exists()
    cache.put_revoked(jti, revoked)
    return revoked


def revoke_token(*, jti: str) -> bool:
    """Revoke a token by ``jti`` (also hand-made ones never minted here). Idempotent.

    Returns True when this call revoked it.
    """
    from . import cache
    from .models import MeetingToken

    now = clock.now()
    cache.forget_token(jti)  # ``update`` sends no signal
    _, created = MeetingToken.objects.get_or_create(jti=jti, defaults={"revoked_at": now})
    if created:
        return True
    return MeetingToken.objects.filter(jti=jti, revoked_at__isnull=True).update(revoked_at=now) == 1


def sign_payload(payload: dict[str, Any], key: str | bytes) -> str:
    """HS256-sign a ready payload with an explicit key (the load test's bare baseline)."""
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def decode_signature(token: str, key: str | bytes) -> dict[str, Any]:
    """Signature, algorithm, audience and expiry only, with an explicit key and no database:
    what the load test's bare relay checks. Raises ``InvalidToken`` / ``TokenExpired``."""
    try:
        payload: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=AUDIENCE, leeway=LEEWAY_SECONDS
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken() from exc
    return payload

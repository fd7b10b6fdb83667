"""Who acts, and whether their credential still lets them moderate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext_noop

from .. import clock, staff_sessions
from ..errors import InvalidPermissions, StaffSessionEnded, TokenExpired, TokenRevoked
from ..models import Participant, Role
from ..tokens import is_revoked


@dataclass(frozen=True)
class Actor:
    """Who performs an action. ``by`` is what events report (SPEC §3 ``entry-resolved``)."""

    by: str
    can_moderate: bool
    participant_id: str | None = None
    # The meeting token behind a socket's powers, checked again on every moderator action.
    token_jti: str | None = None
    token_expires_at: datetime | None = None
    # A staff session behind a socket: re-checked on every moderator action, like a token.
    staff_user_id: int | None = None
    staff_session_key: str | None = None

    @classmethod
    def api(cls, key_name: str) -> Actor:
        return cls(by=f"api:{key_name}", can_moderate=True)

    @classmethod
    def staff(cls, username: str) -> Actor:
        return cls(by=f"staff:{username}", can_moderate=True)

    @classmethod
    def command(cls, name: str) -> Actor:
        """A management command run by an operator (``manage.py demo``): audited as
        ``command:<name>``."""
        return cls(by=f"command:{name}", can_moderate=True)

    @classmethod
    def participant(cls, p: Participant) -> Actor:
        return cls(
            by=p.participant_id,
            can_moderate=p.role == Role.MODERATOR,
            participant_id=p.participant_id,
        )


def require_moderator(actor: Actor) -> None:
    """Raise unless the actor moderates with a credential that is still valid: a moderator
    token revoked or expired after its socket joined stops moderating at once."""
    if not actor.can_moderate:
        raise InvalidPermissions()
    check_credential(token_jti=actor.token_jti, token_expires_at=actor.token_expires_at)
    if actor.staff_user_id is not None:
        # The session must still be live, for an active user, with the hash of the current
        # password (lobby/staff_sessions.py); staff status is checked as well.
        user = staff_sessions.session_user(
            user_id=actor.staff_user_id, session_key=actor.staff_session_key or ""
        )
        if user is None:
            raise StaffSessionEnded()
        if not getattr(user, "is_staff", False):
            raise InvalidPermissions(gettext_noop("Your staff access has ended."))


def check_credential(*, token_jti: str | None, token_expires_at: datetime | None) -> None:
    """Raise ``TokenExpired`` / ``TokenRevoked`` for a token that has lapsed since it was read."""
    if token_expires_at is not None and token_expires_at <= clock.now():
        raise TokenExpired()
    if token_jti and is_revoked(token_jti):
        raise TokenRevoked()

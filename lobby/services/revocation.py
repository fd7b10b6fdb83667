"""Meeting-token revocation and what it ends (presences, knocks)."""

from __future__ import annotations

from django.db import transaction

from .. import clock, events
from ..audit import audit_record
from ..errors import TokenRevoked
from ..instructions import Close
from ..models import EntryRequest, Participant
from ..tokens import revoke_token
from .outcomes import announce_cancel, mark_canceled
from .presence import mark_left


@transaction.atomic
def token_revoke(*, jti: str, by: str = "") -> bool:
    """Revoke a meeting token by ``jti`` and disconnect whoever uses it now.

    Participants holding it leave at once (``participant-left``) and their sockets close with
    ``TOKEN_REVOKED`` / 4401; a knock made with it is canceled at once (``entry-canceled`` with
    reason ``disconnected`` to moderators) and its guest gets one outcome, ``TOKEN_REVOKED`` /
    4401. Idempotent; returns True when this call revoked it.
    """
    changed = revoke_token(jti=jti)
    err = TokenRevoked()
    holders = list(Participant.objects.filter(token_jti=jti).exclude(status="left"))
    for p in holders:
        events.send_on_commit(
            events.participant_group(p.room_id, p.participant_id), Close.for_error(err)
        )
    mark_left(holders, clock.now(), reason="revoked", by=by)
    now = clock.now()
    knocks = list(EntryRequest.objects.filter(token_jti=jti, status="pending"))
    # The knock ends with the credential, so no moderator can admit it afterwards. Its guest is
    # told once, TOKEN_REVOKED (4401), and only if this call ended it: a knock decided meanwhile
    # has already told its own outcome.
    ended = [r for r in knocks if mark_canceled(r, reason="disconnected", now=now)]
    if ended:
        announce_cancel(ended, now, guest_error=err)
    if changed:
        audit_record(action="token-revoke", actor=by, subject=jti)
    return changed

"""Anteroom's error hierarchy: stable machine codes, mapped once for REST and for WebSocket.

Codes are API (SPEC §3). Messages are short and never echo secrets or client input.

Codes and messages are never translated on the wire (socket error frames, REST bodies): the
``message`` is English developer text, like the code. A page shows a person ``error_text``: the
message in the page's language when it is a known message (the defaults below and the texts the
services mark with ``gettext_noop``), else as written. The page scripts choose their own words by
``code`` (docs/architecture.md "Languages").
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext, gettext_noop


class AnteroomError(Exception):
    code: ClassVar[str] = "BAD_REQUEST"
    http_status: ClassVar[int] = 400
    # WebSocket close code used when the error ends the connection (None = keep it open).
    close_code: ClassVar[int | None] = None
    default_message: ClassVar[str] = gettext_noop("Bad request.")

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class BadRequest(AnteroomError):
    code = "BAD_REQUEST"
    http_status = 400
    default_message = gettext_noop("Bad request.")


class NotJoined(AnteroomError):
    code = "NOT_JOINED"
    http_status = 409
    default_message = gettext_noop("Join the room first.")


class RoomNotFound(AnteroomError):
    code = "ROOM_NOT_FOUND"
    http_status = 404
    close_code = 4404
    default_message = gettext_noop("No such room.")


class RoomExists(AnteroomError):
    code = "ROOM_EXISTS"
    http_status = 409
    default_message = gettext_noop("A room with this name already exists.")


class InvalidToken(AnteroomError):
    code = "INVALID_TOKEN"
    http_status = 401
    close_code = 4401
    default_message = gettext_noop("The meeting token is not valid.")


class TokenExpired(InvalidToken):
    code = "TOKEN_EXPIRED"
    default_message = gettext_noop("The meeting token has expired.")


class TokenRevoked(InvalidToken):
    code = "TOKEN_REVOKED"
    default_message = gettext_noop("The meeting token has been revoked.")


class InvalidEntryClaim(AnteroomError):
    code = "INVALID_ENTRY_CLAIM"
    http_status = 400
    close_code = 4400
    default_message = gettext_noop("The token's joinPolicy is not valid.")


class AccessDenied(AnteroomError):
    code = "ACCESS_DENIED"
    http_status = 403
    close_code = 4403
    default_message = gettext_noop("This room is private.")


class EntryDenied(AnteroomError):
    code = "ENTRY_DENIED"
    http_status = 403
    close_code = 4403
    default_message = gettext_noop("A moderator declined your request to join.")


class EntryTimeout(AnteroomError):
    code = "ENTRY_TIMEOUT"
    http_status = 408
    close_code = 4408
    default_message = gettext_noop("Nobody answered your request in time.")


class EntryRateLimited(AnteroomError):
    code = "ENTRY_RATE_LIMITED"
    http_status = 429
    close_code = 4429
    default_message = gettext_noop("Too many requests to join. Try again later.")


class RoomFull(AnteroomError):
    """The room has ``max_participants`` present; moderators still enter."""

    code = "ROOM_FULL"
    http_status = 409
    close_code = 4403
    default_message = gettext_noop("The room is full.")


class RoomNotOpen(AnteroomError):
    """A knock more than ``ANTEROOM_APPOINTMENT_EARLY`` seconds before the room's appointment
    window opens (lobby/appointments.py). ``opens_at``, ``knock_from`` and ``retry_after``
    (seconds until ``knock_from``) say when to come back; nothing is stored."""

    code = "ROOM_NOT_OPEN"
    http_status = 403
    close_code = 4403
    default_message = "The room is not open yet."


class RoomClosed(AnteroomError):
    """A knock after the room's appointment window closed (``closes_at``); nothing is stored."""

    code = "ROOM_CLOSED"
    http_status = 403
    close_code = 4403
    default_message = "The room's appointment time is over."


class InvalidPermissions(AnteroomError):
    code = "INVALID_PERMISSIONS"
    http_status = 403
    default_message = gettext_noop("This action needs a moderator.")


class StaffSessionEnded(AnteroomError):
    """The staff session behind a socket ended (sign-out, password change, flush, expiry or a
    deactivated account); the socket closes (lobby/staff_sessions.py)."""

    code = "STAFF_SESSION_ENDED"
    http_status = 401
    close_code = 4401
    default_message = gettext_noop("Your staff session has ended; sign in again.")


class RequestNotFound(AnteroomError):
    code = "REQUEST_NOT_FOUND"
    http_status = 404
    default_message = gettext_noop("No such entry request in this room.")


class ParticipantNotFound(AnteroomError):
    code = "PARTICIPANT_NOT_FOUND"
    http_status = 404
    default_message = gettext_noop("Nobody with that id is in the room.")


class ParticipantRemoved(AnteroomError):
    """Sent to a participant a moderator removed, before their socket closes."""

    code = "PARTICIPANT_REMOVED"
    http_status = 403
    close_code = 4403
    default_message = gettext_noop("The host removed you from the room.")


class Replaced(AnteroomError):
    """The same guest or participant attached from a newer socket; the older one closes."""

    code = "REPLACED"
    http_status = 409
    close_code = 4409
    default_message = gettext_noop("You joined from another connection.")


class RateLimited(AnteroomError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = gettext_noop("Too many messages; slow down.")


class Unavailable(AnteroomError):
    code = "UNAVAILABLE"
    http_status = 503
    default_message = gettext_noop("A backing service is unavailable; retry later.")


class JoinRaced(Unavailable):
    """The presence a resume key held ended (removed, sent to the waiting room) between
    ``join_plan`` and the join's lock: the socket plans again (``RoomConsumer.on_join``)."""


class NotFound(AnteroomError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = gettext_noop("Not found.")


class Unauthenticated(AnteroomError):
    code = "UNAUTHENTICATED"
    http_status = 401
    default_message = gettext_noop("A valid API key is required.")


# Breakout rules (SPEC §2). Their classes live here so that one mapping covers every code.


class BreakoutLectureMode(AnteroomError):
    code = "BREAKOUT_LECTURE_MODE"
    http_status = 409
    legacy_code = 5067
    default_message = gettext_noop("Breakout rooms are not available in lecture mode.")

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "legacy_code": self.legacy_code}


class BreakoutLimit(AnteroomError):
    code = "BREAKOUT_LIMIT"
    http_status = 409
    default_message = gettext_noop("At most 10 breakout rooms per room.")


class BreakoutInvalidSize(AnteroomError):
    code = "BREAKOUT_INVALID_SIZE"
    http_status = 400
    default_message = gettext_noop("Breakout capacity is out of range.")


class BreakoutFromBreakout(AnteroomError):
    code = "BREAKOUT_FROM_BREAKOUT"
    http_status = 409
    default_message = gettext_noop("A breakout room cannot have breakout rooms.")


class BreakoutNotFound(AnteroomError):
    code = "BREAKOUT_NOT_FOUND"
    http_status = 404
    default_message = gettext_noop("No such breakout room.")


class BreakoutFull(AnteroomError):
    code = "BREAKOUT_FULL"
    http_status = 409
    default_message = gettext_noop("The breakout room is full.")


class AlreadyInBreakout(AnteroomError):
    code = "ALREADY_IN_BREAKOUT"
    http_status = 409
    default_message = gettext_noop("Leave your breakout room first.")


class NotInBreakout(AnteroomError):
    code = "NOT_IN_BREAKOUT"
    http_status = 409
    default_message = gettext_noop("You are not in a breakout room.")


class HelpAlreadyRequested(AnteroomError):
    """A breakout member asked for help while its last request is still pending."""

    code = "HELP_ALREADY_REQUESTED"
    http_status = 409
    default_message = gettext_noop("You have already asked for help; a moderator has been told.")


class HelpRequestNotFound(AnteroomError):
    code = "HELP_REQUEST_NOT_FOUND"
    http_status = 404
    default_message = gettext_noop("This participant has no help request.")


class NotInvited(AnteroomError):
    code = "NOT_INVITED"
    http_status = 409
    default_message = gettext_noop("You have no invitation to this breakout room.")


# Webhooks and alerts (docs/webhooks.md).


class WebhookInvalidUrl(AnteroomError):
    code = "WEBHOOK_INVALID_URL"
    http_status = 400
    default_message = "The webhook URL must be an absolute http(s) URL without credentials."


class WebhookUrlNotAllowed(AnteroomError):
    code = "WEBHOOK_URL_NOT_ALLOWED"
    http_status = 400
    default_message = "The webhook URL points at an address this server does not send to."


class WebhookInvalidEvents(AnteroomError):
    code = "WEBHOOK_INVALID_EVENTS"
    http_status = 400
    default_message = "events must be a list of known event names."


class WebhookNotFound(AnteroomError):
    code = "WEBHOOK_NOT_FOUND"
    http_status = 404
    default_message = "No such webhook."


class WebhookDeliveryNotFound(AnteroomError):
    code = "WEBHOOK_DELIVERY_NOT_FOUND"
    http_status = 404
    default_message = "No such delivery of this webhook."


class WebhookLimit(AnteroomError):
    code = "WEBHOOK_LIMIT"
    http_status = 409
    default_message = "Too many webhooks; delete one first."


def error_text(exc: AnteroomError) -> str:
    """``exc``'s message for a person reading a page, in the active language."""
    return gettext(exc.message) if exc.message else exc.message

"""Strict REST bodies of the webhook and alert endpoints (as ``lobby.commands``): an event
list that is not a short list of known, distinct names is ``WEBHOOK_INVALID_EVENTS``; a URL
that is not a string is ``WEBHOOK_INVALID_URL``; other refusals are ``BAD_REQUEST``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import ErrorDetails

from lobby.commands import Command, Omittable, describe
from lobby.errors import AnteroomError, WebhookInvalidEvents, WebhookInvalidUrl

from .addresses import MAX_URL_CHARS
from .outbox import SUBSCRIBABLE
from .services import ALERT_MAX, ALERT_MIN, MAX_CONTACTS, MAX_EVENTS, clean_contacts, clean_events

EventList = Annotated[
    list[str],
    Field(max_length=MAX_EVENTS),
    AfterValidator(clean_events),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": sorted(SUBSCRIBABLE)},
            "minItems": 1,
            "maxItems": MAX_EVENTS,
            "uniqueItems": True,
            "description": "Event names; breakout.* is every breakout event, * every event.",
        }
    ),
]
Url = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_CHARS),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "maxLength": MAX_URL_CHARS,
            "description": "http(s), no credentials; checked against the address rules.",
        }
    ),
]
Contacts = Annotated[
    list[str],
    AfterValidator(clean_contacts),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "format": "email"},
            "maxItems": MAX_CONTACTS,
        }
    ),
]
Seconds = Annotated[int, Field(ge=ALERT_MIN, le=ALERT_MAX)]


class _WebhookBody(Command):
    @classmethod
    def refuse(cls, error: ErrorDetails) -> AnteroomError:
        where = error["loc"][:1]
        if where == ("events",):
            if error["type"] == "value_error":
                return WebhookInvalidEvents(str(error.get("ctx", {}).get("error", "")) or None)
            return WebhookInvalidEvents()
        if where == ("url",) and error["type"] != "missing":
            return WebhookInvalidUrl(describe(error))
        return super().refuse(error)


class WebhookCreateBody(_WebhookBody):
    """``POST /webhooks``: ``{url, events, room?, description?, active?}``."""

    url: Url
    events: EventList
    room: str | None = Field(default=None, description="Only this room's events (a room name).")
    description: Annotated[str, Field(max_length=200)] = ""
    active: bool = True


class WebhookUpdateBody(_WebhookBody):
    """``PATCH /webhooks/{id}``: any of ``url``, ``events``, ``description``, ``active``."""

    url: Omittable[Url] = None
    events: Omittable[EventList] = None
    description: Omittable[Annotated[str, Field(max_length=200)]] = None
    active: Omittable[bool] = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class RoomAlertsBody(Command):
    """``PUT /rooms/{name}/alerts``: the whole setting (left out: off / empty)."""

    unattended_after: Seconds | None = Field(
        default=None,
        description="Seconds a knock waits with no moderator connected before the contacts "
        "are notified; null: alerts off.",
    )
    escalate_after: Seconds | None = Field(
        default=None,
        description="Seconds after that notice before the escalation contacts are notified.",
    )
    contacts: Contacts = Field(default_factory=list)
    escalation_contacts: Contacts = Field(default_factory=list)

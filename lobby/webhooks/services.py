"""Webhook endpoints, replays and room alert settings: one function per change, shared by the
REST API and the admin (which validate their input through the same checks)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from lobby import clock
from lobby.errors import (
    BadRequest,
    WebhookDeliveryNotFound,
    WebhookInvalidEvents,
    WebhookLimit,
    WebhookNotFound,
)
from lobby.models import Room, RoomAlerts, WebhookDelivery, WebhookEndpoint

from . import addresses, signing
from .outbox import SUBSCRIBABLE

MAX_EVENTS = 16
MAX_CONTACTS = 20
ALERT_MIN, ALERT_MAX = 10, 86400


def clean_events(value: Any) -> list[str]:
    """A list of 1-16 distinct known event names (``breakout.*`` and ``*`` included)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_EVENTS:
        raise WebhookInvalidEvents(f"events must be a list of 1 to {MAX_EVENTS} event names.")
    if not all(isinstance(v, str) for v in value):
        raise WebhookInvalidEvents("events must be strings.")
    if any(v not in SUBSCRIBABLE for v in value):
        raise WebhookInvalidEvents("events lists an unknown event; see docs/webhooks.md.")
    if len(set(value)) != len(value):
        raise WebhookInvalidEvents("events lists an event twice.")
    return list(value)


def clean_contacts(value: Any, name: str = "contacts") -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_CONTACTS:
        raise BadRequest(f"{name} must be a list of at most {MAX_CONTACTS} e-mail addresses.")
    out: list[str] = []
    for v in value:
        if not isinstance(v, str) or len(v) > 254:
            raise BadRequest(f"{name} must be e-mail addresses.")
        try:
            validate_email(v)
        except ValidationError as exc:
            raise BadRequest(f"{name} must be e-mail addresses.") from exc
        if v.lower() not in (o.lower() for o in out):
            out.append(v)
    return out


def get_endpoint(endpoint_id: Any) -> WebhookEndpoint:
    try:
        pk = uuid.UUID(str(endpoint_id))
    except ValueError as exc:
        raise WebhookNotFound() from exc
    ep = WebhookEndpoint.objects.filter(pk=pk).select_related("room").first()
    if ep is None:
        raise WebhookNotFound()
    return ep


def get_delivery(endpoint: WebhookEndpoint, delivery_id: Any) -> WebhookDelivery:
    try:
        pk = uuid.UUID(str(delivery_id))
    except ValueError as exc:
        raise WebhookDeliveryNotFound() from exc
    d = WebhookDelivery.objects.filter(id=pk, endpoint=endpoint).select_related("event").first()
    if d is None:
        raise WebhookDeliveryNotFound()
    return d


@transaction.atomic
def webhook_create(
    *,
    url: Any,
    events: Any,
    room: Room | None = None,
    description: str = "",
    active: bool = True,
    by: str = "",
    served_at: tuple[str, int] | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint. Returns it and its signing secret (shown this once).

    Raises ``WebhookInvalidUrl``, ``WebhookUrlNotAllowed`` (checked against the address rules,
    resolving the host), ``WebhookInvalidEvents``, ``WebhookLimit``."""
    addresses.check_url(url, served_at=served_at)
    events = clean_events(events)
    if WebhookEndpoint.objects.count() >= settings.ANTEROOM_WEBHOOK_MAX_ENDPOINTS:
        raise WebhookLimit()
    secret = signing.new_secret()
    ep = WebhookEndpoint.objects.create(
        url=url,
        events=events,
        room=room,
        description=description,
        active=active,
        secret=secret,
        created_at=clock.now(),
        created_by=by,
    )
    return ep, secret


@transaction.atomic
def webhook_update(
    *,
    endpoint: WebhookEndpoint,
    served_at: tuple[str, int] | None = None,
    **fields: Any,
) -> WebhookEndpoint:
    """Change ``url``, ``events``, ``description``, ``active`` or (the admin) ``room`` (same
    checks as creation). Deliveries already written keep going to the endpoint (its new URL).
    The save's signal makes every process's endpoint cache forget (lobby/cache.py)."""
    unknown = set(fields) - {"url", "events", "description", "active", "room"}
    if unknown:
        raise BadRequest("Unknown webhook fields.")
    if "url" in fields:
        addresses.check_url(fields["url"], served_at=served_at)
    if "events" in fields:
        fields["events"] = clean_events(fields["events"])
    ep = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    for k, v in fields.items():
        setattr(ep, k, v)
    if fields:
        ep.save(update_fields=list(fields))
    if fields.get("active"):
        from .doorbell import wake

        transaction.on_commit(wake)
    return ep


@transaction.atomic
def webhook_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint and its delivery log (pending deliveries are dropped)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


@transaction.atomic
def webhook_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new signing secret (returned once); the old one stops signing at once."""
    secret = signing.new_secret()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret)
    return secret


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event to its endpoint again, as a new delivery (a new
    ``Anteroom-Webhook-Id``, the same event ``id``), after everything already queued for that
    room. Works for any status."""
    now = clock.now()
    new = WebhookDelivery.objects.create(
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        ordering_key=delivery.ordering_key,
        replay_of=delivery.id,
        created_at=now,
        next_attempt_at=now,
    )
    from .doorbell import wake

    transaction.on_commit(wake)
    return new


@transaction.atomic
def room_alerts_set(
    *,
    room: Room,
    unattended_after: int | None,
    escalate_after: int | None = None,
    contacts: Any = None,
    escalation_contacts: Any = None,
) -> RoomAlerts:
    """Set a room's unattended-knock alerts (``unattended_after`` None turns them off).
    Raises ``BadRequest``."""
    for name, v in (("unattended_after", unattended_after), ("escalate_after", escalate_after)):
        if v is not None and (type(v) is not int or not ALERT_MIN <= v <= ALERT_MAX):
            raise BadRequest(f"{name} must be an integer from {ALERT_MIN} to {ALERT_MAX}, or null.")
    if escalate_after is not None and unattended_after is None:
        raise BadRequest("escalate_after needs unattended_after.")
    if room.parent_id is not None:
        raise BadRequest("Alerts are set on the parent room.")
    values = {
        "unattended_after": unattended_after,
        "escalate_after": escalate_after,
        "contacts": clean_contacts(contacts or [], "contacts"),
        "escalation_contacts": clean_contacts(escalation_contacts or [], "escalation_contacts"),
    }
    alerts, _ = RoomAlerts.objects.update_or_create(room=room, defaults=values)
    return alerts


def room_alerts_get(*, room: Room) -> RoomAlerts:
    return RoomAlerts.objects.filter(room=room).first() or RoomAlerts(room=room)


def webhooks_purge(*, cutoff: Any, dry_run: bool = False) -> tuple[int, int, int]:
    """Retention (``manage.py purge``): delivered and failed deliveries, events no delivery
    refers to any more and sent or failed alert e-mails older than ``cutoff``. Pending rows
    are kept whatever their age. Returns (deliveries, events, e-mails)."""
    from lobby.models import AlertEmail, WebhookEvent

    deliveries = WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.PENDING).filter(
        created_at__lt=cutoff
    )
    emails = AlertEmail.objects.exclude(status=AlertEmail.Status.PENDING).filter(
        created_at__lt=cutoff
    )
    if dry_run:
        orphans = WebhookEvent.objects.filter(created_at__lt=cutoff).exclude(
            deliveries__status=WebhookDelivery.Status.PENDING
        )
        return deliveries.count(), orphans.distinct().count(), emails.count()
    n_deliveries = deliveries.delete()[0]
    n_events = WebhookEvent.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).delete()[
        0
    ]
    return n_deliveries, n_events, emails.delete()[0]
